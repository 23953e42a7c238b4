package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/event"
)

// Bucket is the key-value bucket the engine's configuration lives in; the
// process opens it (bus.KeyValue) and passes it as Config.KV.
const Bucket = "ccevents_engine"

// DefaultSyncInterval is how often every logged-in recipient gets a
// recipient.sync when Config.SyncInterval is zero.
const DefaultSyncInterval = 30 * time.Second

// DefaultHandleTime is the handle time the estimated wait assumes for a
// queue until its first call completes.
const DefaultHandleTime = 2 * time.Minute

// DefaultStatsInterval is the shortest time between two statistics events
// of one queue (or of the account) when Config.StatsInterval is zero.
const DefaultStatsInterval = time.Second

// maxLoad bounds loading an account for Own, whose context may last for
// hours.
const maxLoad = 30 * time.Second

// maxBacklog is how many events and writes an account may have waiting for
// the bus before commands are refused; timers keep producing regardless.
const maxBacklog = 10000

// Publisher stores one event on the bus and returns its stream sequence.
// *bus.Bus is one. msgID is the event id, so a retried publish is stored
// once.
type Publisher interface {
	Publish(ctx context.Context, subject string, data []byte, msgID string) (uint64, error)
}

// Config wires an Engine. Publisher is required.
type Config struct {
	Publisher Publisher
	// KV stores queue and recipient configuration, who is logged in and
	// which calls are in progress (open it with bus.KeyValue(ctx,
	// engine.Bucket)); nil keeps it in memory only.
	KV jetstream.KeyValue
	// JetStream writes to KV with a fence (see the package doc); nil takes
	// it from Publisher when that has a JetStream method, as *bus.Bus has.
	// Required with KV.
	JetStream jetstream.JetStream
	// Clock is the source of time and timers; nil is RealClock.
	Clock Clock
	// SyncInterval is how often every logged-in recipient gets a
	// recipient.sync; zero is DefaultSyncInterval, negative disables it.
	SyncInterval time.Duration
	// DefaultHandleTime is assumed by the estimated wait until a queue has
	// handled a call; zero is DefaultHandleTime.
	DefaultHandleTime time.Duration
	// StatsInterval is the shortest time between two statistics events
	// (stats.queue, stats.account) of one queue or of the account: changes
	// in between are sent together when it has passed. Zero is
	// DefaultStatsInterval; negative sends none (snapshots and Stats still
	// report the figures).
	StatsInterval time.Duration
	// Manual leaves loading accounts to the caller (Own or LoadAccount),
	// for engines that split accounts between them by ownership; commands
	// for an account not loaded are refused (Error.Moved). Otherwise New
	// loads every stored account and commands load an account on first use.
	Manual bool
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the engine's own metrics (offer holds); nil
	// counts them unregistered.
	Registerer prometheus.Registerer
}

// Engine runs the contact center of every account it has loaded. Each
// account's state is guarded by its own lock, held only while state changes
// (never across bus or key-value I/O); events an account produces go to
// the bus in the order they were produced, through one publisher per
// account.
type Engine struct {
	cfg   Config
	clock Clock
	log   *slog.Logger
	js    jetstream.JetStream // fenced writes to cfg.KV; nil without KV
	// putPrefix is the subject prefix of the bucket's keys ("$KV.<bucket>.").
	putPrefix string
	// instance names this engine in the fence records it writes.
	instance string
	metrics  *engineMetrics

	mu       sync.Mutex
	accounts map[string]*slot
	// stopping holds accounts stopped without publishing until their
	// publisher has returned.
	stopping map[string]*account
	closed   bool
}

// slot is an account being loaded or loaded; ready closes when load ends.
type slot struct {
	ready chan struct{}
	a     *account
	err   error
}

// loaded is the slot's account once its load has ended, else nil.
func (s *slot) loaded() *account {
	select {
	case <-s.ready:
		return s.a
	default:
		return nil
	}
}

