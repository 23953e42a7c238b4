package lease

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"regexp"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Bucket is the key-value bucket ccevents keeps its leases in; open it with
// bus.KeyValue so it has the cluster's replica count.
const Bucket = "ccevents_leases"

// DefaultTTL is how long a lease lasts without renewal when Config.TTL is
// zero.
const DefaultTTL = 10 * time.Second

var (
	// ErrHeld means another owner holds the lease (or may still hold it: a
	// lease that stopped being renewed is free only after its TTL and a
	// margin, see the package doc).
	ErrHeld = errors.New("lease is held by another owner")
	// ErrLost is the cause of a lease that ended because it could not be
	// renewed in time or another owner took it over.
	ErrLost = errors.New("lease lost")
	// ErrReleased is the cause of a lease that ended with Release.
	ErrReleased = errors.New("lease released")
)

// Config names this node and sets the lease timing.
type Config struct {
	// Owner identifies this node in every lease it takes (a host name or
	// node id). Letters, digits and - _ = / only, so it can be part of a key.
	Owner string
	// TTL is how long a lease lasts without renewal; zero is DefaultTTL.
	// A holder that cannot renew within TTL loses the lease; another node
	// takes it over 5/4 TTL after it last changed.
	TTL time.Duration
	// Renew is the time between renewals; zero is TTL/3, so two renewals
	// in a row may fail before the lease is lost.
	Renew time.Duration
	// Logger receives lease gains and losses; nil discards them.
	Logger *slog.Logger
	// Registerer receives the lease metrics (metrics.go); with nil they
	// are registered nowhere (they count on, unexported).
	Registerer prometheus.Registerer
}

// record is what a lease key stores.
type record struct {
	Owner string `json:"owner"`
	// Token is unique to one Manager, so it recognises its own writes even
	// when their acknowledgement was lost.
	Token string `json:"token"`
	TTLms int64  `json:"ttl_ms"`
	// Since is wall-clock time of taking the lease, for people reading the
	// bucket; nothing decides on it.
	Since string `json:"since"`
}

// observation is a revision of a key as this node first saw it.
type observation struct {
	rev uint64
	at  time.Time // monotonic
	ttl time.Duration
}

// Manager takes, renews and releases leases in one bucket for one owner.
// It is safe for concurrent use.
type Manager struct {
	kv    jetstream.KeyValue
	cfg   Config
	log   *slog.Logger
	m     *metrics
	token string
	retry time.Duration

	mu   sync.Mutex
	seen map[string]observation
	held map[string]*Lease
}

var ownerPattern = regexp.MustCompile(`^[-_=/A-Za-z0-9]+$`)

// New returns a Manager for the leases in kv owned by cfg.Owner.
func New(kv jetstream.KeyValue, cfg Config) (*Manager, error) {
	if kv == nil {
		return nil, errors.New("lease: a key-value bucket is required")
	}
	if !ownerPattern.MatchString(cfg.Owner) {
		return nil, fmt.Errorf("lease: owner %q must be letters, digits and - _ = / only (a node id)", cfg.Owner)
	}
	if cfg.TTL == 0 {
		cfg.TTL = DefaultTTL
	}
	if cfg.TTL < 10*time.Millisecond {
		return nil, fmt.Errorf("lease: TTL %s is too short; use at least 10ms", cfg.TTL)
	}
	if cfg.Renew == 0 {
		cfg.Renew = cfg.TTL / 3
	}
	if cfg.Renew <= 0 || cfg.Renew >= cfg.TTL {
		return nil, fmt.Errorf("lease: renew interval %s must be above 0 and below the TTL %s", cfg.Renew, cfg.TTL)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	var tok [8]byte
	_, _ = crand.Read(tok[:])
	return &Manager{
		kv:    kv,
		cfg:   cfg,
		log:   cfg.Logger,
		m:     m,
		token: hex.EncodeToString(tok[:]),
		retry: max(cfg.Renew/4, 5*time.Millisecond),
		seen:  make(map[string]observation),
		held:  make(map[string]*Lease),
	}, nil
}

// Owner is the node id this manager writes into its leases.
func (m *Manager) Owner() string { return m.cfg.Owner }

// TTL is the lease lifetime this manager uses.
func (m *Manager) TTL() time.Duration { return m.cfg.TTL }

func (m *Manager) value() []byte {
	b, _ := json.Marshal(record{
		Owner: m.cfg.Owner,
		Token: m.token,
		TTLms: m.cfg.TTL.Milliseconds(),
		Since: time.Now().UTC().Format(time.RFC3339Nano),
	})
	return b
}

// parseRecord reads a stored lease; a value that is not one counts as held
// by an unknown owner for this manager's TTL, so garbage cannot steal a key
// any faster than a real lease expires.
func (m *Manager) parseRecord(v []byte) record {
	var r record
	if err := json.Unmarshal(v, &r); err != nil || r.TTLms <= 0 {
		return record{Owner: "unknown", TTLms: m.cfg.TTL.Milliseconds()}
	}
	return r
}

// observe records that key was at rev (first sighting of that revision
// starts its expiry countdown).
func (m *Manager) observe(key string, rev uint64, ttl time.Duration) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if o, ok := m.seen[key]; ok && o.rev == rev {
		return
	}
	m.seen[key] = observation{rev: rev, at: time.Now(), ttl: ttl}
}

