package testkit

import (
	"slices"
	"sync"
	"time"
)

// Clock is a settable clock for code that takes its time from a
// func() time.Time (auth.Options.Now) and its timers from an
// AfterFunc (gateway.Config.AfterFunc): a test moves it past a token's
// expiry instead of sleeping through real time. It is safe for concurrent
// use.
type Clock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*Timer // armed, in no order
}

// NewClock is a Clock that reads start until moved.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now is the clock's time; pass the method value (c.Now) as the clock.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock d forward and runs the function of every timer
// that came due, earliest first, on the caller's goroutine: when Advance
// returns, what the timers do has been done.
func (c *Clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	var due []*Timer
	c.timers = slices.DeleteFunc(c.timers, func(t *Timer) bool {
		if t.at.After(c.now) {
			return false
		}
		due = append(due, t)
		return true
	})
	c.mu.Unlock()
	slices.SortStableFunc(due, func(a, b *Timer) int { return a.at.Compare(b.at) })
	for _, t := range due {
		t.f()
	}
}

// AdvanceTo moves the clock to at, running the timers that come due as
// Advance does; only the one goroutine that moves the clock may call it.
func (c *Clock) AdvanceTo(at time.Time) { c.Advance(at.Sub(c.Now())) }

// AfterFunc is time.AfterFunc on this clock: f runs once the clock has
// been advanced d past now (within Advance), or at once on a goroutine of
// its own when d is not positive, as time.AfterFunc does.
func (c *Clock) AfterFunc(d time.Duration, f func()) *Timer {
	t := &Timer{c: c, f: f}
	t.Reset(d)
	return t
}

// Timer is a timer of a Clock, with time.Timer's Stop and Reset.
type Timer struct {
	c  *Clock
	f  func()
	at time.Time // guarded by c.mu
}

// Stop keeps the timer from firing; it reports whether it was armed.
func (t *Timer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	return t.disarmLocked()
}

// Reset arms the timer to fire d from the clock's now; it reports whether
// it was armed before.
func (t *Timer) Reset(d time.Duration) bool {
	c := t.c
	c.mu.Lock()
	armed := t.disarmLocked()
	if d <= 0 {
		c.mu.Unlock()
		go t.f()
		return armed
	}
	t.at = c.now.Add(d)
	c.timers = append(c.timers, t)
	c.mu.Unlock()
	return armed
}

func (t *Timer) disarmLocked() bool {
	n := len(t.c.timers)
	t.c.timers = slices.DeleteFunc(t.c.timers, func(x *Timer) bool { return x == t })
	return len(t.c.timers) < n
}
