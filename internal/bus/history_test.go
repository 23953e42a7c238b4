package bus_test

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/testkit"
)

// publishMixed stores n events of acc with events of another account in
// between, and returns acc's sequences.
func publishMixed(t *testing.T, b *bus.Bus, n int) []uint64 {
	t.Helper()
	ctx := t.Context()
	var mine []uint64
	for i := range n {
		if _, err := b.Publish(ctx, "qubicle.recipient.ffffffffffffffffffffffffffffffff.R.ready", []byte(`{}`), ""); err != nil {
			t.Fatal(err)
		}
		seq, err := b.Publish(ctx, fmt.Sprintf("qubicle.queue.%s.Q%d.join", acc, i%4), fmt.Appendf(nil, `{"i":%d}`, i), "")
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, seq)
	}
	return mine
}

// readAll reads (after, until] in batches of batch events.
func readAll(t *testing.T, b *bus.Bus, filter string, after, until uint64, batch int) []uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	r, err := b.OpenReplay(ctx, filter, after, until)
	if err != nil {
		t.Fatal(err)
	}
	var got []uint64
	for calls := 0; ; calls++ {
		if calls > 1000 {
			t.Fatalf("reader still not done after %d batches, read %v", calls, got)
		}
		done, err := r.Next(ctx, batch, 1<<20, func(m bus.Message) error {
			if m.Subject == "" || len(m.Data) == 0 {
				t.Errorf("message %d read without its subject or data", m.Sequence)
			}
			got = append(got, m.Sequence)
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if done {
			return got
		}
	}
}

func TestReaderReadsInBatchesUpToItsBound(t *testing.T) {
	b := openBus(t, t.TempDir())
	defer b.Close()
	mine := publishMixed(t, b, 40)
	filter := "qubicle.*." + acc + ".>"
	tests := []struct {
		name         string
		after, until uint64
		batch        int
		want         []uint64
	}{
		{"all of it, one batch", 0, mine[39], 128, mine},
		{"all of it, batches of 3", 0, mine[39], 3, mine},
		{"a window", mine[9], mine[19], 4, mine[10:20]},
		{"bound between two events", mine[9], mine[19] - 1, 4, mine[10:19]},
		{"bound beyond the end", mine[35], mine[39] + 1000, 2, mine[36:]},
		{"nothing after", mine[39], mine[39] + 5, 8, nil},
		{"empty range", mine[5], mine[5], 8, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := readAll(t, b, filter, tt.after, tt.until, tt.batch); !slices.Equal(got, tt.want) {
				t.Errorf("read %v, want %v", got, tt.want)
			}
		})
	}
}

// Reading history creates no consumer, however many readers there are.
func TestManyReadersCreateNoConsumer(t *testing.T) {
	b := openBus(t, t.TempDir())
	defer b.Close()
	ctx := t.Context()
	mine := publishMixed(t, b, 10)
	s, err := b.JetStream().Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	var readers []*bus.Reader
	for range 1500 {
		r, err := b.OpenReplay(ctx, "qubicle.*."+acc+".>", mine[2], mine[9])
		if err != nil {
			t.Fatal(err)
		}
		readers = append(readers, r)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != 0 {
		t.Fatalf("%d consumers on the stream with 1,500 readers open", info.State.Consumers)
	}
	for _, r := range readers[:3] {
		var got []uint64
		if err := r.Run(ctx, func(m bus.Message) error { got = append(got, m.Sequence); return nil }); err != nil {
			t.Fatal(err)
		}
		if !slices.Equal(got, mine[3:]) {
			t.Fatalf("read %v, want %v", got, mine[3:])
		}
	}
}

// On a replicated stream any replica may answer a direct get; the reader
// still ends exactly at its bound, whichever answered.
func TestReaderOnAReplicatedStream(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := natstest.Start(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	var buses []*bus.Bus
	for i := range 3 {
		buses = append(buses, natstest.Bus(t, bus.Config{URLs: []string{c.URL(i)}, Replicas: 3, Name: fmt.Sprintf("reader-%d", i)}))
	}
	// A stream just made on a cluster takes a moment to elect its leader,
	// and each node a moment more to route publishes to it: wait until a
	// publish through every node is stored.
	for i, b := range buses {
		testkit.EventuallyNoError(t, 30*time.Second, fmt.Sprintf("the replicated stream to take a publish through node %d", i), func() error {
			_, err := b.Publish(ctx, "qubicle.queue.ffffffffffffffffffffffffffffffff.Q.join", []byte(`{}`), "")
			return err
		})
	}
	mine := publishMixed(t, buses[0], 30)
	for i, b := range buses {
		// Published through another node just now: a follower may not
		// have all of it yet.
		last, err := buses[(i+1)%3].Publish(ctx, "qubicle.queue."+acc+".Q9.join", []byte(`{}`), "")
		if err != nil {
			t.Fatal(err)
		}
		want := append(slices.Clone(mine[10:]), last)
		if got := readAll(t, b, "qubicle.*."+acc+".>", mine[9], last, 7); !slices.Equal(got, want) {
			t.Fatalf("through node %d: read %v, want %v", i, got, want)
		}
		mine = append(mine, last)
	}
}

// A stream made before direct gets (allow_direct off) is still read, from
// its leader one event at a time, and still tells an aged-out cursor.
func TestReaderOnAStreamWithoutDirectGets(t *testing.T) {
	b := openBus(t, t.TempDir())
	defer b.Close()
	ctx := t.Context()
	s, err := b.JetStream().Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.CachedInfo().Config
	cfg.AllowDirect = false
	if _, err := b.JetStream().UpdateStream(ctx, cfg); err != nil {
		t.Fatal(err)
	}
	mine := publishMixed(t, b, 12)
	if got := readAll(t, b, "qubicle.*."+acc+".>", mine[3], mine[9], 4); !slices.Equal(got, mine[4:10]) {
		t.Fatalf("read %v, want %v", got, mine[4:10])
	}
	if err := s.Purge(ctx, jetstream.WithPurgeSequence(mine[6])); err != nil {
		t.Fatal(err)
	}
	r, err := b.OpenReplay(ctx, "qubicle.*."+acc+".>", mine[2], mine[11])
	if err != nil {
		t.Fatal(err)
	}
	if r.Complete() || r.Start() != mine[6] {
		t.Fatalf("complete %v from %d after a purge up to %d", r.Complete(), r.Start(), mine[6])
	}
}