// forget drops what is known of key (it was deleted or we took it).
func (m *Manager) forget(key string) {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.seen, key)
}

// expired reports whether key has been seen unchanged at rev for 5/4 of
// its TTL, so its holder's deadline has passed with a margin.
func (m *Manager) expired(key string, rev uint64) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.seen[key]
	return ok && o.rev == rev && time.Since(o.at) >= o.ttl+o.ttl/4
}

// expiresIn is how long until key, as last seen, counts as expired here.
func (m *Manager) expiresIn(key string) time.Duration {
	m.mu.Lock()
	defer m.mu.Unlock()
	o, ok := m.seen[key]
	if !ok {
		return m.cfg.TTL + m.cfg.TTL/4
	}
	return max(o.ttl+o.ttl/4-time.Since(o.at), 0)
}

// OwnerOf reports who holds key now as far as the bucket says: the owner of
// the stored lease, or "" when the key is free. A lease whose holder died
// is still reported until someone takes it over.
func (m *Manager) OwnerOf(ctx context.Context, key string) (string, error) {
	e, err := m.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", nil
	}
	if err != nil {
		return "", fmt.Errorf("read lease %s: %w", key, err)
	}
	return m.parseRecord(e.Value()).Owner, nil
}

// TryAcquire takes the lease on key if it is free, expired, or left over
// from this manager, and returns at once otherwise with an error wrapping
// ErrHeld. The lease is renewed in the background until Release or until
// it is lost; ctx bounds only this call.
//
// An expired lease is recognised only after this manager has watched it
// stay unchanged for 5/4 of its TTL, so the first TryAcquire of a dead
// node's key fails and a later one succeeds (Acquire waits for that).
func (m *Manager) TryAcquire(ctx context.Context, key string) (*Lease, error) {
	m.mu.Lock()
	old := m.held[key]
	m.mu.Unlock()
	if old != nil {
		if old.Held() {
			return nil, fmt.Errorf("%w: %s is already held by this node (%s)", ErrHeld, key, m.cfg.Owner)
		}
		// Past its deadline but its timer has not fired yet: end it now so
		// it can never adopt a write of the new lease as its own.
		old.end(fmt.Errorf("%w: %s was not renewed within %s", ErrLost, key, m.cfg.TTL))
	}

	val := m.value()
	e, err := m.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		sent := time.Now()
		rev, err := m.kv.Create(ctx, key, val)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return nil, fmt.Errorf("%w: %s was taken a moment ago", ErrHeld, key)
		}
		if err != nil {
			return nil, fmt.Errorf("take lease %s: %w", key, err)
		}
		m.m.acquired.WithLabelValues(acquiredFree).Inc()
		return m.start(key, rev, sent, val), nil
	}
	if err != nil {
		return nil, fmt.Errorf("read lease %s: %w", key, err)
	}
	rec := m.parseRecord(e.Value())
	rev := e.Revision()
	// Our own token on a key we do not hold is a write of ours whose
	// acknowledgement was lost, or a lease this manager lost: nobody else
	// acts on it, so taking it back needs no wait.
	if rec.Token != m.token {
		m.observe(key, rev, time.Duration(rec.TTLms)*time.Millisecond)
		if !m.expired(key, rev) {
			return nil, fmt.Errorf("%w: %s is held by %s", ErrHeld, key, rec.Owner)
		}
	}
	sent := time.Now()
	newRev, err := m.kv.Update(ctx, key, val, rev)
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		return nil, fmt.Errorf("%w: %s changed hands a moment ago", ErrHeld, key)
	}
	if err != nil {
		return nil, fmt.Errorf("take over lease %s from %s: %w", key, rec.Owner, err)
	}
	how := acquiredFree // our own write whose ack was lost, or a lease we lost
	if rec.Token != m.token {
		how = acquiredTakeover
		m.log.Info("lease taken over", "key", key, "from", rec.Owner)
	}
	m.m.acquired.WithLabelValues(how).Inc()
	return m.start(key, newRev, sent, val), nil
}

