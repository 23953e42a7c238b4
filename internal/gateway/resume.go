package gateway

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/ccevents/ccevents/internal/binding"
	"github.com/ccevents/ccevents/internal/bus"
)

// addBindings puts new bindings live and answers the request. The reply is
// queued before any event of the new bindings: live events of the account
// are held from before the bindings enter the index until the reply (and,
// with since, the replay) is queued. A subscribe with since first waits
// for a turn to read history; one that gets none within ReplayWait is
// answered with an error and adds nothing.
func (c *conn) addBindings(ca *connAccount, adds []newBinding, id json.RawMessage, errs []string, snapshot json.RawMessage) {
	s := c.srv
	resume := slices.ContainsFunc(adds, func(a newBinding) bool { return a.since != nil })
	turn := replayTurn{c: c}
	began := time.Now()
	if resume {
		if !turn.takeWithin(s.cfg.ReplayWait) {
			if !c.out.closing() {
				c.refuseReplayWait(ca, id, errs)
			}
			return
		}
		defer turn.give()
	}
	l := s.live
	d0 := ca.beginCatchUp()
	for _, a := range adds {
		sb := &sub{ca: ca, key: l.acquireKey(a.text, a.b), order: c.nextOrder}
		c.nextOrder++
		l.index.Add(a.b, sb)
		ca.subs = append(ca.subs, sb)
	}
	c.nbindings += len(adds)
	s.m.subs.Add(float64(len(adds)))
	data := subscriptionData{Epoch: s.epoch, Errors: errs, Snapshot: snapshot}
	if !resume {
		// Read after the bindings are in the index: every event after it
		// reaches them.
		last := l.head.Load()
		data.Sequence = &last
		c.replySubscription(id, data)
		ca.endCatchUp()
		return
	}
	if c.resume(ca, adds, d0, id, data, &turn) {
		s.m.replayDuration.Observe(time.Since(began).Seconds())
	}
	ca.endCatchUp()
}

// refuseReplayWait answers a subscribe with since that found no turn to
// read history within ReplayWait, and lets go of the account if the
// connection has no binding left there.
func (c *conn) refuseReplayWait(ca *connAccount, id json.RawMessage, errs []string) {
	s := c.srv
	s.m.error(errLimit)
	s.m.refuse(refuseReplayWait)
	s.log.Info("resume refused: no turn to read history came free in time", "account", ca.account,
		"wait", s.cfg.ReplayWait, "concurrency", s.cfg.ReplayConcurrency)
	if len(ca.subs) == 0 {
		c.accounts = slices.DeleteFunc(c.accounts, func(x *connAccount) bool { return x == ca })
		c.dropAccount(ca)
		c.rescheduleTokens()
	}
	msg := fmt.Sprintf("the gateway is reading history for many resuming clients and no turn came free within %s (limit %d at once); nothing was subscribed: send this subscribe again, with the same since, in a second",
		s.cfg.ReplayWait, s.cfg.ReplayConcurrency)
	c.replySubscription(id, subscriptionData{Errors: append(errs, msg), RetryAfter: 1})
}

