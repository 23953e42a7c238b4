package lease_test

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/lease"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/testkit"
)

// tracker plays the engine: it records who runs which account and flags
// any moment where two nodes would run the same one.
type tracker struct {
	mu         sync.Mutex
	accounts   []string
	running    map[string]run // account -> current runner
	violations []string
	lostLive   map[string]int // node -> accounts given back while still owned
	lostDead   map[string]int // node -> accounts lost after ownership ended
	failFirst  map[string]bool
	failed     map[string]int
}

type run struct {
	node string
	ctx  context.Context
}

func newTracker(accounts ...string) *tracker {
	return &tracker{
		accounts: accounts,
		running:  map[string]run{},
		lostLive: map[string]int{},
		lostDead: map[string]int{},
		failed:   map[string]int{},
	}
}

func accountIDs(n int) []string {
	var ids []string
	for i := 0; i < n; i++ {
		ids = append(ids, fmt.Sprintf("%032x", i+1))
	}
	return ids
}

func (tr *tracker) setAccounts(ids []string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	tr.accounts = ids
}

func (tr *tracker) config(node string) lease.BalancerConfig {
	return lease.BalancerConfig{
		Accounts: func(context.Context) ([]string, error) {
			tr.mu.Lock()
			defer tr.mu.Unlock()
			return slices.Clone(tr.accounts), nil
		},
		OnAcquired: func(ctx context.Context, acc string) error {
			tr.mu.Lock()
			defer tr.mu.Unlock()
			if tr.failFirst[acc] && tr.failed[acc] == 0 {
				tr.failed[acc]++
				return fmt.Errorf("cannot load %s", acc)
			}
			if prev, ok := tr.running[acc]; ok && prev.ctx.Err() == nil {
				tr.violations = append(tr.violations, fmt.Sprintf("%s started on %s while %s still owned it", acc, node, prev.node))
			}
			tr.running[acc] = run{node: node, ctx: ctx}
			return nil
		},
		OnLost: func(ctx context.Context, acc string) {
			tr.mu.Lock()
			defer tr.mu.Unlock()
			if r, ok := tr.running[acc]; ok && r.node == node {
				delete(tr.running, acc)
			}
			if ctx.Err() == nil {
				tr.lostLive[node]++
			} else {
				tr.lostDead[node]++
			}
		},
	}
}

// counts is how many accounts each node runs, by the tracker's record.
func (tr *tracker) counts() map[string]int {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	out := map[string]int{}
	for _, r := range tr.running {
		out[r.node]++
	}
	return out
}

func (tr *tracker) check(t *testing.T) {
	t.Helper()
	tr.mu.Lock()
	defer tr.mu.Unlock()
	for _, v := range tr.violations {
		t.Error(v)
	}
}

// runBalancer runs a balancer for n until the test ends or stop is called.
func runBalancer(t *testing.T, n *node, cfg lease.BalancerConfig) (*lease.Balancer, func()) {
	t.Helper()
	b, err := lease.NewBalancer(n.m, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = b.Run(ctx)
	}()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
		})
	}
	t.Cleanup(stop)
	return b, stop
}

func balanced(tr *tracker, want map[string]int) func() bool {
	return func() bool {
		got := tr.counts()
		for node, n := range want {
			if got[node] != n {
				return false
			}
		}
		total := 0
		for _, n := range got {
			total += n
		}
		tr.mu.Lock()
		defer tr.mu.Unlock()
		return total == len(tr.accounts)
	}
}

func TestNewBalancerRefusesMissingCallbacks(t *testing.T) {
	c := natstest.Start(t, 1)
	n := newNode(t, c, "a", ttl, 1)
	if _, err := lease.NewBalancer(n.m, lease.BalancerConfig{}); err == nil {
		t.Fatal("a balancer without callbacks was accepted")
	}
}

func TestBalancerSplitsAccountsEvenlyAndExclusively(t *testing.T) {
	c := natstest.Start(t, 1)
	tr := newTracker(accountIDs(12)...)
	var bs []*lease.Balancer
	for _, name := range []string{"a", "b", "c"} {
		b, _ := runBalancer(t, newNode(t, c, name, time.Second, 1), tr.config(name))
		bs = append(bs, b)
	}
	testkit.Eventually(t, 20*time.Second, fmt.Sprintf("accounts split %v, want 4 each", tr.counts()), balanced(tr, map[string]int{"a": 4, "b": 4, "c": 4}))
	var all []string
	for _, b := range bs {
		all = append(all, b.Owned()...)
	}
	slices.Sort(all)
	if !slices.Equal(all, accountIDs(12)) {
		t.Errorf("balancers report owning %v, want every account once", all)
	}
	tr.check(t)
}

