package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
)

// totals reports a queue's day totals as "day delivered/abandoned", and
// checks that a snapshot taken now says the same as the events up to its
// sequence.
func (h *harness) totals(queueID string) string {
	h.t.Helper()
	snap, err := h.eng.Snapshot(h.ctx, acc)
	if err != nil {
		h.t.Fatal(err)
	}
	evs := h.events(acc)
	c := check(h.t, acc, evs, false)
	compareSnapshot(h.t, c, snap)
	for _, q := range snap.Queues {
		if q.ID == queueID {
			return q.Day + " " + toString(q.DeliveredToday) + "/" + toString(q.AbandonedToday)
		}
	}
	h.t.Fatalf("queue %s is not in the snapshot", queueID)
	return ""
}

func TestQueueTotalsCountDeliveredCallsAndAbandonedCallersOnly(t *testing.T) {
	h := newHarness(t, engine.Config{})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q", MaxWaitS: 60, MaxSize: 2})
	h.queue(engine.QueueConfig{ID: "other", Name: "Other"})
	h.agent("a", "q")
	ctx := h.ctx
	steps := []struct {
		name string
		do   func()
		want string
	}{
		{"a new queue has counted nothing", func() {}, "2026-11-25 0/0"},
		{"an answered call counts as delivered", func() {
			h.arrive("q", "c1")
			ok(t, h.eng.Accept(ctx, acc, "c1", "a"))
		}, "2026-11-25 1/0"},
		{"the answered call ending counts nothing more", func() {
			ok(t, h.eng.Hangup(ctx, acc, "c1", event.PartyCaller))
		}, "2026-11-25 1/0"},
		{"a caller hanging up while it rings abandons", func() {
			h.arrive("q", "c2")
			ok(t, h.eng.Hangup(ctx, acc, "c2", event.PartyCaller))
		}, "2026-11-25 1/1"},
		{"a caller hanging up while waiting abandons", func() {
			h.status("a", engine.ActionAway, "")
			h.arrive("q", "c3")
			ok(t, h.eng.Hangup(ctx, acc, "c3", event.PartyCaller))
		}, "2026-11-25 1/2"},
		{"a caller waiting too long times out, not abandons", func() {
			h.arrive("q", "c4")
			h.clock.Advance(61 * time.Second)
		}, "2026-11-25 1/2"},
		{"a caller turned away from a full queue does not abandon", func() {
			h.arrive("q", "c5")
			h.arrive("q", "c6")
			h.arrive("q", "c7")
		}, "2026-11-25 1/2"},
		{"a rejected offer counts nothing, its answer counts once", func() {
			h.status("a", engine.ActionReady, "")
			ok(t, h.eng.Reject(ctx, acc, "c5", "a", event.RejectDeclined))
			h.clock.Advance(engine.MinOfferInterval) // a rejected at once: held back that long
			ok(t, h.eng.Hangup(ctx, acc, "c5", event.PartyCaller))
			ok(t, h.eng.Accept(ctx, acc, "c6", "a"))
		}, "2026-11-25 2/3"},
	}
	for _, s := range steps {
		s.do()
		if got := h.totals("q"); got != s.want {
			t.Errorf("%s: totals %s, want %s", s.name, got, s.want)
		}
	}
	if got := h.totals("other"); got != "2026-11-25 0/0" {
		t.Errorf("a queue without calls counts %s", got)
	}
	// GET /queues/{id} says the same as the snapshot.
	q := must[engine.Queue](t)(h.eng.Queue(ctx, acc, "q"))
	if q.Day != "2026-11-25" || q.DeliveredToday != 2 || q.AbandonedToday != 3 {
		t.Errorf("queue view %s %d/%d", q.Day, q.DeliveredToday, q.AbandonedToday)
	}
}

func TestQueueTotalsSurviveRestartAndTakeoverAndStartAgainAtUTCMidnight(t *testing.T) {
	ctx := t.Context()
	b := openBus(t, t.TempDir(), true)
	start := func(now time.Time) (*harness, context.CancelFunc) { return startOwner(t, b, engine.Config{}, now) }
	evening := time.Date(2026, 11, 25, 23, 50, 0, 0, time.UTC)
	h, _ := start(evening)
	h.queue(engine.QueueConfig{ID: "q", Name: "Q"})
	h.agent("a", "q")
	h.arrive("q", "c1")
	ok(t, h.eng.Accept(ctx, acc, "c1", "a"))
	h.arrive("q", "c2") // rings nobody: a is on c1
	ok(t, h.eng.Hangup(ctx, acc, "c2", event.PartyCaller))
	if got := h.totals("q"); got != "2026-11-25 1/1" {
		t.Fatalf("before the restart: %s", got)
	}

	// A clean restart: the engine stops, another loads the account.
	ok(t, h.eng.Close(ctx))
	h, lose := start(evening.Add(time.Minute))
	if got := h.totals("q"); got != "2026-11-25 1/1" {
		t.Errorf("after a restart: %s, want 2026-11-25 1/1", got)
	}
	h.arrive("q", "c3")
	ok(t, h.eng.Hangup(ctx, acc, "c3", event.PartyCaller))

	// A takeover: the owner loses the account without stopping.
	lose()
	h.eng.Drop(acc)
	h, _ = start(evening.Add(2 * time.Minute))
	if got := h.totals("q"); got != "2026-11-25 1/2" {
		t.Errorf("after a takeover: %s, want 2026-11-25 1/2", got)
	}

	// Midnight UTC: the totals start again without any event.
	h.clock.Advance(10 * time.Minute)
	if got := h.totals("q"); got != "2026-11-26 0/0" {
		t.Errorf("after midnight: %s, want 2026-11-26 0/0", got)
	}
	h.arrive("q", "c4")
	ok(t, h.eng.Accept(ctx, acc, "c4", "a"))
	if got := h.totals("q"); got != "2026-11-26 1/0" {
		t.Errorf("first call after midnight: %s, want 2026-11-26 1/0", got)
	}

	// Restarted on a later day, the stored totals are yesterday's.
	ok(t, h.eng.Close(ctx))
	h, _ = start(time.Date(2026, 11, 27, 8, 0, 0, 0, time.UTC))
	if got := h.totals("q"); got != "2026-11-27 0/0" {
		t.Errorf("restarted the next day: %s, want 2026-11-27 0/0", got)
	}
}
