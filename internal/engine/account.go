package engine

import (
	"context"
	"errors"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/ccevents/ccevents/internal/backoff"
	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/stats"
)

// account is one account's contact center. Everything below mu is guarded
// by it; the publisher goroutine (run) is the only one doing I/O.
type account struct {
	e   *Engine
	id  string
	log *slog.Logger

	mu         sync.Mutex
	now        time.Time // time of the change in progress; never goes back
	closed     bool
	lost       bool // stopped without publishing (ownership ended, or fenced out)
	queues     map[string]*queue
	recipients map[string]*recipient
	sessions   map[string]*session
	joins      uint64 // join counter: orders waiting callers across queues
	readyCount int    // recipients in state ready
	syncTimer  Timer
	// stats folds every event the account publishes into its statistics;
	// statsOut is when they were last published (stats.go).
	stats    *stats.Model
	statsOut statsOut
	// Call slots in the bucket: freeSlots to reuse (lowest last), then
	// nextSlot onwards.
	freeSlots []int
	nextSlot  int

	// The ordered pipeline from state changes to the bus and the bucket.
	outbox   []item
	spare    []item
	produced uint64 // items ever pushed
	flushed  uint64 // items done (published, written, or dropped)
	// firstLost is the 1-based index of the first item dropped unpublished,
	// 0 while none was.
	firstLost uint64
	flushCh   chan struct{} // closed and replaced whenever flushed grows
	wake      chan struct{}
	cancel    context.CancelFunc // stops the publisher, dropping what is left
	ctx       context.Context
	stopped   chan struct{}

	// lastSeq is the stream sequence of the last event the publisher
	// stored; only the publisher goroutine touches it.
	lastSeq uint64
	// kvLast is the bucket revision of this owner's last write to the
	// account, which every write expects to still be the account's last
	// (the fence); set before the publisher starts, then its alone.
	kvLast uint64
	// writer and writes make each write's message id, so a retried write
	// is stored once.
	writer string
	writes uint64
}

// item is one step of the pipeline: an event to publish, a key to write or
// delete, or a mark that reports the sequence reached so far.
type item struct {
	subject string
	data    []byte
	msgID   string

	key   string
	value []byte
	del   bool

	mark chan<- uint64
}

// newAccount builds an account whose publisher stops when owned ends.
func newAccount(e *Engine, id string, owned context.Context) *account {
	ctx, cancel := context.WithCancel(owned)
	return &account{
		e:          e,
		id:         id,
		log:        e.log.With("account", id),
		queues:     make(map[string]*queue),
		recipients: make(map[string]*recipient),
		sessions:   make(map[string]*session),
		stats:      stats.New(),
		statsOut:   statsOut{last: make(map[string]time.Time)},
		flushCh:    make(chan struct{}),
		wake:       make(chan struct{}, 1),
		ctx:        ctx,
		cancel:     cancel,
		stopped:    make(chan struct{}),
		writer:     event.NewEventID(),
	}
}

// begin starts a change: it fixes the time every event of the change
// carries. Called with mu held.
func (a *account) begin() {
	now := a.e.clock.Now()
	if now.After(a.now) {
		a.now = now
	}
}

// push appends to the pipeline. Called with mu held.
func (a *account) push(it item) {
	a.outbox = append(a.outbox, it)
	a.produced++
	select {
	case a.wake <- struct{}{}:
	default:
	}
}

// emit stamps, encodes and queues one event. The engine only builds valid
// events; one that fails validation is a bug, logged and dropped rather
// than sent. Called with mu held.
func (a *account) emit(p event.Payload) {
	p.Env().AccountID = a.id
	event.Stamp(p, a.now)
	subject, data, err := event.Marshal(p)
	if err != nil {
		a.log.Error("engine built an invalid event; dropped", "event", p.Env().Event, "err", err)
		return
	}
	a.stats.Observe(p)
	a.push(item{subject: subject, data: data, msgID: p.Env().EventID})
}

// after runs f under the account lock once d has passed, unless the
// account has closed by then, and publishes the statistics it changed.
// f must check that what it acts on is still current: a timer stopped too
// late still runs.
func (a *account) after(d time.Duration, f func()) Timer {
	return a.e.clock.AfterFunc(d, func() {
		a.mu.Lock()
		defer a.mu.Unlock()
		if a.closed {
			return
		}
		a.begin()
		f()
		a.publishStats()
	})
}

