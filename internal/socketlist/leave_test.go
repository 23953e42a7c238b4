package socketlist_test

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/socketlist"
)

// TestLeaveDeletesAnEntryRewrittenAfterLeaveReadIt: a gateway's own write
// that lands between Leave's read of its entry and the delete (one that
// was in flight when writes stopped: a thawed process's first tick, then
// SIGTERM) does not keep the entry in the registry until its TTL.
func TestLeaveDeletesAnEntryRewrittenAfterLeaveReadIt(t *testing.T) {
	t.Parallel()
	b := natstest.Bus(t, bus.Config{Memory: true})
	kv, err := b.EnsureKeyValue(t.Context(), socketlist.RegistryBucket, bus.ExpireAfter(time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	late := &writeAfterRead{KeyValue: kv}
	r, err := socketlist.Serve(t.Context(), b.Conn(), noSockets{}, socketlist.ServeConfig{Name: "gw-late", Registry: late})
	if err != nil {
		t.Fatal(err)
	}
	late.armed.Store(true)
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	defer cancel()
	if err := r.Leave(ctx); err != nil {
		t.Fatal(err)
	}
	if late.armed.Load() {
		t.Fatal("Leave never read its entry, so this test shows nothing")
	}
	keys, err := kv.Keys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Fatalf("the registry holds %v after the gateway left", keys)
	}
}

// writeAfterRead is the registry bucket, where the first read once armed
// is followed by a rewrite of what it read, before the reader sees it.
type writeAfterRead struct {
	jetstream.KeyValue
	armed atomic.Bool
}

func (w *writeAfterRead) Get(ctx context.Context, key string) (jetstream.KeyValueEntry, error) {
	e, err := w.KeyValue.Get(ctx, key)
	if err == nil && w.armed.CompareAndSwap(true, false) {
		if _, err := w.KeyValue.Put(ctx, key, e.Value()); err != nil {
			return nil, err
		}
	}
	return e, err
}

// noSockets is a gateway with no sockets.
type noSockets struct{}

func (noSockets) Sockets(context.Context, socketlist.Query) socketlist.Answer {
	return socketlist.Answer{}
}
