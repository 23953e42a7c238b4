package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/engine/enginetest"
	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/stats"
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

// statsEvents returns the account's stats events after seq, rendered as
// "stats.queue[queue_id=q waiting=1]" with the given figures.
func (h *harness) statsEvents(seq uint64, keys ...string) []string {
	h.t.Helper()
	var out []published
	for _, p := range h.eventsAfter(acc, seq) {
		if strings.HasPrefix(p.Event, "stats.") {
			out = append(out, p)
		}
	}
	return names(out, append([]string{"queue_id"}, keys...)...)
}

// checkStream holds every event of the account, stats included, against
// the checker, with the engine's interval.
func (h *harness) checkStream(interval time.Duration) *enginetest.Checker {
	h.t.Helper()
	c := enginetest.NewChecker(acc)
	c.CheckStatsInterval(interval)
	for _, p := range h.events(acc) {
		c.Apply(p.Subject, p.Data)
	}
	for _, v := range c.Violations() {
		h.t.Error(v)
	}
	return c
}

func TestStatisticsArePublishedWhenTheyChangeAtMostOncePerInterval(t *testing.T) {
	h := newHarness(t, engine.Config{StatsInterval: 5 * time.Second})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q"})
	h.agent("a", "q")
	h.status("a", engine.ActionAway, "")
	h.clock.Advance(10 * time.Second) // what setting up published is past its interval
	start := h.mark()
	h.arrive("q", "c1")
	// The first change since the last publish goes out at once...
	if got := h.statsEvents(start, "waiting"); !slices.Equal(got, []string{"stats.queue[queue_id=q waiting=1]", "stats.account[waiting=1]"}) {
		t.Fatalf("after the first call: %v", got)
	}
	// ... later ones wait for the interval, and go out together.
	mark := h.mark()
	h.clock.Advance(time.Second)
	h.arrive("q", "c2")
	h.clock.Advance(time.Second)
	h.arrive("q", "c3")
	if got := h.statsEvents(mark); len(got) != 0 {
		t.Fatalf("published within the interval: %v", got)
	}
	h.clock.Advance(3 * time.Second)
	if got := h.statsEvents(mark, "waiting"); !slices.Equal(got, []string{"stats.queue[queue_id=q waiting=3]", "stats.account[waiting=3]"}) {
		t.Fatalf("when the interval passed: %v", got)
	}
	// Nothing changed: nothing more until the next minute boundary moves
	// the longest wait.
	mark = h.mark()
	h.clock.Advance(40 * time.Second) // 09:00:55
	if got := h.statsEvents(mark); len(got) != 0 {
		t.Errorf("published without a change: %v", got)
	}
	h.clock.Advance(10 * time.Second) // 09:01:00 passes; c1 joined at 09:00:10
	if got := h.statsEvents(mark, "longest_wait_ms"); !slices.Equal(got, []string{"stats.queue[queue_id=q longest_wait_ms=50000]", "stats.account[longest_wait_ms=50000]"}) {
		t.Errorf("at the minute boundary: %v", got)
	}
	h.checkStream(5 * time.Second)
}

