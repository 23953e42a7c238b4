package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/engine/enginetest"
	"github.com/ccevents/ccevents/internal/natstest"
)

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

const acc = "0123456789abcdef0123456789abcdef"

// openBus runs a bus on its own embedded server, storing under dir (in
// memory when memory is set), until the test ends; a test that restarts
// it closes it itself and opens another on the same dir.
func openBus(t testing.TB, dir string, memory bool) *bus.Bus {
	t.Helper()
	return natstest.Bus(t, bus.Config{DataDir: dir, Memory: memory, Name: "engine-test"})
}

// errorLog fails the test when the engine logs at error level: the engine
// logs an error only for a bug (an invalid event) or lost events.
type errorLog struct {
	mu   sync.Mutex
	msgs []string
}

func (h *errorLog) Enabled(_ context.Context, l slog.Level) bool { return l >= slog.LevelError }
func (h *errorLog) Handle(_ context.Context, r slog.Record) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	msg := r.Message
	r.Attrs(func(a slog.Attr) bool { msg += " " + a.String(); return true })
	h.msgs = append(h.msgs, msg)
	return nil
}
func (h *errorLog) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h *errorLog) WithGroup(string) slog.Handler      { return h }

// tb is what the helpers need of a test; *testing.T and *rapid.T have it.
type tb interface {
	Helper()
	Context() context.Context
	Fatal(args ...any)
	Fatalf(format string, args ...any)
	Error(args ...any)
	Errorf(format string, args ...any)
}

type harness struct {
	t     tb
	bus   *bus.Bus
	clock *engine.VirtualClock
	eng   *engine.Engine
	logs  *errorLog
	ctx   context.Context
}

// newHarness runs an engine on a fresh in-memory bus in virtual time.
func newHarness(t testing.TB, cfg engine.Config) *harness {
	t.Helper()
	return newHarnessOn(t, openBus(t, t.TempDir(), true), cfg)
}

func newHarnessOn(t testing.TB, b *bus.Bus, cfg engine.Config) *harness {
	t.Helper()
	h := &harness{t: t, bus: b, logs: &errorLog{}, ctx: t.Context()}
	if cfg.Clock == nil {
		h.clock = engine.NewVirtualClock(t0)
		cfg.Clock = h.clock
	} else {
		h.clock, _ = cfg.Clock.(*engine.VirtualClock)
	}
	cfg.Publisher = b
	cfg.Logger = slog.New(h.logs)
	if cfg.SyncInterval == 0 {
		cfg.SyncInterval = -1
	}
	if cfg.StatsInterval == 0 {
		cfg.StatsInterval = -1 // tests of statistics ask for them
	}
	// Registered before the engine starts, so it runs once the engine
	// has closed and logged all it will.
	t.Cleanup(func() {
		h.logs.mu.Lock()
		defer h.logs.mu.Unlock()
		for _, m := range h.logs.msgs {
			t.Errorf("engine logged an error: %s", m)
		}
	})
	h.eng = enginetest.Start(t, cfg)
	return h
}

// newStoredHarness runs an engine on b that keeps its state in b's engine
// bucket, where a restarted or succeeding engine finds it.
func newStoredHarness(t testing.TB, b *bus.Bus, cfg engine.Config) *harness {
	t.Helper()
	kv, err := b.KeyValue(t.Context(), engine.Bucket)
	ok(t, err)
	cfg.KV = kv
	return newHarnessOn(t, b, cfg)
}

// startOwner runs a stored engine that owns the test account from time now
// on (virtual); lose ends its ownership, as a lost lease does.
func startOwner(t *testing.T, b *bus.Bus, cfg engine.Config, now time.Time) (h *harness, lose context.CancelFunc) {
	t.Helper()
	cfg.Manual, cfg.Clock = true, engine.NewVirtualClock(now)
	h = newStoredHarness(t, b, cfg)
	owned, lose := context.WithCancel(t.Context())
	t.Cleanup(lose)
	ok(t, h.eng.Own(owned, acc))
	return h, lose
}

