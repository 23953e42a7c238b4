package lease_test

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/lease"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/testkit"
)

// bucket opens the lease bucket the way bus.KeyValue does (history 1).
func bucket(t *testing.T, nc *nats.Conn, replicas int) jetstream.KeyValue {
	t.Helper()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	// A just-formed cluster on a busy machine may not answer a create
	// (no meta leader yet, a request lost in an election): each attempt
	// gets its own deadline and the next one follows, as bus.KeyValue does.
	var kv jetstream.KeyValue
	testkit.EventuallyNoError(t, 2*time.Minute, "open lease bucket", func() error {
		attempt, cancelAttempt := context.WithTimeout(ctx, 10*time.Second)
		defer cancelAttempt()
		kv, err = js.CreateOrUpdateKeyValue(attempt, jetstream.KeyValueConfig{
			Bucket: lease.Bucket, History: 1, Replicas: replicas, Storage: jetstream.FileStorage,
		})
		return err
	})
	// On a cluster that just formed, a replica may not answer reads yet
	// ("no responders"): the tests start once this node can read.
	testkit.Eventually(t, time.Minute, "lease bucket not readable from this node", func() bool {
		_, err := kv.Get(ctx, "readiness-probe")
		return errors.Is(err, jetstream.ErrKeyNotFound)
	})
	return kv
}

// node is one simulated engine node: its own NATS connection and manager.
type node struct {
	nc *nats.Conn
	m  *lease.Manager
}

func newNode(t *testing.T, c *natstest.Cluster, owner string, ttl time.Duration, replicas int) *node {
	t.Helper()
	nc := c.Connect(nats.Name(owner))
	m, err := lease.New(bucket(t, nc, replicas), lease.Config{Owner: owner, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return &node{nc: nc, m: m}
}

// die stops the node as a crash would: no more renewals, no release.
func (n *node) die() { n.nc.Close() }

// claimAtOnce has every node try for each of keys leases at the same
// moment, and fails the test unless exactly one gets each: the others
// must be told ErrHeld.
func claimAtOnce(t *testing.T, ctx context.Context, nodes []*node, keys int) {
	t.Helper()
	for k := 0; k < keys; k++ {
		key := fmt.Sprintf("account.k%d", k)
		var wg sync.WaitGroup
		errs := make([]error, len(nodes))
		start := make(chan struct{})
		for i, n := range nodes {
			wg.Go(func() {
				<-start
				_, errs[i] = n.m.TryAcquire(ctx, key)
			})
		}
		close(start)
		wg.Wait()
		winners := 0
		for i, err := range errs {
			switch {
			case err == nil:
				winners++
			case !errors.Is(err, lease.ErrHeld):
				t.Fatalf("%s: claimer %d of %d: %v", key, i, len(nodes), err)
			}
		}
		if winners != 1 {
			t.Fatalf("%s: %d of %d claimers got the lease, want exactly 1", key, winners, len(nodes))
		}
	}
}

func ctxFor(t *testing.T, d time.Duration) context.Context {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), d)
	t.Cleanup(cancel)
	return ctx
}