// Acquire waits until it holds the lease on key or ctx ends. It wakes when
// the key changes (a release) and when the current lease would expire.
func (m *Manager) Acquire(ctx context.Context, key string) (*Lease, error) {
	w, err := m.kv.Watch(ctx, key, jetstream.UpdatesOnly())
	if err != nil {
		return nil, fmt.Errorf("watch lease %s: %w", key, err)
	}
	defer w.Stop()
	updates := w.Updates()
	for {
		l, err := m.TryAcquire(ctx, key)
		if err == nil {
			return l, nil
		}
		wait := m.retry
		if errors.Is(err, ErrHeld) {
			wait = m.expiresIn(key) + time.Millisecond
		} else {
			m.log.Debug("acquire lease: retrying", "key", key, "err", err)
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil, fmt.Errorf("acquire lease %s: %w (last: %v)", key, ctx.Err(), err)
		case _, ok := <-updates:
			if !ok {
				updates = nil // the watch ended; the timer still wakes us
			}
		case <-t.C:
		}
		t.Stop()
	}
}

func (m *Manager) start(key string, rev uint64, sent time.Time, val []byte) *Lease {
	ctx, cancel := context.WithCancelCause(context.Background())
	l := &Lease{
		m:        m,
		key:      key,
		value:    val,
		ctx:      ctx,
		cancel:   cancel,
		exited:   make(chan struct{}),
		rev:      rev,
		deadline: sent.Add(m.cfg.TTL),
	}
	m.mu.Lock()
	m.held[key] = l
	delete(m.seen, key)
	m.mu.Unlock()
	// Under l.mu: the timer may fire at once if the write took the whole
	// TTL, and checkDeadline must see it assigned.
	l.mu.Lock()
	l.timer = time.AfterFunc(time.Until(l.deadline), l.checkDeadline)
	l.mu.Unlock()
	go l.renew()
	m.log.Debug("lease acquired", "key", key, "revision", rev)
	return l
}

// Lease is one held key. Its holder acts on the key only while Held is
// true, and must stop at once when Done closes.
type Lease struct {
	m      *Manager
	key    string
	value  []byte // the record, written again at every renewal
	ctx    context.Context
	cancel context.CancelCauseFunc
	exited chan struct{} // closed when the renewal goroutine returns

	mu       sync.Mutex
	rev      uint64
	deadline time.Time // monotonic; the lease is ours until then
	timer    *time.Timer
}

// Key is the leased key.
func (l *Lease) Key() string { return l.key }

// Revision is the key's revision as last written by this holder; it
// changes with every renewal.
func (l *Lease) Revision() uint64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.rev
}

// Context is done as soon as the lease is lost or released; its cause
// (context.Cause) wraps ErrLost or is ErrReleased. Work done on behalf of
// the lease should run under it.
func (l *Lease) Context() context.Context { return l.ctx }

// Done is closed when the lease ends, lost or released.
func (l *Lease) Done() <-chan struct{} { return l.ctx.Done() }

// Err is nil while the lease is held, then why it ended.
func (l *Lease) Err() error {
	if l.ctx.Err() == nil {
		return nil
	}
	return context.Cause(l.ctx)
}

// Held reports whether the lease is still this node's: not ended and its
// deadline not passed. Check it right before acting on the key.
func (l *Lease) Held() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.ctx.Err() == nil && time.Now().Before(l.deadline)
}

// end stops the lease with cause; the first cause wins.
func (l *Lease) end(cause error) {
	if l.ctx.Err() != nil {
		return
	}
	l.cancel(cause)
	l.mu.Lock()
	l.timer.Stop()
	l.mu.Unlock()
	m := l.m
	m.mu.Lock()
	if m.held[l.key] == l {
		delete(m.held, l.key)
	}
	m.mu.Unlock()
	if errors.Is(cause, ErrLost) {
		m.m.ended.WithLabelValues(endedLost).Inc()
		m.log.Warn("lease lost", "key", l.key, "reason", cause)
	} else {
		m.m.ended.WithLabelValues(endedReleased).Inc()
	}
}

