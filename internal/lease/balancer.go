package lease

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/backoff"
)

// Key prefixes of the Balancer in the lease bucket: one lease per account,
// and one per live node so each node can count its peers.
const (
	AccountPrefix = "account."
	NodePrefix    = "node."
)

// AccountKey is the lease key of an account.
func AccountKey(account string) string { return AccountPrefix + account }

// BalancerConfig says which accounts to split and what to do on gaining and
// losing one. Accounts, OnAcquired and OnLost are required.
type BalancerConfig struct {
	// Accounts lists every account to be split between nodes. It is asked
	// every round; an account it stops listing is given back.
	Accounts func(ctx context.Context) ([]string, error)
	// OnAcquired starts running an account this node now owns. ctx is done
	// the moment ownership ends. An error gives the account back (OnLost
	// still follows) and this node leaves it alone for a few rounds.
	OnAcquired func(ctx context.Context, account string) error
	// OnLost stops running an account. It is called exactly once after each
	// OnAcquired has returned. ctx is still live when this node gives the
	// account away on purpose (rebalancing, shutdown): it owns it until
	// OnLost returns, so it may publish what stopping produces. ctx is
	// already done when the lease was lost: another node may own the
	// account by now, so nothing may be published for it. OnLost must
	// return promptly; the account's next owner waits for it on a hand-over.
	OnLost func(ctx context.Context, account string)
	// Interval between rounds; zero is the manager's renew interval.
	Interval time.Duration
}

// Balancer keeps this node owning its fair share of the accounts: with N
// live nodes and A accounts it holds at most ceil(A/N), takes free and
// expired accounts while it has fewer, and gives back the excess when
// nodes join. Each node prefers accounts by rendezvous hashing of node and
// account, so nodes rarely race for the same account.
type Balancer struct {
	m   *Manager
	cfg BalancerConfig

	mu       sync.Mutex
	view     map[string]viewEntry // lease key -> last stored lease
	synced   bool                 // the watch has delivered what was stored
	owned    map[string]*ownership
	cooldown map[string]time.Time // account -> no claim before
	wg       sync.WaitGroup
	wake     chan struct{}
}

type viewEntry struct {
	owner string
	rev   uint64
}

type ownership struct {
	lease   *Lease
	giveUp  chan struct{} // closed to give the account back on purpose
	leaving bool
}

// NewBalancer returns a Balancer splitting accounts through m's leases.
func NewBalancer(m *Manager, cfg BalancerConfig) (*Balancer, error) {
	if m == nil || cfg.Accounts == nil || cfg.OnAcquired == nil || cfg.OnLost == nil {
		return nil, errors.New("lease: a balancer needs a manager, Accounts, OnAcquired and OnLost")
	}
	if cfg.Interval <= 0 {
		cfg.Interval = m.cfg.Renew
	}
	return &Balancer{
		m:        m,
		cfg:      cfg,
		view:     make(map[string]viewEntry),
		owned:    make(map[string]*ownership),
		cooldown: make(map[string]time.Time),
		wake:     make(chan struct{}, 1),
	}, nil
}

// Owned lists the accounts this node runs now, sorted.
func (b *Balancer) Owned() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	out := make([]string, 0, len(b.owned))
	for acc, o := range b.owned {
		if !o.leaving {
			out = append(out, acc)
		}
	}
	slices.Sort(out)
	return out
}

// Run balances until ctx ends, then gives every account back (OnLost with a
// live context, then release) so other nodes take them over at once, and
// returns. A node that dies without Run returning loses its accounts to
// the others after 5/4 of the TTL. Call Run once.
func (b *Balancer) Run(ctx context.Context) error {
	watchCtx, stopWatch := context.WithCancel(ctx)
	watchDone := make(chan struct{})
	go func() {
		defer close(watchDone)
		b.watch(watchCtx)
	}()
	defer func() {
		stopWatch()
		<-watchDone
	}()

	var node *Lease
	tick := time.NewTicker(b.cfg.Interval)
	defer tick.Stop()
	minGap := min(b.cfg.Interval/10, 100*time.Millisecond)
	for {
		if b.isSynced() {
			node = b.round(ctx, node)
		}
		select {
		case <-ctx.Done():
			b.shutdown(node)
			return nil
		case <-tick.C:
		case <-b.wake:
			// Many releases at once (a node shutting down) wake us many
			// times; one round per gap sees them all.
			select {
			case <-ctx.Done():
			case <-time.After(minGap):
			}
		}
	}
}

