package engine_test

import (
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/testkit"
)

func TestConfigurationAndLoggedInRecipientsSurviveARestart(t *testing.T) {
	dir := t.TempDir()
	ctx := t.Context()
	b := openBus(t, dir, false)
	h := newStoredHarness(t, b, engine.Config{})
	h.queue(engine.QueueConfig{ID: "sales", Name: "Sales", Strategy: event.StrategyRoundRobin, WrapupS: 15})
	h.queue(engine.QueueConfig{ID: "support", Name: "Support"})
	h.agent("alice", "sales", "support")
	h.agent("bob", "support")
	h.status("bob", engine.ActionAway, "")
	h.status("alice", engine.ActionPause, "support")
	_, err := h.eng.CreateRecipient(ctx, acc, engine.RecipientConfig{ID: "carol", Name: "Carol", Queues: []string{"sales"}})
	ok(t, err)
	_, err = h.eng.UpdateQueue(ctx, acc, "sales", engine.QueueConfig{Name: "Sales EMEA", Strategy: event.StrategyRoundRobin, WrapupS: 25})
	ok(t, err)
	h.agent("dan", "sales")
	ok(t, h.eng.DeleteRecipient(ctx, acc, "dan")) // logged in: logged out, then gone
	h.arrive("sales", "in-flight")
	ok(t, h.eng.Accept(ctx, acc, "in-flight", "alice"))
	ok(t, h.eng.Close(ctx))
	beforeRestart := h.last()
	b.Close()

	// Same data directory: a new process.
	h2 := newStoredHarness(t, openBus(t, dir, false), engine.Config{})
	if got := h2.eng.Accounts(); !slices.Equal(got, []string{acc}) {
		t.Fatalf("loaded accounts %v, want [%s]", got, acc)
	}
	qs := must[[]engine.Queue](t)(h2.eng.Queues(ctx, acc))
	if len(qs) != 2 || qs[0].ID != "sales" || qs[0].Name != "Sales EMEA" || qs[0].Strategy != event.StrategyRoundRobin || qs[0].WrapupS != 25 || !slices.Equal(qs[1].Members, []string{"alice", "bob"}) {
		t.Errorf("queues after restart: %+v", qs)
	}
	rs := must[[]engine.Recipient](t)(h2.eng.Recipients(ctx, acc))
	got := map[string]string{}
	for _, r := range rs {
		got[r.ID] = string(r.State) + " paused=" + strings.Join(r.PausedQueues, ",")
	}
	want := map[string]string{
		"alice": "ready paused=support", // was busy: the call ended with the old engine
		"bob":   "away paused=",
		"carol": "logged_out paused=",
	}
	if len(rs) != len(want) {
		t.Errorf("%d recipients after restart, want %d (dan was removed)", len(rs), len(want))
	}
	for id, w := range want {
		if got[id] != w {
			t.Errorf("%s after restart: %s, want %s", id, got[id], w)
		}
	}
	// The restart announces itself: queues start, logged-in recipients sync.
	after := names(h2.eventsAfter(acc, beforeRestart), "queue_id", "recipient_id", "state")
	wantEvents := []string{
		"queue.create[queue_id=sales]", "queue.create[queue_id=support]",
		"recipient.sync[recipient_id=alice state=ready]", "recipient.sync[recipient_id=bob state=away]",
	}
	if !slices.Equal(after, wantEvents) {
		t.Errorf("events on restart %v, want %v", after, wantEvents)
	}
	// The old engine ended what it ran before stopping.
	check(t, acc, h2.events(acc), false)
}

func TestUnloadEndsCallsAndStopsQueuesCleanly(t *testing.T) {
	h := newHarness(t, engine.Config{})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q", WrapupS: 30})
	h.agent("a", "q")
	h.agent("b", "q")
	h.arrive("q", "talking")
	ok(t, h.eng.Accept(h.ctx, acc, "talking", ""))
	h.arrive("q", "ringing")
	h.arrive("q", "waiting")
	ok(t, h.eng.UnloadAccount(h.ctx, acc))
	if got := h.eng.Accounts(); len(got) != 0 {
		t.Errorf("accounts after unload %v", got)
	}
	check(t, acc, h.events(acc), true)
	evs := h.events(acc)
	if last := evs[len(evs)-1]; last.Event != "queue.delete" || last.Fields["reason"] != "shutdown" || last.Fields["waiting"] != float64(2) {
		t.Errorf("last event %v", last.Fields)
	}
	// Used again, the account loads again (not manual mode).
	if _, err := h.eng.Queues(h.ctx, acc); err != nil {
		t.Fatal(err)
	}
}

func TestManualEngineServesOnlyLoadedAccounts(t *testing.T) {
	h := newHarness(t, engine.Config{Manual: true})
	_, err := h.eng.Queues(h.ctx, acc)
	wantKind(t, err, engine.ErrUnavailable, "not served by this engine node")
	ok(t, h.eng.LoadAccount(h.ctx, acc))
	h.queue(engine.QueueConfig{ID: "q", Name: "Q"})
	ok(t, h.eng.Close(h.ctx))
	_, err = h.eng.Queues(h.ctx, acc)
	wantKind(t, err, engine.ErrUnavailable, "shutting down")
}

func TestRealClockTimersFire(t *testing.T) {
	h := newHarness(t, engine.Config{Clock: engine.RealClock()})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q", OfferTimeoutS: 1})
	h.agent("a", "q")
	h.arrive("q", "c")
	testkit.Eventually(t, 10*time.Second, "the offer to time out on the real clock", func() bool {
		return slices.ContainsFunc(h.events(acc), func(p published) bool {
			return p.Event == "recipient.reject" && p.Fields["reason"] == "timeout"
		})
	})
}