// checkDeadline runs when the deadline timer fires: a renewal may have moved
// the deadline meanwhile.
func (l *Lease) checkDeadline() {
	l.mu.Lock()
	left := time.Until(l.deadline)
	if left > 0 {
		l.timer.Reset(left)
		l.mu.Unlock()
		return
	}
	l.mu.Unlock()
	l.end(fmt.Errorf("%w: %s was not renewed within %s", ErrLost, l.key, l.m.cfg.TTL))
}

// extend records a write of ours at rev, stored after sent.
func (l *Lease) extend(rev uint64, sent time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if rev > l.rev {
		l.rev = rev // also after the end, so Release deletes the right revision
	}
	if l.ctx.Err() != nil {
		return
	}
	if d := sent.Add(l.m.cfg.TTL); d.After(l.deadline) {
		l.deadline = d
	}
}

func (l *Lease) renew() {
	defer close(l.exited)
	m := l.m
	t := time.NewTimer(jitter(m.cfg.Renew))
	defer t.Stop()
	// pending is when the first unacknowledged write since the last known
	// one was sent: if one of them was stored, it was stored after this.
	var pending time.Time
	for {
		select {
		case <-l.ctx.Done():
			return
		case <-t.C:
		}
		l.mu.Lock()
		rev, deadline := l.rev, l.deadline
		l.mu.Unlock()
		sent := time.Now()
		if pending.IsZero() {
			pending = sent
		}
		// Each attempt ends in time for a retry before the deadline.
		actx, cancel := context.WithDeadline(l.ctx, minTime(deadline, sent.Add(m.cfg.Renew)))
		newRev, err := m.kv.Update(actx, l.key, l.value, rev)
		if err == nil {
			cancel()
			l.extend(newRev, sent)
			pending = time.Time{}
			t.Reset(jitter(m.cfg.Renew))
			continue
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			cancel()
			m.log.Debug("lease renewal failed; retrying", "key", l.key, "err", err)
			t.Reset(m.retry)
			continue
		}
		// The revision moved: either an unacknowledged write of ours was
		// stored, or someone else has the key.
		e, gerr := m.kv.Get(actx, l.key)
		cancel()
		switch {
		case errors.Is(gerr, jetstream.ErrKeyNotFound):
			l.end(fmt.Errorf("%w: %s was deleted by someone else", ErrLost, l.key))
			return
		case gerr != nil, e.Revision() <= rev:
			// Unreachable, or a replica behind the leader answered.
			t.Reset(m.retry)
		case m.parseRecord(e.Value()).Token == m.token:
			l.extend(e.Revision(), pending)
			pending = time.Time{}
			t.Reset(jitter(m.cfg.Renew))
		default:
			l.end(fmt.Errorf("%w: %s was taken over by %s", ErrLost, l.key, m.parseRecord(e.Value()).Owner))
			return
		}
	}
}

// Release ends the lease and deletes its key so another node can take it
// at once. The lease stops counting as held before the key is deleted. If
// the delete fails, the key is left to expire. Releasing a lease that was
// lost returns its ErrLost cause; releasing twice does nothing.
func (l *Lease) Release(ctx context.Context) error {
	if l.ctx.Err() != nil {
		if cause := context.Cause(l.ctx); errors.Is(cause, ErrLost) {
			return fmt.Errorf("release: %w", cause)
		}
		return nil
	}
	l.end(ErrReleased)
	<-l.exited // no renewal may race the delete
	m := l.m
	rev := l.Revision()
	err := m.kv.Delete(ctx, l.key, jetstream.LastRevision(rev))
	if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
		// A renewal of ours may have been stored without its ack.
		if e, gerr := m.kv.Get(ctx, l.key); gerr == nil && m.parseRecord(e.Value()).Token == m.token {
			err = m.kv.Delete(ctx, l.key, jetstream.LastRevision(e.Revision()))
		} else {
			err = nil // someone else has it: nothing of ours to delete
		}
	}
	if err != nil {
		return fmt.Errorf("release lease %s (it will expire in %s): %w", l.key, m.cfg.TTL, err)
	}
	m.forget(l.key)
	m.log.Debug("lease released", "key", l.key)
	return nil
}

// jitter spreads renewals of many leases over ±10% of d.
func jitter(d time.Duration) time.Duration {
	return d - d/10 + rand.N(d/5+1)
}

func minTime(a, b time.Time) time.Time {
	if a.Before(b) {
		return a
	}
	return b
}
