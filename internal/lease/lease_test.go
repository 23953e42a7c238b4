package lease_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/lease"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/testkit"
)

const ttl = 400 * time.Millisecond

func TestNewRefusesBadConfig(t *testing.T) {
	c := natstest.Start(t, 1)
	kv := bucket(t, c.Connect(), 1)
	for _, tc := range []struct {
		name string
		cfg  lease.Config
	}{
		{"empty owner", lease.Config{}},
		{"owner with a dot", lease.Config{Owner: "a.b"}},
		{"owner with a wildcard", lease.Config{Owner: "n*"}},
		{"renew not below TTL", lease.Config{Owner: "n1", TTL: time.Second, Renew: time.Second}},
		{"tiny TTL", lease.Config{Owner: "n1", TTL: time.Millisecond}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := lease.New(kv, tc.cfg); err == nil {
				t.Fatalf("New(%+v) accepted a bad config", tc.cfg)
			}
		})
	}
	if _, err := lease.New(kv, lease.Config{Owner: "engine-1"}); err != nil {
		t.Fatalf("a plain node id is refused: %v", err)
	}
}

func TestOnlyOneOfManyConcurrentClaimersGetsEachKey(t *testing.T) {
	c := natstest.Start(t, 1)
	var nodes []*node
	for i := 0; i < 6; i++ {
		nodes = append(nodes, newNode(t, c, fmt.Sprintf("n%d", i), ttl, 1))
	}
	claimAtOnce(t, ctxFor(t, 20*time.Second), nodes, 10)
}

func TestHeldLeaseIsRenewedAndStaysExclusive(t *testing.T) {
	c := natstest.Start(t, 1)
	a := newNode(t, c, "a", ttl, 1)
	b := newNode(t, c, "b", ttl, 1)
	ctx := ctxFor(t, 20*time.Second)
	l, err := a.m.TryAcquire(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	first := l.Revision()
	// Several TTLs pass; renewals keep it ours and keep b out.
	testkit.Eventually(t, 10*time.Second, fmt.Sprintf("lease renewed only to revision %d", l.Revision()), func() bool { return l.Revision() >= first+6 })
	if !l.Held() || l.Err() != nil {
		t.Fatalf("renewed lease is not held: %v", l.Err())
	}
	if _, err := b.m.TryAcquire(ctx, "k"); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("another node took a renewed lease: %v", err)
	}
	if owner, err := b.m.OwnerOf(ctx, "k"); err != nil || owner != "a" {
		t.Fatalf("OwnerOf = %q, %v; want a", owner, err)
	}
	if _, err := a.m.TryAcquire(ctx, "k"); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("the holder acquired its own lease twice: %v", err)
	}
}

