package bus_test

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/natstest"
)

// openBus opens a bus on its own embedded server storing under dir; it is
// closed when the test ends, if the test has not closed it before.
func openBus(t *testing.T, dir string) *bus.Bus {
	t.Helper()
	return natstest.Bus(t, bus.Config{DataDir: dir, Name: "test"})
}

const acc = "0123456789abcdef0123456789abcdef"

func TestPublishFollowAndReplayInOrder(t *testing.T) {
	b := openBus(t, t.TempDir())
	defer b.Close()
	ctx := t.Context()
	filter := []string{"qubicle.*." + acc + ".>"}

	var mu sync.Mutex
	var got []uint64
	done := make(chan struct{})
	f, start, err := b.FollowNew(ctx, filter, func(m bus.Message) {
		mu.Lock()
		defer mu.Unlock()
		got = append(got, m.Sequence)
		if len(got) == 10 {
			close(done)
		}
	})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Stop()
	var seqs []uint64
	for i := 0; i < 10; i++ {
		subj := fmt.Sprintf("qubicle.queue.%s.Q%d.join", acc, i%3)
		seq, err := b.Publish(ctx, subj, []byte(`{}`), fmt.Sprintf("id-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
		// An event of another account must not reach this follower.
		if _, err := b.Publish(ctx, "qubicle.queue.ffffffffffffffffffffffffffffffff.Q.join", []byte(`{}`), ""); err != nil {
			t.Fatal(err)
		}
	}
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatalf("follower got %v, want 10 events", got)
	}
	mu.Lock()
	if fmt.Sprint(got) != fmt.Sprint(seqs) {
		t.Errorf("followed %v, published %v", got, seqs)
	}
	mu.Unlock()
	if start >= seqs[0] {
		t.Errorf("FollowNew started after %d, first publish was %d", start, seqs[0])
	}

	var replayed []uint64
	err = b.Replay(ctx, filter, seqs[2], seqs[7], func(m bus.Message) error {
		replayed = append(replayed, m.Sequence)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(replayed) != fmt.Sprint(seqs[3:8]) {
		t.Errorf("replayed %v, want %v", replayed, seqs[3:8])
	}
}

func TestPublishWithSameMsgIDIsStoredOnce(t *testing.T) {
	b := openBus(t, t.TempDir())
	defer b.Close()
	ctx := t.Context()
	s1, err := b.Publish(ctx, "qubicle.queue."+acc+".Q.join", []byte(`{}`), "same")
	if err != nil {
		t.Fatal(err)
	}
	s2, err := b.Publish(ctx, "qubicle.queue."+acc+".Q.join", []byte(`{}`), "same")
	if err != nil {
		t.Fatal(err)
	}
	if s1 != s2 {
		t.Errorf("duplicate publish stored twice: %d and %d", s1, s2)
	}
}

func TestEpochSurvivesRestartWithSameDataDir(t *testing.T) {
	dir := t.TempDir()
	b := openBus(t, dir)
	epoch := b.Epoch()
	seq, err := b.Publish(t.Context(), "qubicle.session."+acc+".S.create", []byte(`{}`), "")
	if err != nil {
		t.Fatal(err)
	}
	b.Close()

	b = openBus(t, dir)
	defer b.Close()
	if b.Epoch() != epoch {
		t.Errorf("epoch changed across restart: %s -> %s", epoch, b.Epoch())
	}
	bounds, err := b.Bounds(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if bounds.Last != seq {
		t.Errorf("history lost across restart: last %d, want %d", bounds.Last, seq)
	}
	other := openBus(t, t.TempDir())
	defer other.Close()
	if other.Epoch() == epoch {
		t.Error("a new history got the same epoch")
	}
}

func TestReplayOfEmptyRangeReturnsAtOnce(t *testing.T) {
	b := openBus(t, t.TempDir())
	defer b.Close()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	err := b.Replay(ctx, []string{"qubicle.*." + acc + ".>"}, 0, 100, func(bus.Message) error {
		t.Error("nothing is stored, yet replay delivered")
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func TestUseExistingStreamLeavesRetentionAlone(t *testing.T) {
	ctx := t.Context()
	b := natstest.Bus(t, bus.Config{Listen: "127.0.0.1:0", MaxAge: 48 * time.Hour})
	url := b.Server().ClientURL()
	creds, err := nats.NkeyOptionFromSeed(b.SeedFile(bus.IdentityCCEvents))
	if err != nil {
		t.Fatal(err)
	}
	tool := natstest.Bus(t, bus.Config{URLs: []string{url}, UseExistingStream: true, ConnectOptions: []nats.Option{creds}})
	if tool.Epoch() != b.Epoch() {
		t.Errorf("tool sees epoch %q, server %q", tool.Epoch(), b.Epoch())
	}
	info, err := b.JetStream().Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if got := info.CachedInfo().Config.MaxAge; got != 48*time.Hour {
		t.Errorf("a tool joining the bus changed the stream's max age to %v", got)
	}
}

// Finished replays and stopped followers leave no consumer behind: a stream
// allows only so many, and resuming clients churn through them.
func TestReplayAndFollowLeaveNoConsumers(t *testing.T) {
	b := openBus(t, t.TempDir())
	defer b.Close()
	ctx := t.Context()
	filter := []string{"qubicle.*." + acc + ".>"}
	seq, err := b.Publish(ctx, "qubicle.queue."+acc+".Q.join", []byte(`{}`), "")
	if err != nil {
		t.Fatal(err)
	}
	for range 20 {
		if err := b.Replay(ctx, filter, 0, seq, func(bus.Message) error { return nil }); err != nil {
			t.Fatal(err)
		}
		f, _, err := b.FollowNew(ctx, filter, func(bus.Message) {})
		if err != nil {
			t.Fatal(err)
		}
		f.Stop()
	}
	s, err := b.JetStream().Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		t.Errorf("%d consumers left on the stream after 20 replays and followers", info.State.Consumers)
	}
}

// A Reader knows, before it reads, whether history still holds everything
// after the sequence it was opened after, however the filter thins it out.
func TestReaderKnowsWhetherHistoryReachesBack(t *testing.T) {
	b := openBus(t, t.TempDir())
	defer b.Close()
	ctx := t.Context()
	filter := "qubicle.*." + acc + ".>"
	var mine []uint64
	for i := range 10 {
		// Events of another account sit between this account's.
		if _, err := b.Publish(ctx, "qubicle.queue.ffffffffffffffffffffffffffffffff.Q.join", []byte(`{}`), ""); err != nil {
			t.Fatal(err)
		}
		seq, err := b.Publish(ctx, fmt.Sprintf("qubicle.queue.%s.Q.join", acc), []byte(`{}`), fmt.Sprintf("r-%d", i))
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, seq)
	}
	read := func(t *testing.T, after uint64) (bool, []uint64) {
		t.Helper()
		r, err := b.OpenReplay(ctx, filter, after, mine[len(mine)-1])
		if err != nil {
			t.Fatal(err)
		}
		var got []uint64
		if err := r.Run(ctx, func(m bus.Message) error { got = append(got, m.Sequence); return nil }); err != nil {
			t.Fatal(err)
		}
		return r.Complete(), got
	}
	for _, after := range []uint64{0, 1, mine[0], mine[0] + 1, mine[4]} {
		complete, got := read(t, after)
		var want []uint64
		for _, s := range mine {
			if s > after {
				want = append(want, s)
			}
		}
		if !complete || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("after %d: complete %v, read %v; want complete and %v", after, complete, got, want)
		}
	}

	// Age out everything before this account's sixth event.
	s, err := b.JetStream().Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSequence(mine[5])); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		after    uint64
		complete bool
	}{{mine[2], false}, {mine[5] - 2, false}, {mine[5] - 1, true}, {mine[6], true}} {
		complete, got := read(t, tc.after)
		if complete != tc.complete {
			t.Errorf("after %d with history from %d: complete %v, want %v", tc.after, mine[5], complete, tc.complete)
		}
		if len(got) == 0 || got[0] < mine[5] {
			t.Errorf("after %d: read %v from a history starting at %d", tc.after, got, mine[5])
		}
	}
}