func TestBalancerTakesOverTheAccountsOfADeadNode(t *testing.T) {
	c := natstest.Start(t, 1)
	tr := newTracker(accountIDs(9)...)
	nodes := map[string]*node{}
	for _, name := range []string{"a", "b", "c"} {
		nodes[name] = newNode(t, c, name, time.Second, 1)
		runBalancer(t, nodes[name], tr.config(name))
	}
	testkit.Eventually(t, 20*time.Second, fmt.Sprintf("accounts split %v, want 3 each", tr.counts()), balanced(tr, map[string]int{"a": 3, "b": 3, "c": 3}))

	nodes["a"].die()
	// a's three accounts end up on b and c (5 and 4, either way round).
	testkit.Eventually(t, 20*time.Second, fmt.Sprintf("after a died accounts are split %v", tr.counts()), func() bool {
		got := tr.counts()
		return got["a"] == 0 && got["b"]+got["c"] == 9 && got["b"] >= 4 && got["c"] >= 4
	})
	tr.mu.Lock()
	if tr.lostDead["a"] != 3 {
		t.Errorf("dead node was told of %d lost accounts, want 3", tr.lostDead["a"])
	}
	tr.mu.Unlock()
	tr.check(t)
}

func TestBalancerShedsToAJoiningNodeAndHandsOverOnShutdown(t *testing.T) {
	c := natstest.Start(t, 1)
	tr := newTracker(accountIDs(6)...)
	// An hour-long TTL: every move below is a hand-over, none an expiry.
	_, stopA := runBalancer(t, newNode(t, c, "a", time.Hour, 1), tr.config("a"))
	testkit.Eventually(t, 10*time.Second, fmt.Sprintf("lone node runs %v, want all 6", tr.counts()), balanced(tr, map[string]int{"a": 6}))

	runBalancer(t, newNode(t, c, "b", time.Hour, 1), tr.config("b"))
	testkit.Eventually(t, 10*time.Second, fmt.Sprintf("after b joined accounts are split %v, want 3 each", tr.counts()), balanced(tr, map[string]int{"a": 3, "b": 3}))

	stopA()
	testkit.Eventually(t, 10*time.Second, fmt.Sprintf("after a stopped accounts are split %v, want all on b", tr.counts()), balanced(tr, map[string]int{"a": 0, "b": 6}))
	tr.mu.Lock()
	if tr.lostLive["a"] != 6 || tr.lostDead["a"] != 0 {
		t.Errorf("a gave back %d accounts while owning them and %d after, want 6 and 0", tr.lostLive["a"], tr.lostDead["a"])
	}
	tr.mu.Unlock()
	tr.check(t)
}

func TestBalancerGivesBackAnAccountNoLongerListed(t *testing.T) {
	c := natstest.Start(t, 1)
	ids := accountIDs(3)
	tr := newTracker(ids...)
	b, _ := runBalancer(t, newNode(t, c, "a", time.Second, 1), tr.config("a"))
	testkit.Eventually(t, 10*time.Second, fmt.Sprintf("owns %v", b.Owned()), func() bool { return len(b.Owned()) == 3 })
	tr.setAccounts(ids[:2])
	testkit.Eventually(t, 10*time.Second, fmt.Sprintf("owns %v, want %v", b.Owned(), ids[:2]), func() bool { return slices.Equal(b.Owned(), ids[:2]) })
	// Owned drops an account the moment it is being given back; OnLost
	// stops it just after, on the account's own goroutine.
	given := func() (bool, int) {
		tr.mu.Lock()
		defer tr.mu.Unlock()
		_, running := tr.running[ids[2]]
		return running, tr.lostLive["a"]
	}
	testkit.Eventually(t, 10*time.Second, "unlisted account not stopped", func() bool { running, lost := given(); return !running && lost >= 1 })
	if running, lost := given(); running || lost != 1 {
		t.Errorf("unlisted account still running (%v) or given back %d times, want once", running, lost)
	}
}

func TestBalancerRetriesAnAccountWhoseStartFailed(t *testing.T) {
	c := natstest.Start(t, 1)
	ids := accountIDs(2)
	tr := newTracker(ids...)
	tr.failFirst = map[string]bool{ids[0]: true}
	b, _ := runBalancer(t, newNode(t, c, "a", 300*time.Millisecond, 1), tr.config("a"))
	testkit.Eventually(t, 10*time.Second, fmt.Sprintf("runs %v, want both accounts", tr.counts()), func() bool { return len(tr.counts()) == 1 && tr.counts()["a"] == 2 })
	tr.mu.Lock()
	defer tr.mu.Unlock()
	if tr.failed[ids[0]] != 1 || tr.lostLive["a"] != 1 {
		t.Errorf("failed start: %d failures, %d OnLost; want 1 and 1", tr.failed[ids[0]], tr.lostLive["a"])
	}
	if !slices.Equal(b.Owned(), ids) {
		t.Errorf("owns %v, want %v", b.Owned(), ids)
	}
}