// resume answers a subscribe with since and replays, in stream order, the
// stored events after each binding's cursor up to a head H; live events
// after H were held meanwhile and follow. H is the last event the gateway
// has fanned out: everything after it reaches the new bindings live, so no
// stream request is needed to find it. The new bindings, one per add, are
// the last of ca.subs. The caller holds a turn. It reports whether the
// client was answered and its replay ran to the end.
func (c *conn) resume(ca *connAccount, adds []newBinding, d0 uint64, id json.RawMessage, data subscriptionData, turn *replayTurn) bool {
	s := c.srv
	head := s.live.head.Load()
	// A cursor ahead of the head is one this node has not seen yet (another
	// gateway handed it out): only then is the stream itself asked.
	for _, a := range adds {
		if a.since != nil && a.since.Sequence > head && (a.since.Epoch == "" || a.since.Epoch == s.epoch) {
			bounds, err := c.streamBounds()
			if err != nil {
				c.failResume(ca, "read stream bounds", err)
				return false
			}
			head = max(head, bounds.Last)
			break
		}
	}
	// start[i] is what ca.subs[i] already has: the replay sends it only
	// events after that. Bindings active before have everything up to the
	// high-water mark (later ones are held); new ones without since, or
	// whose cursor cannot be honoured, start live at the head.
	start := make([]uint64, len(ca.subs))
	for i := range start {
		start[i] = d0
	}
	recovered := true
	var why string
	refuse := func(reason string) {
		recovered = false
		if why == "" {
			why = reason
		}
	}
	first := len(ca.subs) - len(adds) // ca.subs[first:] are the new bindings
	from := head
	for i := range adds {
		at := first + i
		start[at] = head
		cur := adds[i].since
		switch {
		case cur == nil:
		case cur.Epoch != "" && cur.Epoch != s.epoch:
			refuse(fmt.Sprintf("epoch %s is not this history's (%s): it was reset; re-sync from a snapshot", quoteShort(cur.Epoch), s.epoch))
		case cur.Sequence > head:
			refuse(fmt.Sprintf("sequence %d is beyond the end of history (%d); re-sync from a snapshot", cur.Sequence, head))
		case cur.Sequence < d0:
			refuse(fmt.Sprintf("this connection already received events of account %s up to sequence %d and cannot go back to %d; resume all bindings of an account in one subscribe", ca.account, d0, cur.Sequence))
		default:
			start[at] = cur.Sequence
			from = min(from, cur.Sequence)
		}
	}

	var r *bus.Reader
	if from < head {
		var replayed []binding.Binding
		for i, sb := range ca.subs[first:] {
			if start[first+i] < head {
				replayed = append(replayed, sb.key.b)
			}
		}
		var err error
		if r, err = c.openReplay(binding.FilterCovering(ca.account, replayed), from, head); err != nil {
			if !c.out.closing() {
				c.failResume(ca, "open history", err)
			}
			return false
		}
		// Cursors history no longer reaches start live, like those above.
		if !r.Complete() {
			from = head
			for i := first; i < len(ca.subs); i++ {
				if start[i] >= head {
					continue
				}
				if start[i]+1 < r.Start() {
					refuse(fmt.Sprintf("history no longer reaches back to sequence %d (the oldest stored is %d); re-sync from a snapshot", start[i]+1, r.Start()))
					start[i] = head
					continue
				}
				from = min(from, start[i])
			}
		}
	}
	outcome := replayRecovered
	if !recovered {
		outcome = replayPartial
	}
	s.m.replays.WithLabelValues(outcome).Inc()
	data.Recovered, data.ReplayUntil, data.Message = &recovered, &head, why
	c.replySubscription(id, data)
	if from >= head {
		return true
	}
	n, err := c.replay(ca, r, start, turn)
	s.m.eventsOut.Add(float64(n))
	if err != nil {
		if !c.out.closing() {
			c.failResume(ca, fmt.Sprintf("replay (%d, %d]", from, head), err)
		}
		return false
	}
	return true
}

// replay queues the events r reads for the connection's bindings, each
// under the first-subscribed binding that matches it and only if that
// binding does not have it (start). It reads one batch at a time, no larger
// than the room left in the connection's queue, so waiting for a client to
// read holds no events and no turn. It returns how many events it queued.
func (c *conn) replay(ca *connAccount, r *bus.Reader, start []uint64, turn *replayTurn) (int, error) {
	s := c.srv
	n := 0
	for {
		// Waiting for a client to read is no reason to hold a turn:
		// clients that do not read must not keep the others from their
		// history.
		room, roomBytes, err := c.out.waitRoom(c.ctx, turn.give)
		if err != nil {
			return n, err
		}
		if !turn.take() {
			return n, errClosing
		}
		done, err := r.Next(c.ctx, min(room, bus.DefaultReadBatch), min(roomBytes, bus.DefaultReadBytes), func(m bus.Message) error {
			var pick *sub
			for i, sb := range ca.subs {
				if start[i] < m.Sequence && sb.key.b.Matches(m.Subject) {
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
			return n, err
		}
	}
}

// failResume closes a connection whose resume could not read history. The
// history is still there, so it is not answered "recovered: false": the
// client reconnects and resumes with the same since.
func (c *conn) failResume(ca *connAccount, doing string, err error) {
	s := c.srv
	s.m.error(errInternal)
	s.m.replays.WithLabelValues(replayFailed).Inc()
	s.log.Error("resume failed: "+doing, "account", ca.account, "err", err)
	c.closeWith(1011, "reading history failed; reconnect and resume with since", false)
}

// replayOpenTimeout bounds how long a resume waits for a loaded stream to
// open its history before it asks its client to come back.
const replayOpenTimeout = 30 * time.Second

// openReplay opens a history reader; the bus retries while the stream is
// slow to answer (a restart that brings thousands of clients back at once).
func (c *conn) openReplay(filter string, from, head uint64) (*bus.Reader, error) {
	ctx, cancel := context.WithTimeout(c.ctx, replayOpenTimeout)
	defer cancel()
	return c.srv.src.OpenReplay(ctx, filter, from, head)
}

// streamBounds reads the stream's bounds within a write timeout.
func (c *conn) streamBounds() (bus.Bounds, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.srv.cfg.WriteTimeout)
	defer cancel()
	return c.srv.src.Bounds(ctx)
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