func (b *Balancer) poke() {
	select {
	case b.wake <- struct{}{}:
	default:
	}
}

func (b *Balancer) isSynced() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.synced
}

// watch keeps the view of the bucket current and restarts after errors.
func (b *Balancer) watch(ctx context.Context) {
	for ctx.Err() == nil {
		w, err := b.m.kv.WatchFiltered(ctx, []string{AccountPrefix + ">", NodePrefix + ">"})
		if err != nil {
			b.m.log.Warn("watch leases; retrying", "err", err)
			_ = backoff.Sleep(ctx, b.cfg.Interval)
			continue
		}
		for e := range w.Updates() {
			b.apply(e)
		}
		_ = w.Stop()
		_ = backoff.Sleep(ctx, b.m.retry)
	}
}

func (b *Balancer) apply(e jetstream.KeyValueEntry) {
	if e == nil {
		b.mu.Lock()
		b.synced = true
		b.mu.Unlock()
		b.poke()
		return
	}
	key := e.Key()
	if e.Operation() != jetstream.KeyValuePut {
		b.mu.Lock()
		delete(b.view, key)
		b.mu.Unlock()
		b.m.forget(key)
		b.poke() // a freed account, or a node gone: claim without waiting
		return
	}
	rec := b.m.parseRecord(e.Value())
	b.m.observe(key, e.Revision(), time.Duration(rec.TTLms)*time.Millisecond)
	b.mu.Lock()
	_, known := b.view[key]
	b.view[key] = viewEntry{owner: rec.Owner, rev: e.Revision()}
	b.mu.Unlock()
	if !known && strings.HasPrefix(key, NodePrefix) {
		b.poke() // a node joined: our share may have shrunk
	}
}

// round renews this node's membership, then gives back and claims accounts
// to approach its fair share. It returns the node lease.
func (b *Balancer) round(ctx context.Context, node *Lease) *Lease {
	if node == nil || !node.Held() {
		l, err := b.m.TryAcquire(ctx, NodePrefix+b.m.cfg.Owner)
		if err != nil {
			// Without membership others do not count us; claiming now
			// would skew every share.
			b.m.log.Warn("cannot join the engine nodes; retrying", "node", b.m.cfg.Owner, "err", err)
			return nil
		}
		node = l
	}
	accounts, err := b.cfg.Accounts(ctx)
	if err != nil {
		b.m.log.Warn("list accounts to balance; retrying", "err", err)
		return node
	}
	listed := make(map[string]bool, len(accounts))
	for _, a := range accounts {
		listed[a] = true
	}
	nodes := b.liveNodes()
	share := (len(listed) + nodes - 1) / nodes

	b.mu.Lock()
	var mine []string
	for acc, o := range b.owned {
		switch {
		case o.leaving:
		case !listed[acc]:
			b.giveBackLocked(acc, o)
		default:
			mine = append(mine, acc)
		}
	}
	// Give back the accounts we like least when holding too many.
	if excess := len(mine) - share; excess > 0 {
		slices.SortFunc(mine, func(x, y string) int { return cmp.Compare(b.score(x), b.score(y)) })
		for _, acc := range mine[:excess] {
			b.giveBackLocked(acc, b.owned[acc])
		}
		b.mu.Unlock()
		return node
	}
	need := share - len(mine)
	var free []string
	now := time.Now()
	for acc := range listed {
		if _, ok := b.owned[acc]; ok || now.Before(b.cooldown[acc]) {
			continue
		}
		key := AccountKey(acc)
		if v, ok := b.view[key]; !ok || b.m.expired(key, v.rev) {
			free = append(free, acc)
		}
	}
	for acc, until := range b.cooldown {
		if now.After(until) {
			delete(b.cooldown, acc)
		}
	}
	b.mu.Unlock()
	if need <= 0 || len(free) == 0 {
		return node
	}
	slices.SortFunc(free, func(x, y string) int { return cmp.Compare(b.score(y), b.score(x)) })
	for _, acc := range free {
		if need == 0 || ctx.Err() != nil {
			break
		}
		l, err := b.m.TryAcquire(ctx, AccountKey(acc))
		if errors.Is(err, ErrHeld) {
			continue
		}
		if errors.Is(err, jetstream.ErrInvalidKey) {
			b.m.log.Error("account id cannot be a lease key; it is not run", "account", acc)
			b.mu.Lock()
			b.cooldown[acc] = time.Now().Add(100 * b.cfg.Interval)
			b.mu.Unlock()
			continue
		}
		if err != nil {
			b.m.log.Warn("claim account; retrying next round", "account", acc, "err", err)
			break
		}
		b.own(acc, l)
		need--
	}
	return node
}