// New builds an engine. Unless cfg.Manual is set it loads every account
// stored in cfg.KV, which publishes queue.create for each of its queues and
// recipient.sync for each logged-in recipient.
func New(ctx context.Context, cfg Config) (*Engine, error) {
	if cfg.Publisher == nil {
		return nil, errors.New("engine: Config.Publisher is required")
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock()
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = DefaultSyncInterval
	}
	if cfg.DefaultHandleTime <= 0 {
		cfg.DefaultHandleTime = DefaultHandleTime
	}
	if cfg.StatsInterval == 0 {
		cfg.StatsInterval = DefaultStatsInterval
	}
	m, err := newEngineMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	e := &Engine{cfg: cfg, clock: cfg.Clock, log: cfg.Logger, metrics: m, accounts: make(map[string]*slot), stopping: make(map[string]*account), instance: event.NewEventID()}
	if cfg.KV != nil {
		e.js = cfg.JetStream
		if js, ok := cfg.Publisher.(interface{ JetStream() jetstream.JetStream }); ok && e.js == nil {
			e.js = js.JetStream()
		}
		if e.js == nil {
			return nil, errors.New("engine: Config.JetStream is required with Config.KV")
		}
		e.putPrefix = "$KV." + cfg.KV.Bucket() + "."
	}
	if cfg.Manual || cfg.KV == nil {
		return e, nil
	}
	ids, err := e.StoredAccounts(ctx)
	if err != nil {
		return nil, err
	}
	for _, id := range ids {
		if err := e.LoadAccount(ctx, id); err != nil {
			_ = e.Close(context.WithoutCancel(ctx))
			return nil, err
		}
	}
	return e, nil
}

