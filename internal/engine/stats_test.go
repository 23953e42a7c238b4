package engine_test

import (
	"encoding/json"
	"slices"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/engine/enginetest"
	"github.com/ccevents/ccevents/internal/event"
)

// compareStats holds statistics the engine reported at t (a snapshot's,
// or Stats) against what the events up to seq, applied to c, say.
func compareStats(t tb, c *enginetest.Checker, seq uint64, at int64, got engine.AccountStats) {
	t.Helper()
	account, queues := c.StatsAt(at)
	if g, w := asJSON(got.Account), asJSON(account); g != w {
		t.Errorf("statistics at %d: account\n got %s\nwant %s", seq, g, w)
	}
	var ids []string
	for _, q := range got.Queues {
		ids = append(ids, q.QueueID)
		want, ok := queues[q.QueueID]
		if !ok {
			t.Errorf("statistics at %d: queue %s, which the events do not have", seq, q.QueueID)
			continue
		}
		want.QueueName, want.ServiceLevelTargetPct = q.QueueName, q.ServiceLevelTargetPct
		if g, w := asJSON(q.QueueFigures), asJSON(want); g != w {
			t.Errorf("statistics at %d: queue %s\n got %s\nwant %s", seq, q.QueueID, g, w)
		}
	}
	if !slices.IsSorted(ids) || len(ids) != len(queues) {
		t.Errorf("statistics at %d: queues %v, events have %d", seq, ids, len(queues))
	}
}

// checkStatsPublished checks, once the interval has passed after the last
// change, that the last stats event of every queue and of the account
// still holds at t: whatever changed was published. Only what time alone
// moves between events may differ (the longest wait, recipient time and
// the windows' start).
func checkStatsPublished(t tb, c *enginetest.Checker, at int64) {
	t.Helper()
	account, queues := c.StatsAt(at)
	last := c.LastStats()
	check := func(key string, want event.Figures) {
		raw, ok := last[key]
		if !ok {
			t.Errorf("no stats event for %q", key)
			return
		}
		var got event.Figures
		if err := json.Unmarshal(raw, &got); err != nil {
			t.Fatal(err)
		}
		if g, w := discrete(got), discrete(want); g != w {
			t.Errorf("the last stats event of %q is out of date:\n got %s\nwant %s", key, g, w)
		}
	}
	check("", account)
	for id, q := range queues {
		check(id, q.Figures)
	}
}

// discrete renders the figures only events change.
func discrete(f event.Figures) string {
	f.LongestWaitMS = 0
	for _, w := range []*event.StatsWindow{&f.Last15m, &f.Last1h, &f.Today} {
		w.From, w.OccupiedMS, w.StaffedMS, w.OccupancyPct = "", 0, 0, nil
	}
	return asJSON(f)
}

func asJSON(v any) string {
	b, _ := json.Marshal(v)
	return string(b)
}