// liveNodes counts nodes whose membership lease is current, this one
// included.
func (b *Balancer) liveNodes() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 1
	self := NodePrefix + b.m.cfg.Owner
	for key, v := range b.view {
		if strings.HasPrefix(key, NodePrefix) && key != self && !b.m.expired(key, v.rev) {
			n++
		}
	}
	return n
}

// score ranks accounts for this node (rendezvous hashing).
func (b *Balancer) score(account string) uint64 {
	h := fnv.New64a()
	h.Write([]byte(b.m.cfg.Owner))
	h.Write([]byte{0})
	h.Write([]byte(account))
	return h.Sum64()
}

// own starts running acc under l: OnAcquired, then wait for the lease to
// end or to be given back, then OnLost and release.
func (b *Balancer) own(acc string, l *Lease) {
	o := &ownership{lease: l, giveUp: make(chan struct{})}
	b.mu.Lock()
	b.owned[acc] = o
	b.mu.Unlock()
	b.m.log.Info("account acquired", "account", acc, "node", b.m.cfg.Owner)
	b.wg.Add(1)
	go func() {
		defer b.wg.Done()
		err := b.cfg.OnAcquired(l.Context(), acc)
		if err != nil {
			b.m.log.Error("starting an account failed; giving it back", "account", acc, "err", err)
		} else {
			select {
			case <-l.Done():
			case <-o.giveUp:
			}
		}
		b.cfg.OnLost(l.Context(), acc)
		rctx, cancel := context.WithTimeout(context.Background(), b.m.cfg.TTL)
		rerr := l.Release(rctx)
		cancel()
		b.mu.Lock()
		delete(b.owned, acc)
		if err != nil {
			b.cooldown[acc] = time.Now().Add(5 * b.cfg.Interval)
		}
		b.mu.Unlock()
		switch {
		case errors.Is(rerr, ErrLost):
			b.m.log.Warn("account lost", "account", acc, "node", b.m.cfg.Owner, "reason", rerr)
		case rerr != nil:
			b.m.log.Warn("account given back; its lease will expire", "account", acc, "err", rerr)
		default:
			b.m.log.Info("account given back", "account", acc, "node", b.m.cfg.Owner)
		}
		b.poke()
	}()
}

func (b *Balancer) giveBackLocked(acc string, o *ownership) {
	if o.leaving {
		return
	}
	o.leaving = true
	close(o.giveUp)
}

// shutdown leaves the node set first, so peers grow their share and take
// the accounts as they are released, then gives every account back.
func (b *Balancer) shutdown(node *Lease) {
	if node != nil {
		ctx, cancel := context.WithTimeout(context.Background(), b.m.cfg.TTL)
		if err := node.Release(ctx); err != nil {
			b.m.log.Warn("leave the engine nodes", "err", fmt.Errorf("node %s: %w", b.m.cfg.Owner, err))
		}
		cancel()
	}
	b.mu.Lock()
	for acc, o := range b.owned {
		b.giveBackLocked(acc, o)
	}
	b.mu.Unlock()
	b.wg.Wait()
}
