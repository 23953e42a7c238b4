package gateway

import (
	"cmp"
	"math"
	"slices"
	"sync"
	"time"

	"github.com/ccevents/ccevents/internal/binding"
	"github.com/ccevents/ccevents/protocol"
)

// What a connection subscribed, kept by its reader goroutine: a
// connAccount per account, holding that account's bindings (subs, each
// also in the server's index) in subscribe order. The fan-out reaches a
// connAccount through the index (connAccount.deliver, fanout.go) and a
// resume holds its live events back while it replays (beginCatchUp).

// subscriptions is what one connection subscribed. Owned by the
// connection's reader goroutine.
type subscriptions struct {
	accounts  []*connAccount
	n         int    // bindings over every account
	nextOrder uint64 // the subscribe order of the next binding
}

// account returns the subscription to acc, or nil.
func (ss *subscriptions) account(acc string) *connAccount {
	for _, ca := range ss.accounts {
		if ca.account == acc {
			return ca
		}
	}
	return nil
}

// find returns the binding written as text on account acc, or nil.
func (ss *subscriptions) find(acc, text string) *sub {
	if ca := ss.account(acc); ca != nil {
		for _, sb := range ca.subs {
			if sb.key.text == text {
				return sb
			}
		}
	}
	return nil
}

// named returns the bindings written as text: on account acc, or on any
// account when acc is empty or text is a full binding (which names its
// account itself).
func (ss *subscriptions) named(acc, text string) []*sub {
	var out []*sub
	for _, ca := range ss.accounts {
		if acc != "" && ca.account != acc && binding.IsShort(text) {
			continue
		}
		for _, sb := range ca.subs {
			if sb.key.text == text {
				out = append(out, sb)
			}
		}
	}
	return out
}

// inOrder returns the bindings in subscribe order.
func (ss *subscriptions) inOrder() []*sub {
	subs := make([]*sub, 0, ss.n)
	for _, ca := range ss.accounts {
		subs = append(subs, ca.subs...)
	}
	slices.SortFunc(subs, func(a, b *sub) int { return cmp.Compare(a.order, b.order) })
	return subs
}

// texts lists the bindings as the client wrote them, in subscribe order.
func (ss *subscriptions) texts() []string {
	subs := ss.inOrder()
	out := make([]string, len(subs))
	for i, sb := range subs {
		out[i] = sb.key.text
	}
	return out
}

// connAccount is one connection's subscription to one account: its
// bindings there, and the high-water mark that keeps the account's events
// in stream order and each one delivered once, live or replayed.
type connAccount struct {
	conn    *conn
	account string
	subs    []*sub // in subscribe order; owned by the connection's reader

	// The token with the latest expiry that subscribed here or refreshed
	// it; owned by the connection's reader.
	tokenAccount string
	expires      time.Time
	lifetime     time.Duration

	mu sync.Mutex
	// delivered is the highest sequence queued for this account; nothing at
	// or below it is queued again.
	delivered uint64
	// catchUp is set while a subscribe joins history and live events: the
	// fan-out then holds this connection's live events in held.
	catchUp   bool
	held      []heldFrame
	heldBytes int

	// Owned by the fan-out: the pick for the event being fanned out.
	seen uint64
	pick *sub
}

type heldFrame struct {
	seq   uint64
	frame []byte
}

// hold keeps a live event back until the catch-up ends. Held events count
// against the outbound limits like queued ones.
func (ca *connAccount) hold(seq uint64, frame []byte) {
	if !ca.conn.out.limits.allow(len(ca.held)+1, ca.heldBytes+len(frame)) {
		ca.conn.overflow()
		return
	}
	ca.held = append(ca.held, heldFrame{seq: seq, frame: frame})
	ca.heldBytes += len(frame)
}

// flushHeldLocked queues the held events before seq that the connection
// does not have yet, and returns how many it queued.
func (ca *connAccount) flushHeldLocked(seq uint64) int {
	n, i := 0, 0
	for ; i < len(ca.held) && ca.held[i].seq < seq; i++ {
		h := ca.held[i]
		ca.heldBytes -= len(h.frame)
		if h.seq > ca.delivered {
			ca.delivered = h.seq
			if ca.conn.enqueue(h.frame) {
				n++
			}
		}
	}
	clear(ca.held[:i])
	ca.held = ca.held[i:]
	return n
}

// beginCatchUp holds live events from now on and returns the high-water
// mark at that moment.
func (ca *connAccount) beginCatchUp() uint64 {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ca.catchUp = true
	return ca.delivered
}

// endCatchUp queues what was held and lets live events through again.
func (ca *connAccount) endCatchUp() {
	ca.mu.Lock()
	n := ca.flushHeldLocked(math.MaxUint64)
	ca.held, ca.heldBytes, ca.catchUp = nil, 0, false
	ca.mu.Unlock()
	ca.conn.srv.m.eventsOut.Add(float64(n))
}

// joinAccount returns the connection's subscription to acc, creating it
// (counted against the account's connection limit) on first use.
func (c *conn) joinAccount(acc string) (*connAccount, *protocol.Error) {
	if ca := c.subscribed.account(acc); ca != nil {
		return ca, nil
	}
	s := c.srv
	if !s.reserveAccount(acc) {
		s.m.refuse(refuseConnsPerAccount)
		s.log.Info("subscribe refused: account connection limit", "account", acc, "limit", s.cfg.MaxConnsPerAccount)
		return nil, protocol.Errorf(protocol.ErrLimit, "too many connections subscribed to account %s (limit %d)", acc, s.cfg.MaxConnsPerAccount)
	}
	// The stream is followed from the first subscribe on.
	if err := s.live.start(c.ctx); err != nil {
		s.releaseAccount(acc)
		s.log.Error("cannot follow account events", "account", acc, "err", err)
		return nil, protocol.Errorf(protocol.ErrInternal, "events of account %s are unavailable right now; try again shortly", acc)
	}
	ca := &connAccount{conn: c, account: acc}
	c.subscribed.accounts = append(c.subscribed.accounts, ca)
	return ca, nil
}

// removeSub takes one binding off the connection. Once it returns, no
// event is queued under that binding any more.
func (c *conn) removeSub(sb *sub) {
	ca := sb.ca
	ca.mu.Lock()
	sb.removed = true
	ca.mu.Unlock()
	c.srv.live.unbind(sb)
	ca.subs = slices.DeleteFunc(ca.subs, func(x *sub) bool { return x == sb })
	c.subscribed.n--
	c.srv.m.subs.Dec()
}

// dropAccount releases the connection's subscription to one account; the
// caller removes it from c.subscribed.accounts.
func (c *conn) dropAccount(ca *connAccount) {
	for len(ca.subs) > 0 {
		c.removeSub(ca.subs[len(ca.subs)-1])
	}
	c.srv.releaseAccount(ca.account)
	c.srv.live.stopIfIdle()
}
