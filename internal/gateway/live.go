package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ccevents/ccevents/internal/binding"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/protocol"
)

// live follows the whole event stream for the gateway: one ordered
// consumer on every subject (bus.StreamSubjects), whatever the number of
// accounts followed, and fans each event out through one index holding
// every binding of every connection (the subject's account segment leads
// to the account's branch). An account costs the gateway its bindings'
// index entries and a count, never anything on the bus, so the stream's
// consumer limit is reached neither by many accounts nor by many gateways
// (docs/decisions.md, "Live events: one consumer per gateway").
//
// The consumer covers the whole stream, so consecutive events have
// consecutive stream sequences. A jump is a gap in live delivery: it is
// read back from history before the event after it is fanned out, and if
// history no longer holds it every connection is closed so its client
// resumes (and learns from recovered:false that events are gone). Nothing
// is skipped silently. A follower that stops delivering while the stream
// grows (its connection flapped and re-creating the consumer is stuck
// waiting for a lost reply) is caught up the same way by watch.
type live struct {
	srv *Server

	// startMu serializes starting and stopping the follower. follower is
	// nil while no account is followed, and stays nil once stopped is set
	// (shutdown); stopWatch ends the follower's watch and waits for it.
	startMu   sync.Mutex
	follower  *bus.Follower
	stopWatch func()
	stopped   bool

	// head is the sequence of the event being (or last) fanned out. It is
	// stored before the event is matched, so once a subscriber is in the
	// index every event after the value read reaches it.
	head atomic.Uint64
	// dispatchMu lets one goroutine at a time fan events out: the
	// follower's callback, or watch catching up on a stalled follower.
	dispatchMu sync.Mutex
	// next is the sequence expected next; guarded by dispatchMu.
	next uint64

	// index holds every binding of every connection.
	index *binding.Index[*sub]
	// keysMu guards keys: the bindings subscribed, each shared by the
	// connections that subscribed it.
	keysMu sync.Mutex
	keys   map[keyID]*bindingKey

	// Owned by the fan-out, reused for every event.
	matches []*sub
	picked  []*connAccount
}

func newLive(s *Server) *live {
	return &live{srv: s, index: binding.NewIndex[*sub](), keys: make(map[keyID]*bindingKey)}
}

// keyID tells binding keys apart: the binding as written (a short one
// reads the same for every account) and what it means.
type keyID struct{ text, full string }

// start follows the stream from its current end unless it is followed
// already; a failed start is tried again by the next subscriber. The
// follower runs until no account is followed (stopIfIdle).
func (l *live) start(ctx context.Context) error {
	l.startMu.Lock()
	defer l.startMu.Unlock()
	if l.follower != nil {
		return nil
	}
	if l.stopped {
		return errors.New("the gateway is shutting down")
	}
	s := l.srv
	ctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
	defer cancel()
	bounds, err := s.src.Bounds(ctx)
	if err != nil {
		return fmt.Errorf("follow the event stream: %w", err)
	}
	// Set before the first event can arrive.
	l.dispatchMu.Lock()
	l.next = bounds.Last + 1
	l.head.Store(bounds.Last)
	l.dispatchMu.Unlock()
	fl, err := s.src.Follow(ctx, []string{bus.StreamSubjects}, bounds.Last, l.onMessage)
	if err != nil {
		return fmt.Errorf("follow the event stream: %w", err)
	}
	l.follower = fl
	wctx, cancel := context.WithCancel(s.ctx)
	done := make(chan struct{})
	go func() { defer close(done); l.watch(wctx) }()
	l.stopWatch = func() { cancel(); <-done }
	s.log.Info("following the event stream", "after", bounds.Last)
	return nil
}

// stopLocked ends the follower and its watch; no event is fanned out after
// it returns. The caller holds startMu.
func (l *live) stopLocked() {
	if l.follower != nil {
		l.stopWatch()
		l.follower.Stop()
		l.follower, l.stopWatch = nil, nil
		l.srv.log.Info("stopped following the event stream: no account is followed")
	}
}

// stopIfIdle stops following the stream when no connection subscribes to
// any account any more, so an idle gateway holds nothing on the bus; the
// next subscribe starts again from the end of the stream.
func (l *live) stopIfIdle() {
	l.startMu.Lock()
	defer l.startMu.Unlock()
	if l.srv.perAccount.Keys() == 0 {
		l.stopLocked()
	}
}

// stop ends the follower for good (shutdown).
func (l *live) stop() {
	l.startMu.Lock()
	defer l.startMu.Unlock()
	l.stopped = true
	l.stopLocked()
}

// onMessage is the follower's callback, called one event at a time in
// stream order. It never blocks on a connection; only a gap makes it wait
// for history.
func (l *live) onMessage(m bus.Message) {
	l.dispatchMu.Lock()
	defer l.dispatchMu.Unlock()
	switch {
	case m.Sequence < l.next:
		return // fanned out already, read from history by a repair
	case m.Sequence > l.next && !l.repair(l.srv.ctx, m.Sequence-1):
		return // the gap and this event are read again with the next one
	}
	l.dispatch(m)
}

