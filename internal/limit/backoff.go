package limit

import (
	"sync"
	"time"
)

// BackoffConfig tunes a Backoff. Every zero field takes the default
// documented beside it.
type BackoffConfig struct {
	// Failures is how many failures within Window make an address wait.
	// Default 10.
	Failures int
	// Window is the span in which Failures failures must fall. Default 1m.
	Window time.Duration
	// Initial is the first wait. Each further wait doubles while the address
	// is remembered, up to Max. Default 1s.
	Initial time.Duration
	// Max caps a wait, and is also how long an address is remembered after
	// its last wait ended. Default 5m.
	Max time.Duration
	// MaxTracked bounds how many addresses are remembered; when full, the
	// one whose last failure is oldest is forgotten. Default 65,536.
	MaxTracked int
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Defaults of the BackoffConfig fields.
const (
	DefaultBackoffFailures   = 10
	DefaultBackoffWindow     = time.Minute
	DefaultBackoffInitial    = time.Second
	DefaultBackoffMax        = 5 * time.Minute
	DefaultBackoffMaxTracked = 65_536
)

func (c BackoffConfig) withDefaults() BackoffConfig {
	if c.Failures <= 0 {
		c.Failures = DefaultBackoffFailures
	}
	if c.Window <= 0 {
		c.Window = DefaultBackoffWindow
	}
	if c.Initial <= 0 {
		c.Initial = DefaultBackoffInitial
	}
	if c.Max <= 0 {
		c.Max = DefaultBackoffMax
	}
	c.Max = max(c.Max, c.Initial)
	if c.MaxTracked <= 0 {
		c.MaxTracked = DefaultBackoffMaxTracked
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	return c
}

// Backoff makes a client address that keeps failing to authenticate wait
// before it may try again: after Failures failures within Window the address
// is refused for Initial, and each time that happens again while the address
// is remembered the wait doubles, up to Max. A success forgets the address.
//
// Memory is bounded by MaxTracked; an address is forgotten Window after its
// last failure, or Max after its last wait ended. A Backoff is safe for
// concurrent use. Allow on an address with no failures does not allocate.
type Backoff struct {
	cfg BackoffConfig

	mu      sync.Mutex
	entries map[string]*backoffEntry
	// head and tail of a list ordered by last failure, most recent first:
	// the tail is what expires first and what is evicted when full.
	head, tail *backoffEntry
}

type backoffEntry struct {
	key          string
	failures     int       // within the current window
	windowEnd    time.Time // when the current window ends
	strikes      int       // waits imposed while remembered
	blockedUntil time.Time
	forgetAt     time.Time
	prev, next   *backoffEntry
}

// NewBackoff returns an empty Backoff.
func NewBackoff(cfg BackoffConfig) *Backoff {
	return &Backoff{cfg: cfg.withDefaults(), entries: make(map[string]*backoffEntry)}
}

// Config returns the configuration in effect, defaults filled in.
func (b *Backoff) Config() BackoffConfig { return b.cfg }

// Allow reports whether key may try to authenticate now and, when it may
// not, how long it has to wait.
func (b *Backoff) Allow(key string) (ok bool, retryAfter time.Duration) {
	now := b.cfg.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	e := b.entries[key]
	if e == nil {
		return true, 0
	}
	if !now.Before(e.forgetAt) {
		b.remove(e)
		return true, 0
	}
	if wait := e.blockedUntil.Sub(now); wait > 0 {
		return false, wait
	}
	return true, 0
}

// Failure records a failed authentication from key. It returns how long key
// must now wait: zero unless this failure (or an earlier one) made it wait.
func (b *Backoff) Failure(key string) (retryAfter time.Duration) {
	now := b.cfg.Now()
	b.mu.Lock()
	defer b.mu.Unlock()
	b.sweep(now)
	e := b.entries[key]
	if e != nil && !now.Before(e.forgetAt) {
		b.remove(e)
		e = nil
	}
	if e == nil {
		if len(b.entries) >= b.cfg.MaxTracked {
			b.remove(b.tail)
		}
		e = &backoffEntry{key: key}
		b.entries[key] = e
		b.pushFront(e)
	} else {
		b.moveToFront(e)
	}
	if wait := e.blockedUntil.Sub(now); wait > 0 {
		// Allow would have refused it; a caller that did not ask does
		// not get to extend or shorten the wait.
		return wait
	}
	if !now.Before(e.windowEnd) {
		e.failures = 0
		e.windowEnd = now.Add(b.cfg.Window)
	}
	e.failures++
	if e.failures < b.cfg.Failures {
		e.forgetAt = e.windowEnd
		if e.strikes > 0 {
			e.forgetAt = later(e.windowEnd, e.blockedUntil.Add(b.cfg.Max))
		}
		return 0
	}
	wait := b.cfg.Initial
	for i := 0; i < e.strikes && wait < b.cfg.Max; i++ {
		wait *= 2
	}
	wait = min(wait, b.cfg.Max)
	e.strikes++
	e.failures = 0
	e.windowEnd = now
	e.blockedUntil = now.Add(wait)
	e.forgetAt = e.blockedUntil.Add(b.cfg.Max)
	return wait
}

// Success records a successful authentication from key, which forgets its
// failures and waits.
func (b *Backoff) Success(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if e := b.entries[key]; e != nil {
		b.remove(e)
	}
}

// Len returns how many addresses are remembered.
func (b *Backoff) Len() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.entries)
}

// sweep forgets a few expired entries from the tail, so memory shrinks back
// as attacks stop without a goroutine or a full scan.
func (b *Backoff) sweep(now time.Time) {
	for range 4 {
		if b.tail == nil || now.Before(b.tail.forgetAt) {
			return
		}
		b.remove(b.tail)
	}
}

func (b *Backoff) pushFront(e *backoffEntry) {
	e.prev, e.next = nil, b.head
	if b.head != nil {
		b.head.prev = e
	}
	b.head = e
	if b.tail == nil {
		b.tail = e
	}
}

func (b *Backoff) unlink(e *backoffEntry) {
	if e.prev != nil {
		e.prev.next = e.next
	} else {
		b.head = e.next
	}
	if e.next != nil {
		e.next.prev = e.prev
	} else {
		b.tail = e.prev
	}
	e.prev, e.next = nil, nil
}

func (b *Backoff) moveToFront(e *backoffEntry) {
	if b.head == e {
		return
	}
	b.unlink(e)
	b.pushFront(e)
}

func (b *Backoff) remove(e *backoffEntry) {
	b.unlink(e)
	delete(b.entries, e.key)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