// StoredAccounts lists the accounts that have configuration in the
// key-value bucket, sorted.
func (e *Engine) StoredAccounts(ctx context.Context) ([]string, error) {
	if e.cfg.KV == nil {
		return nil, nil
	}
	lister, err := e.cfg.KV.ListKeysFiltered(ctx, keyPrefix+">")
	if err != nil {
		return nil, fmt.Errorf("list stored accounts: %w", err)
	}
	seen := map[string]bool{}
	for key := range lister.Keys() {
		if acc, _, _, ok := parseKey(key); ok {
			seen[acc] = true
		}
	}
	if err := ctx.Err(); err != nil {
		return nil, fmt.Errorf("list stored accounts: %w", err)
	}
	ids := make([]string, 0, len(seen))
	for id := range seen {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}

// Accounts lists the accounts this engine has loaded, sorted.
func (e *Engine) Accounts() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	ids := make([]string, 0, len(e.accounts))
	for id, s := range e.accounts {
		if s.loaded() != nil {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids
}

// LoadAccount restores an account from the key-value bucket and starts
// running it: its queues start (queue.create) and each logged-in recipient
// is restored to ready or away with a recipient.sync (see the package doc
// for what a load after a crash adds). Loading an account already loaded
// does nothing. The account runs until it is unloaded or dropped.
func (e *Engine) LoadAccount(ctx context.Context, accountID string) error {
	_, err := e.account(ctx, accountID, true)
	return err
}

// Own loads an account, as LoadAccount does, on behalf of an ownership
// that lasts as long as owned (a lease's context): the moment owned ends
// the account stops at once, as Drop stops it: nothing it has not
// published yet is published and nothing more is written. Owning an
// account already loaded is refused.
func (e *Engine) Own(owned context.Context, accountID string) error {
	if err := CheckAccountID(accountID); err != nil {
		return err
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return movedf("the engine is shutting down")
	}
	if _, ok := e.accounts[accountID]; ok {
		e.mu.Unlock()
		return conflictf("account %s is already running on this engine", accountID)
	}
	s := &slot{ready: make(chan struct{})}
	e.accounts[accountID] = s
	e.mu.Unlock()
	loadCtx, cancel := context.WithTimeout(owned, maxLoad)
	s.a, s.err = e.load(loadCtx, accountID, owned)
	cancel()
	e.settle(accountID, s)
	if s.err != nil {
		return s.err
	}
	a := s.a
	// Runs at once if owned ended while loading.
	context.AfterFunc(owned, func() { e.stop(a, "its ownership ended") })
	return nil
}

// Drop stops running an account at once, publishing nothing more: events
// and writes it produced but has not stored yet are discarded, its timers
// stop acting, and commands are refused. Use it when ownership of the
// account was lost, so another engine may already run it; use
// UnloadAccount to give an account away cleanly. Drop returns once
// nothing of the account can reach the bus any more.
func (e *Engine) Drop(accountID string) {
	e.mu.Lock()
	s := e.accounts[accountID]
	if s != nil {
		delete(e.accounts, accountID)
	}
	stopping := e.stopping[accountID]
	e.mu.Unlock()
	if s != nil {
		<-s.ready
		if s.a != nil {
			e.stop(s.a, "it was dropped")
			<-s.a.stopped
		}
	}
	if stopping != nil {
		<-stopping.stopped
	}
}

// stop makes an account stop acting at once and forgets it; its publisher
// notices at once, and Drop waits for it.
func (e *Engine) stop(a *account, why string) {
	a.mu.Lock()
	first, wasClosed := !a.lost, a.closed
	a.closed, a.lost = true, true
	stopTimer(a.syncTimer)
	a.mu.Unlock()
	a.cancel()
	if !first {
		return
	}
	e.mu.Lock()
	if s := e.accounts[a.id]; s != nil && s.loaded() == a {
		delete(e.accounts, a.id)
	}
	e.stopping[a.id] = a
	e.mu.Unlock()
	go func() {
		<-a.stopped
		e.mu.Lock()
		if e.stopping[a.id] == a {
			delete(e.stopping, a.id)
		}
		e.mu.Unlock()
	}()
	if !wasClosed {
		a.log.Warn("account stopped without publishing anything more", "reason", why)
	}
}

// UnloadAccount stops running an account: waiting callers leave
// (queue_deleted) and calls in progress end (session.delete
// SYSTEM_SHUTDOWN), open wrap-up and finalize windows close, and its
// queues stop (queue.delete shutdown). The stored configuration stays so
// another engine (or this one) can load it again; logged-in recipients
// stay logged in in the store.
func (e *Engine) UnloadAccount(ctx context.Context, accountID string) error {
	e.mu.Lock()
	s, ok := e.accounts[accountID]
	if ok {
		delete(e.accounts, accountID)
	}
	e.mu.Unlock()
	if !ok {
		return nil
	}
	select {
	case <-s.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	if s.err != nil {
		return nil
	}
	return s.a.shutdown(ctx)
}

// settle ends a slot's load: a failed load is forgotten so the next
// command (or owner) tries again.
func (e *Engine) settle(id string, s *slot) {
	if s.err != nil {
		e.mu.Lock()
		if e.accounts[id] == s {
			delete(e.accounts, id)
		}
		e.mu.Unlock()
	}
	close(s.ready)
}

// Serves reports whether a command for the account would be run here
// rather than refused as Moved: always without Manual, otherwise while the
// account is loaded or loading.
func (e *Engine) Serves(accountID string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return false
	}
	if !e.cfg.Manual {
		return true
	}
	_, ok := e.accounts[accountID]
	return ok
}

// Close unloads every account, publishing what their shutdown produces
// until ctx ends, and refuses commands from then on.
func (e *Engine) Close(ctx context.Context) error {
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil
	}
	e.closed = true
	ids := make([]string, 0, len(e.accounts))
	for id := range e.accounts {
		ids = append(ids, id)
	}
	e.mu.Unlock()
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = e.unloadForClose(ctx, id)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func (e *Engine) unloadForClose(ctx context.Context, id string) error {
	e.mu.Lock()
	s := e.accounts[id]
	delete(e.accounts, id)
	e.mu.Unlock()
	if s == nil {
		return nil
	}
	<-s.ready
	if s.err != nil {
		return nil
	}
	return s.a.shutdown(ctx)
}

// account returns the running account, loading it when allowed.
func (e *Engine) account(ctx context.Context, id string, load bool) (*account, error) {
	if err := CheckAccountID(id); err != nil {
		return nil, err
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, movedf("the engine is shutting down")
	}
	s, ok := e.accounts[id]
	if !ok {
		if e.cfg.Manual && !load {
			e.mu.Unlock()
			return nil, movedf("account %s is not served by this engine node", id)
		}
		s = &slot{ready: make(chan struct{})}
		e.accounts[id] = s
		e.mu.Unlock()
		s.a, s.err = e.load(ctx, id, context.Background())
		e.settle(id, s)
		return s.a, s.err
	}
	e.mu.Unlock()
	select {
	case <-s.ready:
		if s.err != nil && e.cfg.Manual {
			// The owner's load failed: to this caller the account is not here.
			return nil, movedf("account %s is not served by this engine node", id)
		}
		return s.a, s.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// load reads an account's stored state, fences out any earlier owner and
// starts the account; it runs until owned ends (or it is unloaded).
func (e *Engine) load(ctx context.Context, id string, owned context.Context) (*account, error) {
	st, err := e.takeOver(ctx, id)
	if err != nil {
		if ctx.Err() != nil {
			return nil, movedf("account %s stopped loading on this engine node", id)
		}
		e.log.Error("load account", "account", id, "err", err)
		return nil, errorf(KindUnavailable, "could not load account %s from the configuration store; try again", id)
	}
	a := newAccount(e, id, owned)
	a.kvLast = st.fence
	go a.run()
	a.mu.Lock()
	a.begin()
	a.restore(st)
	target := a.produced
	a.mu.Unlock()
	_ = a.waitFlushed(ctx, target)
	e.log.Info("account loaded", "account", id, "queues", len(st.queues), "recipients", len(st.recipients),
		"calls_ended", len(st.sessions), "after_crash", st.crashed())
	return a, nil
}

// do runs op on the account under its lock, then waits until every event
// and write op produced has reached the bus, so a caller that gets an
// answer can rely on the events being in the stream.
func (e *Engine) do(ctx context.Context, accountID string, op func(a *account) error) error {
	a, err := e.account(ctx, accountID, false)
	if err != nil {
		return err
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return movedf("account %s is shutting down on this engine", accountID)
	}
	if a.produced-a.flushed > maxBacklog {
		a.mu.Unlock()
		return errorf(KindUnavailable, "the engine is behind publishing events for account %s; try again shortly", accountID)
	}
	a.begin()
	err = op(a)
	a.publishStats()
	target := a.produced
	a.mu.Unlock()
	// A caller that gave up still gets op's result: the change is made and
	// its events will follow.
	_ = a.waitFlushed(ctx, target)
	if a.lostBefore(target) {
		return errorf(KindUnavailable, "account %s moved to another engine node before this change was published; check its state and try again", accountID)
	}
	return err
}

// Flush waits until every event and write the account has produced so far
// (timers included) is on the bus. Commands already wait for their own
// events; Flush is for callers that advance a virtual clock.
// An account not loaded has nothing to flush.
func (e *Engine) Flush(ctx context.Context, accountID string) error {
	e.mu.Lock()
	s := e.accounts[accountID]
	e.mu.Unlock()
	if s == nil {
		return nil
	}
	select {
	case <-s.ready:
	case <-ctx.Done():
		return ctx.Err()
	}
	a := s.a
	if a == nil {
		return nil
	}
	a.mu.Lock()
	target := a.produced
	a.mu.Unlock()
	return a.waitFlushed(ctx, target)
}

// reply runs op through run (Engine.do, or Engine.read for a look) and
// returns the value op made: a command's reply.
func reply[T any](ctx context.Context, run func(context.Context, string, func(*account) error) error, accountID string, op func(a *account) (T, error)) (T, error) {
	var out T
	err := run(ctx, accountID, func(a *account) error {
		var err error
		out, err = op(a)
		return err
	})
	return out, err
}

// read runs op on the account under its lock for a look at its state.
func (e *Engine) read(ctx context.Context, accountID string, op func(a *account) error) error {
	a, err := e.account(ctx, accountID, false)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return movedf("account %s is shutting down on this engine", accountID)
	}
	a.begin()
	return op(a)
}

// Key layout in the bucket: acct.<account>.q.<queue>,
// acct.<account>.r.<recipient>, acct.<account>.s.<slot> (a call in
// progress), acct.<account>.a.stats (the account-wide statistics history)
// and acct.<account>.o.owner (the fence: who loaded the account last and
// whether it stopped cleanly). Every key of an account is written by its
// owner only, through the fence.
const keyPrefix = "acct."

func queueKey(acc, id string) string     { return keyPrefix + acc + ".q." + id }
func recipientKey(acc, id string) string { return keyPrefix + acc + ".r." + id }
func sessionKey(acc string, slot int) string {
	return keyPrefix + acc + ".s." + strconv.Itoa(slot)
}
func ownerKey(acc string) string        { return keyPrefix + acc + ".o.owner" }
func accountStatsKey(acc string) string { return keyPrefix + acc + ".a.stats" }

// accountKeys is the filter of every key of one account.
func accountKeys(acc string) string { return keyPrefix + acc + ".>" }

func parseKey(key string) (acc, kind, id string, ok bool) {
	rest, ok := strings.CutPrefix(key, keyPrefix)
	if !ok {
		return "", "", "", false
	}
	parts := strings.SplitN(rest, ".", 3)
	if len(parts) != 3 || !event.ValidAccountID(parts[0]) || !event.ValidEntityID(parts[2]) {
		return "", "", "", false
	}
	return parts[0], parts[1], parts[2], true
}
