package lease_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ccevents/ccevents/internal/lease"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/testkit"
)

// clusterNode is a lease node attached to NATS node i first.
func clusterNode(t *testing.T, c *natstest.Cluster, i int, owner string, ttl time.Duration) *node {
	t.Helper()
	nc := c.ConnectTo(i, nats.Name(owner))
	m, err := lease.New(bucket(t, nc, 3), lease.Config{Owner: owner, TTL: ttl})
	if err != nil {
		t.Fatal(err)
	}
	return &node{nc: nc, m: m}
}

func TestClusterGrantsEachKeyToOneOfManyConcurrentClaimers(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	c := natstest.Start(t, 3)
	var nodes []*node
	for i := 0; i < 3; i++ {
		nodes = append(nodes, clusterNode(t, c, i, fmt.Sprintf("e%d", i), 2*time.Second))
	}
	claimAtOnce(t, ctxFor(t, 30*time.Second), nodes, 10)
}

// A NATS node dying (here the leader of the lease bucket) must neither give
// an account two owners nor leave one unowned; the balancers' leases ride
// out the bucket's leader election when the TTL is longer than it.
func TestClusterBalancersSurviveTheLossOfTheBucketLeader(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
	c := natstest.Start(t, 3)
	tr := newTracker(accountIDs(12)...)
	for i := 0; i < 3; i++ {
		name := fmt.Sprintf("e%d", i)
		runBalancer(t, clusterNode(t, c, i, name, 3*time.Second), tr.config(name))
	}
	testkit.Eventually(t, 30*time.Second, fmt.Sprintf("accounts split %v, want 4 each", tr.counts()), balanced(tr, map[string]int{"e0": 4, "e1": 4, "e2": 4}))

	leader := c.WaitStreamLeader("KV_" + lease.Bucket)
	c.Kill(leader)
	// Keep watching for a while after the kill: renewals go through the
	// election of a new bucket leader.
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		tr.check(t)
		if t.Failed() {
			t.FailNow()
		}
		time.Sleep(50 * time.Millisecond)
	}
	testkit.Eventually(t, 30*time.Second, fmt.Sprintf("after NATS node %d died accounts run %v, want all 12", leader, tr.counts()), func() bool {
		total := 0
		for _, n := range tr.counts() {
			total += n
		}
		return total == 12
	})
	tr.mu.Lock()
	t.Logf("killed NATS node n%d (bucket leader); leases lost during the election: %v", leader+1, tr.lostDead)
	tr.mu.Unlock()
	tr.check(t)
}
