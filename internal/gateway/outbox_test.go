package gateway

import (
	"context"
	"errors"
	"slices"
	"testing"
)

// newTestOutbox returns an outbox holding at most frames frames and bytes
// bytes.
func newTestOutbox(frames, bytes int) *outbox {
	return &outbox{limits: &outLimits{frames: frames, bytes: bytes}}
}

// fill queues n copies of frame as if enqueued, with a writer owning them
// (for benchmarks that then flush the connection themselves).
func (o *outbox) fill(frame []byte, stored int64, n int) {
	o.mu.Lock()
	defer o.mu.Unlock()
	for range n {
		o.push(frame, stored)
	}
	o.state = outWriting
}

// discard drops what is queued without writing it.
func (o *outbox) discard() {
	o.mu.Lock()
	defer o.mu.Unlock()
	clear(o.frames)
	o.frames, o.storedAt, o.bytes = o.frames[:0], o.storedAt[:0], 0
}

// idle reports whether no writer owns the outbox.
func (o *outbox) idle() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.state == outIdle
}

func (o *outbox) stateNow() outState {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.state
}

func (s outState) String() string {
	return [...]string{"idle", "writing", "closing", "closed", "killed"}[s]
}

func (r enqueued) String() string {
	return [...]string{"queued for the writer", "queued, start a writer", "refused: closing", "refused: full"}[r]
}

// toState brings a fresh outbox to state the way a connection gets there.
func (o *outbox) toState(t *testing.T, state outState) {
	t.Helper()
	switch state {
	case outIdle:
	case outWriting:
		o.enqueue([]byte("w"), 0)
	case outClosing:
		o.close([]byte("bye"), false)
	case outClosed:
		o.close([]byte("bye"), false)
		if _, msg := o.next(nil); string(msg) != "bye" {
			t.Fatalf("next gave close frame %q", msg)
		}
	case outKilled:
		o.kill()
	}
	if got := o.stateNow(); got != state {
		t.Fatalf("outbox is %s, want %s", got, state)
	}
}

func TestOutboxEnqueueStartsOneWriterAndRefusesWhatItCannotTake(t *testing.T) {
	tests := []struct {
		name      string
		state     outState
		queued    []string // already queued (in state writing)
		frame     string
		want      enqueued
		wantState outState
		wantLen   int
	}{
		{"idle outbox wants a writer", outIdle, nil, "abc", enqueuedIdle, outWriting, 1},
		{"a writer owns it already", outWriting, nil, "abc", enqueuedWriting, outWriting, 2},
		{"up to the frame limit", outWriting, []string{"a", "b"}, "c", enqueuedWriting, outWriting, 4},
		{"beyond the frame limit", outWriting, []string{"a", "b", "c"}, "d", enqueueFull, outWriting, 4},
		{"up to the byte limit", outIdle, []string{"12345"}, "1234567", enqueuedWriting, outWriting, 2},
		{"beyond the byte limit", outIdle, []string{"12345"}, "12345678", enqueueFull, outWriting, 1},
		{"closing", outClosing, nil, "abc", enqueueClosing, outClosing, 0},
		{"close frame taken", outClosed, nil, "abc", enqueueClosing, outClosed, 0},
		{"dead", outKilled, nil, "abc", enqueueClosing, outKilled, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newTestOutbox(4, 12)
			o.toState(t, tt.state)
			for _, f := range tt.queued {
				o.enqueue([]byte(f), 0)
			}
			if got := o.enqueue([]byte(tt.frame), 7); got != tt.want {
				t.Errorf("enqueue: %s, want %s", got, tt.want)
			}
			if got := o.stateNow(); got != tt.wantState {
				t.Errorf("state %s, want %s", got, tt.wantState)
			}
			if len(o.frames) != tt.wantLen || len(o.storedAt) != tt.wantLen {
				t.Errorf("%d frames (%d times) queued, want %d", len(o.frames), len(o.storedAt), tt.wantLen)
			}
		})
	}
}

// A flusher takes everything queued at once, and gives the outbox back
// idle only when nothing else is due.
func TestOutboxFinishGoesIdleOnlyWhenNothingIsDue(t *testing.T) {
	tests := []struct {
		name      string
		meanwhile func(o *outbox)
		wantAgain bool
		wantState outState
	}{
		{"nothing more", func(*outbox) {}, false, outIdle},
		{"more frames came", func(o *outbox) { o.enqueue([]byte("more"), 0) }, true, outWriting},
		{"a close came", func(o *outbox) { o.close([]byte("bye"), false) }, true, outClosing},
		{"the connection died", func(o *outbox) { o.kill() }, true, outKilled},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newTestOutbox(10, 1000)
			if got := o.enqueue([]byte("one"), 1); got != enqueuedIdle {
				t.Fatalf("enqueue: %s", got)
			}
			o.enqueue([]byte("two"), 2)
			batch, ok := o.take()
			if !ok || !slices.Equal(frameStrings(batch), []string{"one", "two"}) {
				t.Fatalf("take: %q %v", batch, ok)
			}
			tt.meanwhile(o)
			clear(batch)
			if again := o.finish(batch); again != tt.wantAgain {
				t.Errorf("finish: again %v, want %v", again, tt.wantAgain)
			}
			if got := o.stateNow(); got != tt.wantState {
				t.Errorf("state %s, want %s", got, tt.wantState)
			}
		})
	}
}