func TestDeadOwnersLeaseIsTakenOverOnlyAfterItsHolderStopped(t *testing.T) {
	c := natstest.Start(t, 1)
	a := newNode(t, c, "a", ttl, 1)
	// b uses a shorter TTL of its own: the TTL recorded in a's lease is
	// what b must wait for. (Not much shorter: b must renew its own lease
	// within it, which a busy machine does not do within 50 ms.)
	b := newNode(t, c, "b", ttl/2, 1)
	ctx := ctxFor(t, 20*time.Second)
	la, err := a.m.TryAcquire(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	a.die()
	for la.Held() {
		if l, err := b.m.TryAcquire(ctx, "k"); err == nil {
			t.Fatalf("b took the lease at revision %d while a still held it", l.Revision())
		} else if !errors.Is(err, lease.ErrHeld) {
			t.Fatal(err)
		}
		time.Sleep(5 * time.Millisecond)
	}
	lb, err := b.m.Acquire(ctx, "k")
	if err != nil {
		t.Fatalf("b never took over the dead node's lease: %v", err)
	}
	if !lb.Held() {
		t.Fatal("new holder does not hold its lease")
	}
	if la.Held() {
		t.Fatal("both nodes hold the lease")
	}
	<-la.Done()
	if !errors.Is(la.Err(), lease.ErrLost) {
		t.Fatalf("dead holder's lease ended with %v, want ErrLost", la.Err())
	}
	if owner, err := b.m.OwnerOf(ctx, "k"); err != nil || owner != "b" {
		t.Fatalf("after takeover OwnerOf = %q, %v; want b", owner, err)
	}
}

func TestLeaseIsReportedLostWhenTheBucketIsUnreachable(t *testing.T) {
	c := natstest.Start(t, 1)
	a := newNode(t, c, "a", ttl, 1)
	ctx := ctxFor(t, 30*time.Second)
	l, err := a.m.TryAcquire(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	c.Kill(0)
	select {
	case <-l.Done():
	case <-ctx.Done():
		t.Fatal("no loss reported while NATS is down")
	}
	if !errors.Is(l.Err(), lease.ErrLost) || !errors.Is(context.Cause(l.Context()), lease.ErrLost) {
		t.Fatalf("lease ended with %v, want ErrLost", l.Err())
	}
	if l.Held() {
		t.Fatal("a lost lease still reports held")
	}
	if err := l.Release(ctx); !errors.Is(err, lease.ErrLost) {
		t.Fatalf("Release of a lost lease = %v, want ErrLost", err)
	}

	// The stored lease is this node's own: once NATS is back it is taken
	// back without waiting for it to expire.
	c.Restart(0)
	l2, err := a.m.Acquire(ctx, "k")
	if err != nil {
		t.Fatalf("reacquire after NATS came back: %v", err)
	}
	if !l2.Held() {
		t.Fatal("reacquired lease not held")
	}
}

func TestReleasedLeaseCanBeTakenAtOnce(t *testing.T) {
	c := natstest.Start(t, 1)
	// A long TTL: only a release (not expiry) can explain b getting it.
	a := newNode(t, c, "a", time.Hour, 1)
	b := newNode(t, c, "b", time.Hour, 1)
	ctx := ctxFor(t, 20*time.Second)
	for round := 0; round < 3; round++ {
		la, err := a.m.TryAcquire(ctx, "k")
		if err != nil {
			t.Fatalf("round %d: a: %v", round, err)
		}
		if _, err := b.m.TryAcquire(ctx, "k"); !errors.Is(err, lease.ErrHeld) {
			t.Fatalf("round %d: b got a held lease: %v", round, err)
		}
		if err := la.Release(ctx); err != nil {
			t.Fatalf("round %d: release: %v", round, err)
		}
		if la.Held() || !errors.Is(la.Err(), lease.ErrReleased) {
			t.Fatalf("round %d: released lease: held=%v err=%v", round, la.Held(), la.Err())
		}
		if err := la.Release(ctx); err != nil {
			t.Fatalf("round %d: second release: %v", round, err)
		}
		lb, err := b.m.TryAcquire(ctx, "k")
		if err != nil {
			t.Fatalf("round %d: b could not take a released lease: %v", round, err)
		}
		if err := lb.Release(ctx); err != nil {
			t.Fatal(err)
		}
	}
}

func TestAcquireWaitsForRelease(t *testing.T) {
	c := natstest.Start(t, 1)
	a := newNode(t, c, "a", time.Hour, 1)
	b := newNode(t, c, "b", time.Hour, 1)
	ctx := ctxFor(t, 20*time.Second)
	la, err := a.m.TryAcquire(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	got := make(chan error, 1)
	go func() {
		_, err := b.m.Acquire(ctx, "k")
		got <- err
	}()
	// b must still be waiting while a holds the lease.
	select {
	case err := <-got:
		t.Fatalf("Acquire returned while the lease was held: %v", err)
	case <-time.After(50 * time.Millisecond):
	}
	if err := la.Release(ctx); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatalf("Acquire after release: %v", err)
	}
}

func TestAcquireGivesUpWhenItsContextEnds(t *testing.T) {
	c := natstest.Start(t, 1)
	a := newNode(t, c, "a", time.Hour, 1)
	b := newNode(t, c, "b", time.Hour, 1)
	if _, err := a.m.TryAcquire(ctxFor(t, 10*time.Second), "k"); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if _, err := b.m.Acquire(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Acquire of a held lease = %v, want the context's deadline", err)
	}
}

func TestGarbageInTheBucketIsNotTakenBeforeItWouldExpire(t *testing.T) {
	c := natstest.Start(t, 1)
	nc := c.Connect()
	kv := bucket(t, nc, 1)
	ctx := ctxFor(t, 20*time.Second)
	if _, err := kv.Put(ctx, "k", []byte("not a lease")); err != nil {
		t.Fatal(err)
	}
	a := newNode(t, c, "a", ttl, 1)
	if _, err := a.m.TryAcquire(ctx, "k"); !errors.Is(err, lease.ErrHeld) {
		t.Fatalf("first claim of an unreadable lease = %v, want ErrHeld", err)
	}
	if _, err := a.m.Acquire(ctx, "k"); err != nil {
		t.Fatalf("an unreadable lease never expired: %v", err)
	}
}
