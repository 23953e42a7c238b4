package engine

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

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
	// KV stores queue and recipient configuration and who is logged in
	// (open it with bus.KeyValue(ctx, engine.Bucket)); nil keeps it in
	// memory only.
	KV jetstream.KeyValue
	// Clock is the source of time and timers; nil is RealClock.
	Clock Clock
	// SyncInterval is how often every logged-in recipient gets a
	// recipient.sync; zero is DefaultSyncInterval, negative disables it.
	SyncInterval time.Duration
	// DefaultHandleTime is assumed by the estimated wait until a queue has
	// handled a call; zero is DefaultHandleTime.
	DefaultHandleTime time.Duration
	// Manual leaves loading accounts to the caller (LoadAccount), for
	// engines that split accounts between them by ownership; commands for
	// an account not loaded are refused. Otherwise New loads every stored
	// account and commands load an account on first use.
	Manual bool
	// Logger receives the engine's logs; nil discards them.
	Logger *slog.Logger
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

	mu       sync.Mutex
	accounts map[string]*slot
	closed   bool
}

// slot is an account being loaded or loaded; ready closes when load ends.
type slot struct {
	ready chan struct{}
	a     *account
	err   error
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
	e := &Engine{cfg: cfg, clock: cfg.Clock, log: cfg.Logger, accounts: make(map[string]*slot)}
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
		select {
		case <-s.ready:
			if s.err == nil {
				ids = append(ids, id)
			}
		default:
		}
	}
	slices.Sort(ids)
	return ids
}

// LoadAccount restores an account from the key-value bucket and starts
// running it: its queues start (queue.create) and each logged-in recipient
// is restored to ready or away with a recipient.sync. Loading an account
// already loaded does nothing.
func (e *Engine) LoadAccount(ctx context.Context, accountID string) error {
	_, err := e.account(ctx, accountID, true)
	return err
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
	if !event.ValidAccountID(id) {
		return nil, invalidf("account id must be 32 lowercase hex characters, got %q", short(id))
	}
	e.mu.Lock()
	if e.closed {
		e.mu.Unlock()
		return nil, errorf(KindUnavailable, "the engine is shutting down")
	}
	s, ok := e.accounts[id]
	if !ok {
		if e.cfg.Manual && !load {
			e.mu.Unlock()
			return nil, errorf(KindUnavailable, "account %s is not served by this engine node", id)
		}
		s = &slot{ready: make(chan struct{})}
		e.accounts[id] = s
		e.mu.Unlock()
		s.a, s.err = e.load(ctx, id)
		if s.err != nil {
			e.mu.Lock()
			if e.accounts[id] == s {
				delete(e.accounts, id)
			}
			e.mu.Unlock()
		}
		close(s.ready)
		return s.a, s.err
	}
	e.mu.Unlock()
	select {
	case <-s.ready:
		return s.a, s.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

// load reads an account's configuration and starts it.
func (e *Engine) load(ctx context.Context, id string) (*account, error) {
	st, err := e.readStored(ctx, id)
	if err != nil {
		e.log.Error("load account", "account", id, "err", err)
		return nil, errorf(KindUnavailable, "could not load account %s from the configuration store; try again", id)
	}
	a := newAccount(e, id)
	go a.run()
	a.mu.Lock()
	a.begin()
	a.restore(st)
	target := a.produced
	a.mu.Unlock()
	_ = a.waitFlushed(ctx, target)
	e.log.Info("account loaded", "account", id, "queues", len(st.queues), "recipients", len(st.recipients))
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
		return errorf(KindUnavailable, "account %s is shutting down on this engine", accountID)
	}
	if a.produced-a.flushed > maxBacklog {
		a.mu.Unlock()
		return errorf(KindUnavailable, "the engine is behind publishing events for account %s; try again shortly", accountID)
	}
	a.begin()
	err = op(a)
	target := a.produced
	a.mu.Unlock()
	// A caller that gave up still gets op's result: the change is made and
	// its events will follow.
	_ = a.waitFlushed(ctx, target)
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

// read runs op on the account under its lock for a look at its state.
func (e *Engine) read(ctx context.Context, accountID string, op func(a *account) error) error {
	a, err := e.account(ctx, accountID, false)
	if err != nil {
		return err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.closed {
		return errorf(KindUnavailable, "account %s is shutting down on this engine", accountID)
	}
	a.begin()
	return op(a)
}

// Key layout in the bucket: acct.<account>.q.<queue> and
// acct.<account>.r.<recipient>.
const keyPrefix = "acct."

func queueKey(acc, id string) string     { return keyPrefix + acc + ".q." + id }
func recipientKey(acc, id string) string { return keyPrefix + acc + ".r." + id }

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