// take leaves the close frame and dead connections to the writer goroutine.
func TestOutboxTakeLeavesCloseAndDeathToTheWriterGoroutine(t *testing.T) {
	tests := []struct {
		name   string
		prep   func(o *outbox)
		wantOK bool
	}{
		{"frames", func(o *outbox) { o.enqueue([]byte("a"), 0) }, true},
		{"frames before the close frame", func(o *outbox) { o.enqueue([]byte("a"), 0); o.close([]byte("bye"), false) }, true},
		{"only the close frame", func(o *outbox) { o.enqueue([]byte("a"), 0); o.close([]byte("bye"), true) }, false},
		{"dead", func(o *outbox) { o.enqueue([]byte("a"), 0); o.kill() }, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newTestOutbox(10, 1000)
			tt.prep(o)
			if _, ok := o.take(); ok != tt.wantOK {
				t.Errorf("take: ok %v, want %v", ok, tt.wantOK)
			}
		})
	}
}

// The writer goroutine writes every frame queued before the close, then
// the close frame, and then nothing.
func TestOutboxNextGivesFramesThenTheCloseFrame(t *testing.T) {
	o := newTestOutbox(10, 1000)
	o.enqueue([]byte("a"), 0)
	o.enqueue([]byte("b"), 0)
	batch, msg := o.next(nil)
	if !slices.Equal(frameStrings(batch), []string{"a", "b"}) || msg != nil {
		t.Fatalf("first step: %q %q", batch, msg)
	}
	o.enqueue([]byte("c"), 0)
	if _, _, ok := o.close([]byte("bye"), false); !ok {
		t.Fatal("close refused")
	}
	if o.enqueue([]byte("late"), 0) != enqueueClosing {
		t.Fatal("a frame was accepted after the close")
	}
	batch, msg = o.next(batch)
	if !slices.Equal(frameStrings(batch), []string{"c"}) || msg != nil {
		t.Fatalf("second step: %q %q", batch, msg)
	}
	batch, msg = o.next(batch)
	if batch != nil || string(msg) != "bye" || o.stateNow() != outClosed {
		t.Fatalf("third step: %q %q in state %s, want the close frame", batch, msg, o.stateNow())
	}
	done := o.closeWritten()
	if done == nil {
		t.Fatal("no close under way")
	}
	select {
	case <-done:
		t.Fatal("close reported written before it was")
	default:
	}
	o.markCloseWritten()
	<-done
	if o.closeWritten() != nil {
		t.Error("a close that is over is still under way")
	}
	o.kill() // closes nothing twice
}

func TestOutboxNextGoesIdleWhenTheQueueIsEmpty(t *testing.T) {
	o := newTestOutbox(10, 1000)
	o.enqueue([]byte("a"), 0)
	batch, _ := o.next(nil)
	if batch, msg := o.next(batch); batch != nil || msg != nil || o.stateNow() != outIdle {
		t.Fatalf("next on an empty queue: %q %q, state %s", batch, msg, o.stateNow())
	}
	if got := o.enqueue([]byte("b"), 0); got != enqueuedIdle {
		t.Fatalf("enqueue after the writer left: %s, want a new writer", got)
	}
}

func TestOutboxClose(t *testing.T) {
	tests := []struct {
		name        string
		state       outState
		queued      int
		drop        bool
		wantDropped int
		wantStart   bool
		wantOK      bool
		wantQueued  int
	}{
		{"idle: a writer must start", outIdle, 0, false, 0, true, true, 0},
		{"writing: the writer writes the queue first", outWriting, 2, false, 0, false, true, 3},
		{"slow consumer: the queue is dropped", outWriting, 2, true, 3, false, true, 0},
		{"closing already", outClosing, 0, false, 0, false, false, 0},
		{"dead", outKilled, 0, true, 0, false, false, 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := newTestOutbox(10, 1000)
			o.toState(t, tt.state)
			for range tt.queued {
				o.enqueue([]byte("x"), 0)
			}
			dropped, start, ok := o.close([]byte("bye"), tt.drop)
			if dropped != tt.wantDropped || start != tt.wantStart || ok != tt.wantOK {
				t.Errorf("close: dropped %d, start %v, ok %v; want %d, %v, %v", dropped, start, ok, tt.wantDropped, tt.wantStart, tt.wantOK)
			}
			if len(o.frames) != tt.wantQueued {
				t.Errorf("%d frames queued after the close, want %d", len(o.frames), tt.wantQueued)
			}
			if tt.wantOK && (o.stateNow() != outClosing || o.closeWritten() == nil) {
				t.Errorf("state %s after the close", o.stateNow())
			}
		})
	}
}