// stallCheck is how often watch looks for a follower that has stopped
// while the stream grew.
const stallCheck = time.Second

// watch catches up from history when the follower has delivered nothing
// for a whole stallCheck although the stream already held newer events at
// its start: an event just stored is the follower's to deliver, not a
// stall. It asks the stream only while the follower is quiet.
func (l *live) watch(ctx context.Context) {
	s := l.srv
	t := time.NewTicker(stallCheck)
	defer t.Stop()
	seen := l.head.Load()
	var stored uint64 // the stream's last sequence at the previous check
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if h := l.head.Load(); h != seen {
			seen, stored = h, 0
			continue
		}
		if stored > seen {
			l.dispatchMu.Lock()
			if l.head.Load() == seen {
				s.log.Warn("the event stream follower is stalled; catching up from history", "after", seen, "stored", stored)
				_ = l.repair(ctx, stored) // what it could not read, the next check reads
			}
			seen, stored = l.head.Load(), 0
			l.dispatchMu.Unlock()
			continue
		}
		bctx, cancel := context.WithTimeout(ctx, s.cfg.WriteTimeout)
		bounds, err := s.src.Bounds(bctx)
		cancel()
		if err == nil {
			stored = bounds.Last
		}
	}
}

// dispatch fans one event out; the caller holds dispatchMu.
func (l *live) dispatch(m bus.Message) {
	l.next = m.Sequence + 1
	l.head.Store(m.Sequence)
	l.fanOut(m)
}

// repairTimeout bounds reading a gap back from history.
const repairTimeout = 30 * time.Second

// repair fans out, in order, the stored events after the last one fanned
// out up to until, which the follower skipped (or has not delivered). It
// reports false when history could not be read now: nothing after the
// events it did fan out is, so the next event (or watch) reads them again.
// Events history no longer holds (the gateway was cut off from the bus
// longer than history lasts) cannot be delivered: every connection is
// closed so its client resumes with since, and is told there what is lost.
// The caller holds dispatchMu.
func (l *live) repair(ctx context.Context, until uint64) bool {
	s := l.srv
	after := l.next - 1
	ctx, cancel := context.WithTimeout(ctx, repairTimeout)
	defer cancel()
	n := 0
	r, err := s.src.OpenReplay(ctx, bus.StreamSubjects, after, until)
	if err == nil {
		err = r.Run(ctx, func(m bus.Message) error {
			n++
			l.dispatch(m)
			return nil
		})
	}
	switch {
	case err != nil:
		s.log.Warn("cannot read a gap in live events back from history yet; trying again with the next event",
			"after", l.next-1, "until", until, "err", err)
		return false
	case !r.Complete():
		s.m.liveGaps.WithLabelValues(gapLost).Inc()
		s.log.Error("events are gone from history before this gateway could deliver them; closing every connection so clients resume",
			"after", after, "oldest_stored", r.Start(), "until", until)
		// The gateway is past them now: a client resuming from before
		// them is told they are gone, not given the next event as if it
		// followed on.
		if l.next <= until {
			l.next = until + 1
			l.head.Store(until)
		}
		l.closeAll(protocol.ReasonEventsLost)
	default:
		s.m.liveGaps.WithLabelValues(gapRepaired).Inc()
		s.log.Warn("gap in live events repaired from history", "after", after, "until", until, "read", n)
	}
	return true
}

// closeAll closes every connection of the gateway with 1011 and reason;
// their clients reconnect and resume with since.
func (l *live) closeAll(reason string) {
	for _, c := range l.srv.connections() {
		c.closeWith(protocol.CloseInternalError, reason, false)
	}
}

// bind enters a binding of ca, written as text and meaning b, into the
// index; order is its subscribe order on the connection.
func (l *live) bind(ca *connAccount, text string, b binding.Binding, order uint64) *sub {
	sb := &sub{ca: ca, key: l.acquireKey(text, b), order: order}
	l.index.Add(b, sb)
	return sb
}

// unbind takes a binding out of the index: the fan-out no longer finds it
// once it returns.
func (l *live) unbind(sb *sub) {
	l.index.Remove(sb.key.b, sb)
	l.releaseKey(sb.key)
}

// acquireKey returns the shared key of a binding written as text, which
// means b.
func (l *live) acquireKey(text string, b binding.Binding) *bindingKey {
	id := keyID{text, b.String()}
	l.keysMu.Lock()
	defer l.keysMu.Unlock()
	k := l.keys[id]
	if k == nil {
		k = &bindingKey{text: text, b: b}
		l.keys[id] = k
	}
	k.refs++
	return k
}

func (l *live) releaseKey(k *bindingKey) {
	l.keysMu.Lock()
	defer l.keysMu.Unlock()
	if k.refs--; k.refs == 0 {
		delete(l.keys, keyID{k.text, k.b.String()})
	}
}