func TestWindowsSlideWithoutEvents(t *testing.T) {
	h := newHarness(t, engine.Config{StatsInterval: time.Second})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q"})
	h.agent("a", "q")
	h.arrive("q", "c1")
	ok(t, h.eng.Accept(h.ctx, acc, "c1", "a"))
	ok(t, h.eng.Hangup(h.ctx, acc, "c1", event.PartyCaller))
	h.status("a", engine.ActionLogout, "")
	// 09:00: one call answered. Nobody waits or works from now on, so only
	// the windows moving past it publish anything: at 09:15 the last 15
	// minutes lose it, at 10:00 the last hour.
	h.clock.Advance(time.Second)
	mark := h.mark()
	h.clock.Advance(2 * time.Hour)
	var got []string
	for _, p := range h.eventsAfter(acc, mark) {
		if strings.HasPrefix(p.Event, "stats.") {
			got = append(got, fmt.Sprintf("%s %s 15m=%v 1h=%v", names([]published{p}, "queue_id")[0], p.Fields["timestamp"],
				p.Fields["last_15m"].(map[string]any)["answered"], p.Fields["last_1h"].(map[string]any)["answered"]))
		}
	}
	want := []string{
		"stats.queue[queue_id=q] 2026-11-25T09:15:00.000Z 15m=0 1h=1",
		"stats.account 2026-11-25T09:15:00.000Z 15m=0 1h=1",
		"stats.queue[queue_id=q] 2026-11-25T10:00:00.000Z 15m=0 1h=0",
		"stats.account 2026-11-25T10:00:00.000Z 15m=0 1h=0",
	}
	if !slices.Equal(got, want) {
		t.Errorf("stats while nothing happens:\n%v\nwant\n%v", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	h.checkStream(time.Second)
}

// scenario makes some traffic with every outcome: answered in and out of
// the service level, a short and a long abandon, a time-out, a full queue.
func (h *harness) scenario() {
	h.t.Helper()
	ctx := h.ctx
	h.queue(engine.QueueConfig{ID: "q", Name: "Q", MaxWaitS: 120, MaxSize: 3, WrapupS: 10})
	h.queue(engine.QueueConfig{ID: "vip", Name: "VIP", ServiceLevelS: 10, ServiceLevelTargetPct: 90})
	h.agent("a", "q", "vip")
	h.agent("b", "q")
	h.arrive("q", "c1")
	h.clock.Advance(5 * time.Second)
	h.ok(h.eng.Accept(ctx, acc, "c1", "a")) // 5 s: in SL
	h.arrive("q", "c2")
	h.clock.Advance(30 * time.Second)
	h.ok(h.eng.Accept(ctx, acc, "c2", "b")) // 30 s: out of SL
	h.arrive("vip", "c3")
	h.clock.Advance(2 * time.Second)
	h.ok(h.eng.Hangup(ctx, acc, "c3", event.PartyCaller)) // short abandon
	h.arrive("q", "c4")
	h.clock.Advance(130 * time.Second) // c4 times out; c1, c2 go on
	h.ok(h.eng.Hangup(ctx, acc, "c1", event.PartyCaller))
	h.arrive("q", "c5")
	h.arrive("q", "c6")
	h.arrive("q", "c7")
	h.arrive("q", "c8") // full
	h.clock.Advance(20 * time.Second)
}

func TestStatisticsSurviveACleanRestart(t *testing.T) {
	b := openBus(t, t.TempDir(), true)
	cfg := engine.Config{StatsInterval: time.Second}
	h := newStoredHarness(t, b, cfg)
	h.scenario()
	before := must[engine.StatsReport](t)(h.eng.Stats(h.ctx, acc))
	if q := before.Queues[0]; q.Today.Answered != 2 || q.Today.TimedOut != 1 || q.Today.QueueFull != 1 || q.Waiting != 3 {
		t.Fatalf("before the restart: %+v", q.Figures)
	}
	ok(t, h.eng.Close(h.ctx))

	cfg.Clock = engine.NewVirtualClock(h.clock.Now())
	h2 := newStoredHarness(t, b, cfg)
	after := must[engine.StatsReport](t)(h2.eng.Stats(h.ctx, acc))
	c := h2.checkStream(time.Second)
	compareStats(t, c, after.Sequence, after.TimestampMS, after.AccountStats)
	// The restart itself ended the waiting callers and the call in
	// progress; everything counted before it is still there.
	for i, q := range after.Queues {
		was := before.Queues[i].Today
		now := q.Today
		if now.Offered != was.Offered || now.Answered != was.Answered || now.AnsweredInSL != was.AnsweredInSL ||
			now.Abandoned != was.Abandoned || now.TimedOut != was.TimedOut || now.QueueFull != was.QueueFull || now.StaffedMS != was.StaffedMS {
			t.Errorf("queue %s today before the restart %+v, after %+v", q.QueueID, was, now)
		}
		if !slices.EqualFunc(q.Trend, before.Queues[i].Trend, func(a, b stats.TrendPoint) bool { return asJSON(a) == asJSON(b) }) && q.QueueID == "vip" {
			t.Errorf("queue %s trend before %v, after %v", q.QueueID, asJSON(before.Queues[i].Trend), asJSON(q.Trend))
		}
	}
	if q := after.Queues[0]; q.Waiting != 0 || q.Today.Handled != 2 {
		t.Errorf("after the restart: waiting %d, handled %d (the shutdown hung up c2)", q.Waiting, q.Today.Handled)
	}
}

func TestStatisticsSurviveATakeover(t *testing.T) {
	b := openBus(t, t.TempDir(), true)
	start := func(now time.Time) (*harness, context.CancelFunc) {
		return startOwner(t, b, engine.Config{StatsInterval: time.Second}, now)
	}
	h, lose := start(t0)
	h.scenario()
	h.clock.Advance(time.Second) // the last changes are published
	published := enginetest.NewChecker(acc)
	for _, p := range h.events(acc) {
		published.Apply(p.Subject, p.Data)
	}
	lose()
	h.eng.Drop(acc)

	h2, _ := start(h.clock.Now().Add(5 * time.Second))
	after := must[engine.StatsReport](t)(h2.eng.Stats(h.ctx, acc))
	// The checker's other promises do not hold across a crash (calls the
	// dead owner had answered get no closing events): only its statistics
	// are used here.
	c := enginetest.NewChecker(acc)
	for _, p := range h2.events(acc) {
		c.Apply(p.Subject, p.Data)
	}
	// Counted figures are exactly what the events say. Recipient time is
	// what the dead owner had stored: it stops at its last publish, where
	// the events would count it up to the takeover.
	account, queues := c.StatsAt(after.TimestampMS)
	if g, w := discrete(after.Account), discrete(account); g != w {
		t.Errorf("account after the takeover\n got %s\nwant %s", g, w)
	}
	for _, q := range after.Queues {
		if g, w := discrete(q.Figures), discrete(queues[q.QueueID].Figures); g != w {
			t.Errorf("queue %s after the takeover\n got %s\nwant %s", q.QueueID, g, w)
		}
		var last event.StatsQueue
		ok(t, json.Unmarshal(published.LastStats()[q.QueueID], &last))
		if got, was := q.Today.StaffedMS, last.Today.StaffedMS; got != was {
			t.Errorf("queue %s staffed %d ms after the takeover, %d in its last stats event before it", q.QueueID, got, was)
		}
	}
	if q := after.Queues[0].Today; q.Answered != 2 || q.TimedOut != 1 || q.QueueFull != 1 || q.Offered != 7 {
		t.Errorf("today after the takeover %+v", q)
	}
}

func (h *harness) ok(err error) {
	h.t.Helper()
	if err != nil {
		h.t.Fatal(err)
	}
}

// mark waits until everything the account produced is on the bus and
// returns the stream's end.
func (h *harness) mark() uint64 {
	h.t.Helper()
	h.ok(h.eng.Flush(h.ctx, acc))
	return h.last()
}

// BenchmarkQueueCallWithStatistics is BenchmarkQueueCallThroughTheBus with
// the key-value bucket, one second of virtual time per call and statistics
// on or off: with them, every call also publishes a stats.queue and a
// stats.account and writes both histories behind them.
func BenchmarkQueueCallWithStatistics(b *testing.B) {
	for _, tc := range []struct {
		name     string
		interval time.Duration
	}{{"off", -1}, {"on", time.Second}} {
		b.Run(tc.name, func(b *testing.B) {
			h := newStoredHarness(b, openBus(b, b.TempDir(), true), engine.Config{StatsInterval: tc.interval})
			h.queue(engine.QueueConfig{ID: "q", Name: "Q"})
			h.agent("a", "q")
			start := h.last()
			b.ReportAllocs()
			for i := 0; b.Loop(); i++ {
				id := "c" + strconv.Itoa(i)
				h.clock.Advance(time.Second)
				h.arrive("q", id)
				h.ok(h.eng.Accept(h.ctx, acc, id, "a"))
				h.ok(h.eng.Hangup(h.ctx, acc, id, ""))
				h.ok(h.eng.Finalize(h.ctx, acc, id, engine.Finalization{}))
			}
			h.ok(h.eng.Flush(h.ctx, acc))
			b.ReportMetric(float64(h.last()-start)/float64(b.N), "events/call")
			b.ReportMetric(b.Elapsed().Seconds()*1e3/float64(b.N), "ms/call")
		})
	}
}
