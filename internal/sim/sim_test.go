package sim_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/api"
	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/engine/enginetest"
	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/sim"
)

const acc = "5ca1ab1e5ca1ab1e5ca1ab1e5ca1ab1e"

var t0 = time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)

func openBus(t *testing.T) *bus.Bus {
	t.Helper()
	return natstest.Bus(t, bus.Config{Memory: true, Name: "sim-test"})
}

func newEngine(t *testing.T, b *bus.Bus, clock engine.Clock) *engine.Engine {
	t.Helper()
	return enginetest.Start(t, engine.Config{Publisher: b, Clock: clock})
}

// checkStream replays the account's stream through the invariant checker
// and returns it; the engine must be closed first.
func checkStream(t *testing.T, b *bus.Bus, account string) *enginetest.Checker {
	t.Helper()
	bounds, err := b.Bounds(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	// A long demo stores tens of thousands of events; read under -race on
	// a busy machine, each can take milliseconds.
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second+time.Duration(bounds.Last)*5*time.Millisecond)
	defer cancel()
	c := enginetest.NewChecker(account)
	err = b.Replay(ctx, []string{"qubicle.*." + account + ".>"}, 0, bounds.Last, func(m bus.Message) error {
		c.Apply(m.Subject, m.Data)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	c.Finish()
	for _, v := range c.Violations() {
		t.Error(v)
	}
	return c
}

// runDemo sets the demo up in the test account on a fresh engine in
// virtual time, runs it with cfg (its account and clock filled in), stops
// the engine and returns the checked stream.
func runDemo(t *testing.T, cfg sim.Config) *enginetest.Checker {
	t.Helper()
	b := openBus(t)
	clock := engine.NewVirtualClock(t0)
	e := newEngine(t, b, clock)
	ctx := t.Context()
	if err := sim.SetupDemo(ctx, e, acc); err != nil {
		t.Fatal(err)
	}
	cfg.AccountID, cfg.Clock = acc, clock
	if err := sim.Run(ctx, e, cfg); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	return checkStream(t, b, acc)
}

func missingEvents(c *enginetest.Checker) []string {
	var missing []string
	for _, spec := range event.Catalogue() {
		if c.Counts()[spec.Event()] == 0 {
			missing = append(missing, spec.Event())
		}
	}
	return missing
}

func TestEveryEventAppearsWithinTwoMinutesAtTheDefaultRate(t *testing.T) {
	for seed := uint64(1); seed <= 5; seed++ {
		t.Run("seed"+string(rune('0'+seed)), func(t *testing.T) {
			c := runDemo(t, sim.Config{Seed: seed, Duration: 2 * time.Minute})
			if missing := missingEvents(c); len(missing) > 0 {
				t.Errorf("after 2 simulated minutes these events never appeared: %v (counts %v)", missing, c.Counts())
			}
		})
	}
}

func TestSetupDemoCanRunTwice(t *testing.T) {
	b := openBus(t)
	e := newEngine(t, b, engine.NewVirtualClock(t0))
	ctx := t.Context()
	for range 2 {
		if err := sim.SetupDemo(ctx, e, acc); err != nil {
			t.Fatal(err)
		}
	}
	rs, err := e.Recipients(ctx, acc)
	if err != nil {
		t.Fatal(err)
	}
	if len(rs) != len(sim.DemoRecipients()) || rs[0].State != event.StateReady {
		t.Errorf("recipients after two setups: %+v", rs)
	}
}

// apiServer runs the REST API with the engine on loopback and returns its
// URL and an API key of the root account.
func apiServer(t *testing.T, b *bus.Bus, e *engine.Engine) (url, apiKey, account string) {
	t.Helper()
	ctx := t.Context()
	kv, err := b.JetStream().CreateOrUpdateKeyValue(ctx, auth.BucketConfig())
	if err != nil {
		t.Fatal(err)
	}
	as, err := auth.NewService(ctx, kv, auth.Options{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(as.Close)
	root, key, _, err := as.EnsureRoot(ctx, "sim test")
	if err != nil {
		t.Fatal(err)
	}
	srv, err := api.New(api.Config{Auth: as, Publisher: b, Engine: e})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	t.Cleanup(hs.Close)
	return hs.URL, key, root.ID
}

func TestRESTDriverRunsTheDemoThroughTheAPI(t *testing.T) {
	b := openBus(t)
	clock := engine.NewVirtualClock(t0)
	e := newEngine(t, b, clock)
	url, key, account := apiServer(t, b, e)
	ctx := t.Context()
	d, err := sim.NewRESTDriver(ctx, sim.RESTConfig{BaseURL: url, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if d.AccountID() != account {
		t.Fatalf("driver account %q, want %q", d.AccountID(), account)
	}
	if err := sim.SetupDemo(ctx, d, account); err != nil {
		t.Fatal(err)
	}
	if err := sim.Run(ctx, d, sim.Config{AccountID: account, Clock: clock, Seed: 7, Duration: 2 * time.Minute}); err != nil {
		t.Fatal(err)
	}
	if err := e.Close(ctx); err != nil {
		t.Fatal(err)
	}
	c := checkStream(t, b, account)
	if missing := missingEvents(c); len(missing) > 0 {
		t.Errorf("through the API, these events never appeared: %v", missing)
	}
}

func TestRESTDriverReportsRefusalsAsEngineErrors(t *testing.T) {
	b := openBus(t)
	e := newEngine(t, b, engine.NewVirtualClock(t0))
	url, key, account := apiServer(t, b, e)
	ctx := t.Context()
	d, err := sim.NewRESTDriver(ctx, sim.RESTConfig{BaseURL: url, APIKey: key})
	if err != nil {
		t.Fatal(err)
	}
	_, err = engine.CreateRecipient.Call(ctx, d, account, engine.RecipientConfig{ID: "r1"})
	if err != nil {
		t.Fatal(err)
	}
	_, err = engine.SetStatus.Call(ctx, d, account, engine.SetStatusRequest{RecipientID: "r1", StatusRequest: engine.StatusRequest{Action: engine.ActionReady}})
	if !errors.Is(err, engine.ErrConflict) || err.Error() != "recipient r1 is logged out; log in before going ready" {
		t.Errorf("ready while logged out: %v", err)
	}
	if _, err := engine.EndCall.Call(ctx, d, account, engine.EndCallRequest{SessionID: "nope"}); !errors.Is(err, engine.ErrNotFound) {
		t.Errorf("hang up an unknown call: %v", err)
	}
	if _, err := engine.CreateQueue.Call(ctx, d, account, engine.QueueConfig{Name: "x", Strategy: "random"}); !errors.Is(err, engine.ErrInvalid) {
		t.Errorf("bad strategy: %v", err)
	}
	if _, err := sim.NewRESTDriver(ctx, sim.RESTConfig{BaseURL: url, APIKey: "wrong"}); err == nil || !strings.Contains(err.Error(), "api key is not valid") {
		t.Errorf("login with a wrong key: %v", err)
	}
}

func TestRunGivesUpWhenTheAPIIsUnreachable(t *testing.T) {
	hs := httptest.NewServer(nil)
	url := hs.URL
	hs.Close() // nothing listens there any more
	d, err := sim.NewRESTDriver(t.Context(), sim.RESTConfig{BaseURL: url, Token: "t"})
	if err != nil {
		t.Fatal(err)
	}
	err = sim.Run(t.Context(), d, sim.Config{AccountID: acc, Clock: engine.NewVirtualClock(t0)})
	if err == nil || !strings.Contains(err.Error(), "in a row failed") {
		t.Fatalf("Run against a dead API returned %v", err)
	}
}

func TestRunRefusesABadConfiguration(t *testing.T) {
	b := openBus(t)
	e := newEngine(t, b, engine.NewVirtualClock(t0))
	for _, cfg := range []sim.Config{{AccountID: "nope"}, {AccountID: acc, Rate: -1}} {
		if err := sim.Run(t.Context(), e, cfg); err == nil {
			t.Errorf("Run(%+v) accepted it", cfg)
		}
	}
	if _, err := sim.NewRESTDriver(t.Context(), sim.RESTConfig{BaseURL: "localhost:8000", Token: "t"}); err == nil {
		t.Error("NewRESTDriver accepted a URL without scheme")
	}
}

func TestLongBusyDemoKeepsEveryInvariant(t *testing.T) {
	// Twice the default rate overloads six agents: callers wait, give up,
	// hit the maximum wait and find full queues.
	c := runDemo(t, sim.Config{Seed: 99, Rate: 2 * sim.DefaultRate, Duration: 30 * time.Minute})
	t.Logf("%d events: %v", c.Events(), c.Counts())
}