// must fails the test on err.
func must[T any](t testing.TB) func(v T, err error) T {
	return func(v T, err error) T {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
}

// errOf is the error of a call that also answers with a value, for a
// table of refusals.
func errOf[T any](_ T, err error) error { return err }

func ok(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

type published struct {
	Seq     uint64
	Subject string
	Data    []byte
	Event   string
	Fields  map[string]any
}

// events reads every stored event of the account, in stream order.
func (h *harness) events(account string) []published {
	h.t.Helper()
	return h.eventsAfter(account, 0)
}

// eventsAfter returns the account's events with a sequence above seq.
func (h *harness) eventsAfter(account string, seq uint64) []published {
	h.t.Helper()
	ctx, cancel := context.WithTimeout(h.ctx, 20*time.Second)
	defer cancel()
	if err := h.eng.Flush(ctx, account); err != nil && !errors.Is(err, engine.ErrUnavailable) {
		h.t.Fatal(err)
	}
	return streamEvents(h.t, h.bus, account, seq)
}

func (h *harness) last() uint64 { return lastSeq(h.t, h.bus) }

// check replays events through the invariant checker and reports violations.
func check(t tb, account string, evs []published, finish bool) *enginetest.Checker {
	t.Helper()
	c := enginetest.NewChecker(account)
	for _, p := range evs {
		c.Apply(p.Subject, p.Data)
	}
	if finish {
		c.Finish()
	}
	for _, v := range c.Violations() {
		t.Error(v)
	}
	return c
}

// names renders events as "event[key=value …]" for compact comparisons.
func names(evs []published, keys ...string) []string {
	out := make([]string, len(evs))
	for i, p := range evs {
		s := p.Event
		var parts []string
		for _, k := range keys {
			if v, ok := p.Fields[k]; ok {
				parts = append(parts, k+"="+toString(v))
			}
		}
		if len(parts) > 0 {
			s += "[" + strings.Join(parts, " ") + "]"
		}
		out[i] = s
	}
	return out
}

func toString(v any) string {
	b, _ := json.Marshal(v)
	return strings.Trim(string(b), `"`)
}

func wantKind(t tb, err error, kind error, contains string) {
	t.Helper()
	if !errors.Is(err, kind) {
		t.Fatalf("got error %v, want kind %v", err, kind.(*engine.Error).Kind)
	}
	if !strings.Contains(err.Error(), contains) {
		t.Fatalf("error %q does not say %q", err, contains)
	}
}

// queue creates a queue.
func (h *harness) queue(cfg engine.QueueConfig) {
	h.t.Helper()
	if _, err := h.eng.CreateQueue(h.ctx, acc, cfg); err != nil {
		h.t.Fatal(err)
	}
}

// agent creates a recipient serving queues and logs them in.
func (h *harness) agent(id string, queues ...string) {
	h.t.Helper()
	if _, err := h.eng.CreateRecipient(h.ctx, acc, engine.RecipientConfig{ID: id, Name: strings.ToUpper(id), Queues: queues}); err != nil {
		h.t.Fatal(err)
	}
	h.status(id, engine.ActionLogin, "")
}

func (h *harness) status(id string, a engine.Action, queue string) {
	h.t.Helper()
	if _, err := h.eng.SetStatus(h.ctx, acc, id, engine.StatusRequest{Action: a, QueueID: queue}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) arrive(queue, session string) {
	h.t.Helper()
	if _, err := h.eng.Arrive(h.ctx, acc, engine.Arrival{SessionID: session, QueueID: queue, CallerIDNumber: "+15550100"}); err != nil {
		h.t.Fatal(err)
	}
}

func (h *harness) recipient(id string) engine.Recipient {
	h.t.Helper()
	r, err := h.eng.Recipient(h.ctx, acc, id)
	if err != nil {
		h.t.Fatal(err)
	}
	return r
}

// wantNamed fails the test unless evs, shown by names with keys, are want.
func wantNamed(t tb, evs []published, keys []string, want ...string) {
	t.Helper()
	if got := names(evs, keys...); !slices.Equal(got, want) {
		t.Fatalf("events:\n  %s\nwant:\n  %s", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
}