// run is the account's publisher: it takes what state changes produced, in
// order, and publishes or writes each before the next, so the stream holds
// an account's events in the order they happened.
func (a *account) run() {
	defer close(a.stopped)
	for {
		a.mu.Lock()
		batch := a.outbox
		if len(batch) > 0 {
			// Producers fill the other buffer while this one is published.
			a.outbox, a.spare = a.spare[:0], nil
		}
		a.mu.Unlock()
		if len(batch) == 0 {
			select {
			case <-a.wake:
				continue
			case <-a.ctx.Done():
				return
			}
		}
		dropped, first := 0, -1
		for i := range batch {
			if !a.process(&batch[i]) {
				dropped++
				if first < 0 {
					first = i
				}
			}
		}
		clear(batch)
		a.mu.Lock()
		if first >= 0 && a.firstLost == 0 {
			a.firstLost = a.flushed + uint64(first) + 1
		}
		lost := a.lost
		a.flushed += uint64(len(batch))
		close(a.flushCh)
		a.flushCh = make(chan struct{})
		a.spare = batch
		a.mu.Unlock()
		switch {
		case dropped > 0 && lost:
			// Another node may run the account now: what was not published
			// must not be.
			a.log.Warn("account moved to another engine node; events and writes it had not published were dropped", "count", dropped)
		case dropped > 0:
			a.log.Error("engine stopped before the bus took these events and writes; they are lost", "count", dropped)
		}
	}
}

// lostBefore reports whether any of the first n items was dropped.
func (a *account) lostBefore(n uint64) bool {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.firstLost != 0 && a.firstLost <= n
}

// process carries out one item, retrying the bus until it succeeds or the
// account is stopped. It reports whether the item was done.
func (a *account) process(it *item) bool {
	if it.mark != nil {
		it.mark <- a.lastSeq
		return true
	}
	// Checked before every attempt: once the account has stopped, not
	// even a publish already built may leave.
	if a.ctx.Err() != nil {
		return false
	}
	var writeID string
	if it.subject == "" {
		a.writes++
		writeID = a.writer + "-" + strconv.FormatUint(a.writes, 10)
	}
	retry := backoff.New(50*time.Millisecond, 5*time.Second, backoff.NoJitter)
	for attempt := 1; ; attempt++ {
		var err error
		if it.subject != "" {
			var seq uint64
			seq, err = a.e.cfg.Publisher.Publish(a.ctx, it.subject, it.data, it.msgID)
			if err == nil {
				a.lastSeq = seq
			}
		} else {
			err = a.write(it, writeID)
			if errors.Is(err, errFenced) {
				a.log.Error("another engine node has written this account since this node loaded it; this node stops running it", "key", it.key)
				a.e.stop(a, "it was fenced out")
				return false
			}
		}
		if err == nil {
			return true
		}
		if a.ctx.Err() != nil {
			return false
		}
		if attempt == 1 || attempt%20 == 0 {
			a.log.Warn("bus refused an event or write; retrying", "subject", it.subject, "key", it.key, "attempt", attempt, "err", err)
		}
		// Real time on purpose: this waits for the bus, not for the simulation.
		if retry.Wait(a.ctx) != nil {
			return false
		}
	}
}

// waitFlushed waits until the pipeline has done its first n items.
func (a *account) waitFlushed(ctx context.Context, n uint64) error {
	for {
		a.mu.Lock()
		done := a.flushed >= n
		ch := a.flushCh
		a.mu.Unlock()
		if done {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		case <-a.stopped:
			return errorf(KindUnavailable, "account %s stopped before its events were published", a.id)
		}
	}
}

// markAndUnlock returns the stream sequence of the last event produced
// before the call (0 if none yet), once it is stored. Called with mu held;
// it releases mu while waiting and returns with it released.
func (a *account) markAndUnlock(ctx context.Context) (uint64, error) {
	ch := make(chan uint64, 1)
	a.push(item{mark: ch})
	a.mu.Unlock()
	select {
	case seq := <-ch:
		return seq, nil
	case <-ctx.Done():
		return 0, ctx.Err()
	case <-a.stopped:
		return 0, movedf("account %s stopped running on this engine node", a.id)
	}
}

// shutdown ends the account's calls and queues with shutdown reasons,
// publishes that until ctx ends, and stops the publisher.
func (a *account) shutdown(ctx context.Context) error {
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		<-a.stopped
		return nil
	}
	a.begin()
	a.endAll()
	a.markStopped()
	a.closed = true
	target := a.produced
	a.mu.Unlock()
	err := a.waitFlushed(ctx, target)
	a.cancel()
	<-a.stopped
	if err != nil && !errors.Is(err, ErrUnavailable) {
		return err
	}
	return nil
}
