package gateway

import (
	"context"
	"errors"
	"sync"
)

// outbox is all of one connection's pending output in one place: the
// complete frames waiting to be written, the close frame due after them,
// where the connection's output stands (outState), and the bounds beyond
// which a client that does not read is a slow consumer. It does no I/O:
// the fan-out, replies and pings enqueue frames; a writer (a flusher,
// flush.go, or the connection's own writer goroutine, write.go) takes
// them, writes them and reports back.
//
// One writer at a time owns the frames: the one started when enqueue took
// the outbox from idle to writing (or close from idle to closing). It
// keeps them until finish or next hands the outbox back idle, or until it
// writes the close frame. A flusher that cannot finish (the socket is
// full, or a close is due) hands its batch and the ownership to the
// connection's writer goroutine, which may wait: the writer fallback.
//
// Lock order: connAccount.mu, then conn.mu, then outbox.mu. mu is the
// last lock taken; nothing is called out of the outbox while holding it.
type outbox struct {
	mu     sync.Mutex
	state  outState
	limits *outLimits // the server's, shared by every connection

	frames   [][]byte // complete frames waiting to be written, in order
	storedAt []int64  // per frame: when its live event was stored (Unix ns); 0 for other frames
	bytes    int      // bytes in frames
	spare    [][]byte // the other frames array, while not being written
	spareAt  []int64  // the other storedAt array

	closeMsg  []byte        // the close frame, due once frames are written; nil once taken
	closeDone chan struct{} // closed once the close frame is written or never will be; nil before
	room      chan struct{} // closed when the writer takes frames, for replays waiting for room

	// Owned by the writer, not guarded by mu: the storedAt of the batch
	// being written, and how many of its frames were reported written.
	writingAt []int64
	reported  int
}

// outState is where a connection's output stands. It goes idle ⇄
// writing, then only down the list.
type outState uint8

const (
	outIdle    outState = iota // open; nothing to write and no writer
	outWriting                 // open; a writer owns the frames (in a flusher's line, in a flusher, or the writer goroutine)
	outClosing                 // no frame is accepted; the writer writes what is left, then the close frame
	outClosed                  // the writer has taken the close frame; nothing more is written
	outKilled                  // the TCP connection is closed; a writer still running stops at its next look
)

// closing reports whether the outbox accepts no more frames.
func (s outState) closing() bool { return s >= outClosing }

// outLimits bounds what a connection may have waiting for its client
// (Config.OutboundMaxMessages and OutboundMaxBytes).
type outLimits struct{ frames, bytes int }

// allow reports whether frames frames of bytes bytes in all stay within
// the limits.
func (l *outLimits) allow(frames, bytes int) bool { return frames <= l.frames && bytes <= l.bytes }

// keepQueueCap is the largest frames array a quiet connection keeps;
// arrays grown by a burst are let go at the next ping (shrink), so idle
// connections stay small.
const keepQueueCap = 16

// enqueued is what enqueue did with a frame.
type enqueued uint8

const (
	enqueuedWriting enqueued = iota // queued; the writer that owns the outbox writes it
	enqueuedIdle                    // queued in an idle outbox: the caller starts a writer, which owns it now
	enqueueClosing                  // refused: the connection is closing
	enqueueFull                     // refused: it would go beyond the limits (a slow consumer)
)

// enqueue queues one complete frame; stored is when its live event was
// stored (Unix ns), or 0. It never blocks.
func (o *outbox) enqueue(frame []byte, stored int64) enqueued {
	// Unlocked by hand on each path, not deferred: this runs once per
	// delivery (BenchmarkEnqueue).
	o.mu.Lock()
	switch {
	case o.state.closing():
		o.mu.Unlock()
		return enqueueClosing
	case !o.limits.allow(len(o.frames)+1, o.bytes+len(frame)):
		o.mu.Unlock()
		return enqueueFull
	}
	o.push(frame, stored)
	r := enqueuedWriting
	if o.state == outIdle {
		o.state, r = outWriting, enqueuedIdle
	}
	o.mu.Unlock()
	return r
}

// push appends a frame; the caller holds mu.
func (o *outbox) push(frame []byte, stored int64) {
	o.frames = append(o.frames, frame)
	o.storedAt = append(o.storedAt, stored)
	o.bytes += len(frame)
}

// take gives the writer every frame waiting, to write at once; the spare
// array becomes the queue, so steady traffic allocates no slices. It
// reports false, taking nothing, when only the close frame is due or the
// connection is dead: that is for the connection's writer goroutine (next).
func (o *outbox) take() ([][]byte, bool) {
	o.mu.Lock() // unlocked by hand: once per flush of a connection
	if o.state == outKilled || len(o.frames) == 0 {
		o.mu.Unlock()
		return nil, false
	}
	batch := o.takeFrames()
	o.mu.Unlock()
	return batch, true
}

// takeFrames is take for a caller holding mu.
func (o *outbox) takeFrames() [][]byte {
	batch := o.frames
	o.writingAt, o.reported = o.storedAt, 0
	o.frames, o.spare = o.spare, nil
	o.storedAt, o.spareAt = o.spareAt, nil
	o.bytes = 0
	o.wakeRoom()
	return batch
}

