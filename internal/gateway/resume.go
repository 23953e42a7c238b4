package gateway

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/ccevents/ccevents/internal/binding"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/protocol"
)

// A subscribe with since resumes: the gateway replays, in stream order, the
// stored events after each new binding's cursor up to a head, while live
// events after the head are held (connAccount.beginCatchUp) and follow.
// The head is the last event the gateway has fanned out: everything after
// it reaches the new bindings live, so no stream request is needed to find
// it. A resume runs in three steps over one resumption: plan (what each
// binding has and where the replay ends), open (the history reader, and
// the cursors history no longer reaches), then answer and run (the
// replay). At most ReplayConcurrency resumes read history at once, each
// holding a replayTurn.

// resumption is one subscribe with since, from its plan to the end of its
// replay. The caller holds a turn, and the new bindings are the last of
// ca.subs.
type resumption struct {
	c    *conn
	ca   *connAccount
	turn *replayTurn

	// first is where the new bindings begin in ca.subs.
	first int
	// head is where the replay ends.
	head uint64
	// after[i] is the last event ca.subs[i] has: the replay sends it only
	// later ones. Bindings active before have everything up to the
	// high-water mark (later ones are held); new ones without since, or
	// whose cursor cannot be honoured, start live at head.
	after []uint64
	// from is where reading history starts: the lowest after of a binding
	// that is replayed; head when none is.
	from uint64
	// history reads (from, head]; nil when nothing is replayed.
	history *bus.Reader
	// recovered is false once a cursor cannot be honoured; why says why,
	// for the first one.
	recovered bool
	why       string
}

// resume answers a subscribe with since that added adds to ca, d0 being
// the account's high-water mark when its live events began to be held,
// and replays history. It reports whether the client was answered and its
// replay ran to the end.
func (c *conn) resume(ca *connAccount, adds []newBinding, d0 uint64, id protocol.RequestID, data protocol.SubscriptionData, turn *replayTurn) bool {
	r := &resumption{c: c, ca: ca, turn: turn, recovered: true}
	if err := r.plan(adds, d0); err != nil {
		r.fail("read stream bounds", err)
		return false
	}
	if err := r.open(); err != nil {
		if !c.out.closing() {
			r.fail("open history", err)
		}
		return false
	}
	r.answer(id, data)
	if r.from >= r.head {
		return true
	}
	if err := r.run(); err != nil {
		if !c.out.closing() {
			r.fail(fmt.Sprintf("replay (%d, %d]", r.from, r.head), err)
		}
		return false
	}
	return true
}

// plan sets where the replay ends and what each binding has. A cursor
// ahead of the head is one this node has not seen yet (another gateway
// handed it out): only then is the stream itself asked where it ends.
func (r *resumption) plan(adds []newBinding, d0 uint64) error {
	s := r.c.srv
	r.head = s.live.head.Load()
	if slices.ContainsFunc(adds, func(a newBinding) bool {
		return a.since != nil && a.since.Sequence > r.head && (a.since.Epoch == "" || a.since.Epoch == s.epoch)
	}) {
		ctx, cancel := context.WithTimeout(r.c.ctx, s.cfg.WriteTimeout)
		bounds, err := s.src.Bounds(ctx)
		cancel()
		if err != nil {
			return err
		}
		r.head = max(r.head, bounds.Last)
	}
	r.after = make([]uint64, len(r.ca.subs))
	for i := range r.after {
		r.after[i] = d0
	}
	r.first = len(r.ca.subs) - len(adds)
	r.from = r.head
	for i, a := range adds {
		at := r.first + i
		r.after[at] = r.head
		cur := a.since
		switch {
		case cur == nil:
		case cur.Epoch != "" && cur.Epoch != s.epoch:
			r.refuse(fmt.Sprintf("epoch %s is not this history's (%s): it was reset; re-sync from a snapshot", quoteShort(cur.Epoch), s.epoch))
		case cur.Sequence > r.head:
			r.refuse(fmt.Sprintf("sequence %d is beyond the end of history (%d); re-sync from a snapshot", cur.Sequence, r.head))
		case cur.Sequence < d0:
			r.refuse(fmt.Sprintf("this connection already received events of account %s up to sequence %d and cannot go back to %d; resume all bindings of an account in one subscribe", r.ca.account, d0, cur.Sequence))
		default:
			r.after[at] = cur.Sequence
			r.from = min(r.from, cur.Sequence)
		}
	}
	return nil
}

// refuse notes a cursor that cannot be honoured.
func (r *resumption) refuse(why string) {
	r.recovered = false
	if r.why == "" {
		r.why = why
	}
}

// replayOpenTimeout bounds how long a resume waits for a loaded stream to
// open its history before it asks its client to come back.
const replayOpenTimeout = 30 * time.Second

// open positions a history reader on the events the new bindings need,
// through one filter covering them; the bus retries while the stream is
// slow to answer (a restart that brings thousands of clients back at
// once). Cursors history no longer reaches start live, as refused ones do.
func (r *resumption) open() error {
	if r.from >= r.head {
		return nil
	}
	var replayed []binding.Binding
	for i, sb := range r.ca.subs[r.first:] {
		if r.after[r.first+i] < r.head {
			replayed = append(replayed, sb.key.b)
		}
	}
	ctx, cancel := context.WithTimeout(r.c.ctx, replayOpenTimeout)
	defer cancel()
	h, err := r.c.srv.src.OpenReplay(ctx, binding.FilterCovering(r.ca.account, replayed), r.from, r.head)
	if err != nil {
		return err
	}
	r.history = h
	if h.Complete() {
		return nil
	}
	r.from = r.head
	for i := r.first; i < len(r.ca.subs); i++ {
		if r.after[i] >= r.head {
			continue
		}
		if r.after[i]+1 < h.Start() {
			r.refuse(fmt.Sprintf("history no longer reaches back to sequence %d (the oldest stored is %d); re-sync from a snapshot", r.after[i]+1, h.Start()))
			r.after[i] = r.head
			continue
		}
		r.from = min(r.from, r.after[i])
	}
	return nil
}