// Killing a connection in the middle of its close releases whoever waits
// for the close frame, and whoever waits for room.
func TestOutboxKillReleasesEveryWaiter(t *testing.T) {
	o := newTestOutbox(2, 1000)
	o.enqueue([]byte("a"), 0)
	blocked := make(chan struct{})
	roomErr := make(chan error, 1)
	go func() {
		_, _, err := o.waitRoom(t.Context(), func() { close(blocked) })
		roomErr <- err
	}()
	<-blocked
	o.close([]byte("bye"), false)
	if err := <-roomErr; !errors.Is(err, errClosing) {
		t.Fatalf("waitRoom after a close: %v, want errClosing", err)
	}
	done := o.closeWritten()
	if was := o.kill(); was != outClosing {
		t.Errorf("kill: state before %s, want closing", was)
	}
	<-done
	if len(o.frames) != 0 || o.enqueue([]byte("b"), 0) != enqueueClosing {
		t.Error("a dead outbox keeps or takes frames")
	}
	if batch, msg := o.next(nil); batch != nil || msg != nil {
		t.Errorf("next on a dead outbox: %q %q", batch, msg)
	}
}

// A replay may fill half the outbox; it waits, holding nothing, until the
// writer takes the frames.
func TestOutboxWaitRoomLeavesHalfForLiveEvents(t *testing.T) {
	o := newTestOutbox(4, 1000)
	ctx := t.Context()
	if frames, bytes, err := o.waitRoom(ctx, nil); frames != 2 || bytes != 500 || err != nil {
		t.Fatalf("empty outbox: room for %d frames, %d bytes (%v); want 2, 500", frames, bytes, err)
	}
	o.enqueue([]byte("a"), 0)
	o.enqueue([]byte("b"), 0)
	blocked := make(chan struct{})
	type room struct {
		frames, bytes int
		err           error
	}
	got := make(chan room, 1)
	calls := 0
	go func() {
		f, b, err := o.waitRoom(ctx, func() { calls++; close(blocked) })
		got <- room{f, b, err}
	}()
	<-blocked
	batch, _ := o.take()
	r := <-got
	if r.frames != 2 || r.bytes != 500 || r.err != nil || calls != 1 {
		t.Fatalf("after take: room for %d frames, %d bytes (%v), blocking ran %d times", r.frames, r.bytes, r.err, calls)
	}
	o.finish(batch)

	o.enqueue([]byte("a"), 0)
	o.enqueue([]byte("b"), 0)
	cctx, cancel := context.WithCancel(ctx)
	go func() { _, _, err := o.waitRoom(cctx, cancel); got <- room{err: err} }()
	if r := <-got; !errors.Is(r.err, context.Canceled) {
		t.Fatalf("waitRoom with its context cancelled: %v", r.err)
	}
}

// written hands out the stored times of the frames the writer reports, in
// order, for the delivery latency.
func TestOutboxWrittenReportsEachFrameOnce(t *testing.T) {
	o := newTestOutbox(10, 1000)
	for i := range 4 {
		o.enqueue([]byte("f"), int64(i+1))
	}
	if _, ok := o.take(); !ok {
		t.Fatal("nothing to take")
	}
	var got []int64
	for _, n := range []int{1, 2, 5} {
		got = append(got, o.written(n)...)
	}
	if want := []int64{1, 2, 3, 4}; !slices.Equal(got, want) {
		t.Errorf("written reported %v, want %v", got, want)
	}
}

// The queue and the batch being written trade arrays, so steady traffic
// allocates no slices; shrink lets go of arrays a burst grew, but only
// while no writer runs.
func TestOutboxReusesItsArraysAndShrinksWhenIdle(t *testing.T) {
	o := newTestOutbox(1000, 1<<20)
	frame := []byte("frame")
	round := func(n int) {
		for range n {
			o.enqueue(frame, 1)
		}
		batch, _ := o.take()
		o.written(len(batch))
		clear(batch)
		o.finish(batch)
	}
	round(8)
	round(8)
	if allocs := testing.AllocsPerRun(100, func() { round(8) }); allocs != 0 {
		t.Errorf("a steady round allocates %.0f times, want 0", allocs)
	}
	round(100)
	round(100)
	o.enqueue(frame, 0)
	o.shrink() // a writer owns the outbox: keep
	if cap(o.frames) <= keepQueueCap {
		t.Fatal("shrink let go of the arrays while a writer runs")
	}
	batch, _ := o.take()
	clear(batch)
	o.finish(batch)
	o.shrink()
	if cap(o.frames) > keepQueueCap || cap(o.spare) > keepQueueCap || cap(o.storedAt) > keepQueueCap || cap(o.spareAt) > keepQueueCap {
		t.Errorf("idle outbox keeps arrays of %d and %d frames", cap(o.frames), cap(o.spare))
	}
}

func frameStrings(frames [][]byte) []string {
	out := make([]string, len(frames))
	for i, f := range frames {
		out[i] = string(f)
	}
	return out
}
