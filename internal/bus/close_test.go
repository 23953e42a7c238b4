package bus_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/testkit"
)

func TestCloseReturnsOnceTheConnectionHasDrained(t *testing.T) {
	var closedHandlerRan atomic.Bool
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	b := natstest.Bus(t, bus.Config{Name: "test", ConnectOptions: []nats.Option{
		nats.ClosedHandler(func(*nats.Conn) { closedHandlerRan.Store(true) }),
	}})
	const n = 100
	var handled atomic.Int64
	release := make(chan struct{})
	if _, err := b.Conn().Subscribe("drain.me", func(*nats.Msg) {
		<-release // held until the drain has begun
		handled.Add(1)
	}); err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := b.Conn().Publish("drain.me", nil); err != nil {
			t.Fatal(err)
		}
	}
	// The server answers the flush after it has delivered every message
	// published before it: all n are now received, most not yet handled.
	if err := b.Conn().FlushWithContext(ctx); err != nil {
		t.Fatal(err)
	}
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		b.Close()
	}()
	if !testkit.Until(ctx, 20*time.Second, func() bool { return b.Conn().IsDraining() || b.Conn().IsClosed() }) {
		t.Fatal("the connection never began to drain")
	}
	close(release)
	select {
	case <-closed:
	case <-ctx.Done():
		t.Fatal("Close did not return")
	}
	if got := handled.Load(); got != n {
		t.Errorf("Close returned with %d of %d received messages handled", got, n)
	}
	if !closedHandlerRan.Load() {
		t.Error("Close returned before the caller's own closed handler ran")
	}
	if !b.Conn().IsClosed() {
		t.Error("Close returned with the connection still open")
	}
}

func TestCloseEndsAConnectionThatCannotDrain(t *testing.T) {
	b := openBus(t, t.TempDir())
	stuck := make(chan struct{})
	defer close(stuck)
	received := make(chan struct{})
	if _, err := b.Conn().Subscribe("stuck", func(*nats.Msg) {
		close(received)
		<-stuck // a handler that never finishes by itself
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.Conn().Publish("stuck", nil); err != nil {
		t.Fatal(err)
	}
	<-received
	b.Close() // returns after its drain deadline
	if !b.Conn().IsClosed() {
		t.Error("Close returned with the connection still open")
	}
}