// recycle keeps the arrays of a written batch as the spare pair; the
// caller holds mu.
func (o *outbox) recycle(batch [][]byte) {
	o.spare, o.spareAt = batch[:0], o.writingAt[:0]
	o.writingAt = nil
}

// finish takes back a batch a flusher wrote whole (and cleared). The
// outbox goes idle when nothing else is due; otherwise finish reports true
// and the writer keeps the outbox: more frames came, or the close frame or
// the connection's end is due.
func (o *outbox) finish(batch [][]byte) (again bool) {
	o.mu.Lock() // unlocked by hand: once per flush of a connection
	o.recycle(batch)
	again = o.state != outWriting || len(o.frames) != 0
	if !again {
		o.state = outIdle
	}
	o.mu.Unlock()
	return again
}

// next is the writer goroutine's step: it takes back done, the batch it
// wrote (nil at first), and gives it the frames to write next, or else
// the close frame to write last, or neither when the writer is done (the
// outbox is idle again, or the connection is dead).
func (o *outbox) next(done [][]byte) (batch [][]byte, closeMsg []byte) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if done != nil {
		o.recycle(done)
	}
	switch {
	case o.state == outKilled:
		return nil, nil
	case len(o.frames) > 0:
		return o.takeFrames(), nil
	case o.state == outClosing:
		o.state = outClosed
		closeMsg, o.closeMsg = o.closeMsg, nil
		return nil, closeMsg
	}
	o.state = outIdle
	return nil, nil
}

// written reports the next n frames of the batch being written as on the
// socket and returns their storedAt. Only the writer calls it.
func (o *outbox) written(n int) []int64 {
	at := o.writingAt
	end := min(o.reported+n, len(at))
	w := at[o.reported:end]
	o.reported = end
	return w
}

// close starts closing: no frame is accepted from now on; what is queued
// is written (or dropped, when drop is set), then closeMsg. It returns
// how many queued frames it dropped, and whether the caller starts a
// writer (none owned the outbox); ok is false, and nothing changes, when
// the outbox was closing already.
func (o *outbox) close(closeMsg []byte, drop bool) (dropped int, start, ok bool) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.state.closing() {
		return 0, false, false
	}
	if drop {
		dropped = len(o.frames)
		clear(o.frames)
		o.frames, o.storedAt, o.bytes = o.frames[:0], o.storedAt[:0], 0
	}
	start = o.state == outIdle
	o.state = outClosing
	o.closeMsg = closeMsg
	o.closeDone = make(chan struct{})
	o.wakeRoom()
	return dropped, start, true
}

// closeWritten returns a channel closed once the close frame is written or
// never will be; nil when no close is under way or it is over.
func (o *outbox) closeWritten() <-chan struct{} {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.closeDone
}

// markCloseWritten says the close frame next gave is written (or failed).
func (o *outbox) markCloseWritten() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.fireCloseDone()
}

func (o *outbox) fireCloseDone() {
	if o.closeDone != nil {
		close(o.closeDone)
		o.closeDone = nil
	}
}

// kill marks the connection dead (its TCP connection is being closed):
// what is queued is dropped, a writer stops at its next look, waiters are
// released. It returns the state before.
func (o *outbox) kill() outState {
	o.mu.Lock()
	defer o.mu.Unlock()
	was := o.state
	o.state = outKilled
	clear(o.frames)
	o.frames, o.storedAt, o.bytes = nil, nil, 0
	o.fireCloseDone()
	o.wakeRoom()
	return was
}

// closing reports whether the outbox accepts no more frames.
func (o *outbox) closing() bool {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.state.closing()
}

// whileOpen runs fn unless the outbox is closing, and no close starts
// while it runs.
func (o *outbox) whileOpen(fn func()) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if !o.state.closing() {
		fn()
	}
}

// shrink lets go of arrays a burst made large, while no writer runs:
// doing that on every idle moment instead would reallocate them for
// every burst, so the connection's pinger calls it.
func (o *outbox) shrink() {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.state != outIdle {
		return
	}
	if cap(o.frames) > keepQueueCap {
		o.frames, o.storedAt = nil, nil
	}
	if cap(o.spare) > keepQueueCap {
		o.spare, o.spareAt = nil, nil
	}
}

// wakeRoom releases replays waiting for room; the caller holds mu.
func (o *outbox) wakeRoom() {
	if o.room != nil {
		close(o.room)
		o.room = nil
	}
}

// errClosing stops a replay for a connection that is closing.
var errClosing = errors.New("connection is closing")

// waitRoom blocks a replay until the outbox is at most half full, leaving
// the other half for live events of other accounts, and returns how many
// frames and bytes the replay may queue now. blocking runs once, before
// the first wait.
func (o *outbox) waitRoom(ctx context.Context, blocking func()) (frames, bytes int, err error) {
	for {
		o.mu.Lock()
		if o.state.closing() {
			o.mu.Unlock()
			return 0, 0, errClosing
		}
		frames, bytes = o.limits.frames/2-len(o.frames), o.limits.bytes/2-o.bytes
		if frames > 0 && bytes > 0 {
			o.mu.Unlock()
			return frames, bytes, nil
		}
		if o.room == nil {
			o.room = make(chan struct{})
		}
		room := o.room
		o.mu.Unlock()
		if blocking != nil {
			blocking()
			blocking = nil
		}
		select {
		case <-room:
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		}
	}
}