// answer replies to the subscribe: whether every cursor was honoured, and
// up to where the replay goes.
func (r *resumption) answer(id protocol.RequestID, data protocol.SubscriptionData) {
	outcome := replayRecovered
	if !r.recovered {
		outcome = replayPartial
	}
	r.c.srv.m.replays.WithLabelValues(outcome).Inc()
	data.Recovered, data.ReplayUntil, data.Message = &r.recovered, &r.head, r.why
	r.c.replySubscription(id, data)
}

// run queues the events history reads for the connection's bindings, each
// under the first-subscribed binding that matches it and only if that
// binding does not have it (after). It reads one batch at a time, no
// larger than the room left in the connection's queue, so waiting for a
// client to read holds no events and no turn.
func (r *resumption) run() error {
	c, ca, s := r.c, r.ca, r.c.srv
	n := 0
	defer func() { s.m.eventsOut.Add(float64(n)) }()
	for {
		// Waiting for a client to read is no reason to hold a turn:
		// clients that do not read must not keep the others from their
		// history.
		room, roomBytes, err := c.out.waitRoom(c.ctx, r.turn.give)
		if err != nil {
			return err
		}
		if !r.turn.take() {
			return errClosing
		}
		done, err := r.history.Next(c.ctx, min(room, bus.DefaultReadBatch), min(roomBytes, bus.DefaultReadBytes), func(m bus.Message) error {
			var pick *sub
			for i, sb := range ca.subs {
				if r.after[i] < m.Sequence && sb.key.b.Matches(m.Subject) {
					pick = sb
					break
				}
			}
			if pick == nil {
				return nil
			}
			d, ok := newDelivery(m)
			if !ok {
				s.m.error(errBadEvent)
				s.m.dropped.WithLabelValues(dropBadEvent).Inc()
				return nil
			}
			frame := encodeEventFrame(pick.key, s.epochJSON, &d)
			ca.mu.Lock()
			n += ca.flushHeldLocked(m.Sequence)
			if m.Sequence > ca.delivered {
				ca.delivered = m.Sequence
				if c.enqueue(frame) {
					n++
				}
			}
			ca.mu.Unlock()
			return nil
		})
		if err != nil || done {
			return err
		}
	}
}

// fail closes a connection whose resume could not read history. The
// history is still there, so it is not answered "recovered: false": the
// client reconnects and resumes with the same since.
func (r *resumption) fail(doing string, err error) {
	s := r.c.srv
	s.m.error(protocol.ErrInternal)
	s.m.replays.WithLabelValues(replayFailed).Inc()
	s.log.Error("resume failed: "+doing, "account", r.ca.account, "err", err)
	r.c.closeWith(protocol.CloseInternalError, protocol.ReasonHistoryFailed, false)
}

// refuseReplayWait answers a subscribe with since that found no turn to
// read history within ReplayWait, and lets go of the account if the
// connection has no binding left there.
func (c *conn) refuseReplayWait(ca *connAccount, id protocol.RequestID, errs []string) {
	s := c.srv
	s.m.error(protocol.ErrLimit)
	s.m.refuse(refuseReplayWait)
	s.log.Info("resume refused: no turn to read history came free in time", "account", ca.account,
		"wait", s.cfg.ReplayWait, "concurrency", s.cfg.ReplayConcurrency)
	if len(ca.subs) == 0 {
		c.subscribed.accounts = slices.DeleteFunc(c.subscribed.accounts, func(x *connAccount) bool { return x == ca })
		c.dropAccount(ca)
		c.rescheduleTokens()
	}
	msg := fmt.Sprintf("the gateway is reading history for many resuming clients and no turn came free within %s (limit %d at once); nothing was subscribed: send this subscribe again, with the same since, in a second",
		s.cfg.ReplayWait, s.cfg.ReplayConcurrency)
	c.replySubscription(id, protocol.SubscriptionData{Errors: append(errs, msg), RetryAfter: 1})
}

// replayTurn is one resume's turn to read history: at most
// ReplayConcurrency are held at once.
type replayTurn struct {
	c    *conn
	held bool
}

// take waits for a turn, unless one is held already, and reports false if
// the connection closes first.
func (t *replayTurn) take() bool { return t.takeWithin(0) }

// takeWithin is take that gives up after d (0: never) and then reports
// false too.
func (t *replayTurn) takeWithin(d time.Duration) bool {
	if t.held {
		return true
	}
	s := t.c.srv
	select {
	case s.replayTurns <- struct{}{}:
		t.held = true
		return true
	default:
	}
	var expired <-chan time.Time
	if d > 0 {
		timer := time.NewTimer(d)
		defer timer.Stop()
		expired = timer.C
	}
	s.m.replaysWaiting.Inc()
	defer s.m.replaysWaiting.Dec()
	select {
	case s.replayTurns <- struct{}{}:
		t.held = true
		return true
	case <-t.c.ctx.Done():
	case <-expired:
	}
	return false
}

// give hands the turn back, if held.
func (t *replayTurn) give() {
	if !t.held {
		return
	}
	t.held = false
	<-t.c.srv.replayTurns
}
