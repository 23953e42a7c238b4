package engine_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/engine/enginetest"
	"github.com/ccevents/ccevents/internal/event"
)

// chaos drives an engine with random, often impossible, requests at random
// virtual times, the way a careless telephony adapter and impatient agents
// would. It records snapshots along the way.
type chaos struct {
	h         *harness
	account   string
	pick      func(n int) int // uniform in [0, n)
	queues    []string
	agents    []string
	sessions  []string
	n         int
	snapshots []engine.Snapshot
	// statsInterval is the engine's Config.StatsInterval: statistics
	// events are on in every chaos run, and checked against the events.
	statsInterval time.Duration
}

var strategies = []event.Strategy{event.StrategyMostIdle, event.StrategyRoundRobin, event.StrategyFewestCalls, event.StrategyRingAll}

// thresholds gives each queue its own service level and short-abandon
// threshold, kept through every create and update (the statistics checker
// reads them from the stats events, so they must not change).
func thresholds(cfg engine.QueueConfig) engine.QueueConfig {
	sl := map[string][3]int{"q0": {0, 0, 0}, "q1": {10, 90, 0}, "q2": {30, 70, 10}, "q3": {15, 85, 3}}[cfg.ID]
	cfg.ServiceLevelS, cfg.ServiceLevelTargetPct = sl[0], sl[1]
	if cfg.ID != "q0" { // q0 keeps the defaults
		cfg.ShortAbandonS = &sl[2]
	}
	return cfg
}

func (c *chaos) setup() {
	t, ctx, e := c.h.t, c.h.ctx, c.h.eng
	for i, s := range strategies {
		id := fmt.Sprintf("q%d", i)
		_, err := e.CreateQueue(ctx, c.account, thresholds(engine.QueueConfig{
			ID: id, Name: string(s), Strategy: s, OfferTimeoutS: 5 + c.pick(20), WrapupS: c.pick(3) * 10,
			MaxWaitS: c.pick(2) * 120, MaxSize: c.pick(2) * 6, FinalizeTimeoutS: 10 + c.pick(60),
		}))
		if err != nil {
			t.Fatal(err)
		}
		c.queues = append(c.queues, id)
	}
	for i := range 6 {
		id := fmt.Sprintf("r%d", i)
		qs := []string{c.queues[i%4], c.queues[(i+1+c.pick(3))%4]}
		if _, err := e.CreateRecipient(ctx, c.account, engine.RecipientConfig{ID: id, Queues: qs}); err != nil {
			t.Fatal(err)
		}
		c.agents = append(c.agents, id)
	}
}

func (c *chaos) any(list []string) string {
	if len(list) == 0 {
		return "none"
	}
	return list[c.pick(len(list))]
}

// recent picks one of the last sessions, which are the likely live ones.
func (c *chaos) recent() string {
	return c.any(c.sessions[max(0, len(c.sessions)-12):])
}

// step performs one random request and fails the test on an error the
// request could not have earned.
func (c *chaos) step() {
	t, ctx, e, acc := c.h.t, c.h.ctx, c.h.eng, c.account
	var err error
	allowInvalid := false
	switch w := c.pick(1000); {
	case w < 140:
		c.n++
		id := fmt.Sprintf("s%d", c.n)
		c.sessions = append(c.sessions, id)
		_, err = e.Arrive(ctx, acc, engine.Arrival{SessionID: id, QueueID: c.any(c.queues), CallerIDNumber: "+1555" + id})
	case w < 340:
		var offered [][2]string
		rs, lerr := e.Recipients(ctx, acc)
		if lerr != nil {
			t.Fatal(lerr)
		}
		for _, r := range rs {
			if r.Offer != nil {
				offered = append(offered, [2]string{r.Offer.SessionID, r.ID})
			}
		}
		if len(offered) == 0 {
			return
		}
		o := offered[c.pick(len(offered))]
		if w < 290 {
			err = e.Accept(ctx, acc, o[0], o[1])
		} else {
			err = e.Reject(ctx, acc, o[0], o[1], event.RejectReasons()[c.pick(4)])
		}
	case w < 440:
		id := c.recent()
		if c.pick(2) == 0 { // or a call some recipient is on
			rs, lerr := e.Recipients(ctx, acc)
			if lerr != nil {
				t.Fatal(lerr)
			}
			var on []string
			for _, r := range rs {
				if r.ActiveSession != nil {
					on = append(on, r.ActiveSession.SessionID)
				}
			}
			id = c.any(on)
		}
		err = e.Hangup(ctx, acc, id, event.Parties()[c.pick(3)])
	case w < 490:
		err = e.Finalize(ctx, acc, c.recent(), engine.Finalization{Disposition: "done"})
	case w < 640:
		c.h.clock.Advance(time.Duration(c.pick(20000)) * time.Millisecond)
	case w < 800:
		actions := []engine.Action{
			engine.ActionLogin, engine.ActionLogin, engine.ActionLogin, engine.ActionLogout,
			engine.ActionReady, engine.ActionReady, engine.ActionReady, engine.ActionAway, engine.ActionAway,
			engine.ActionPause, engine.ActionPause, engine.ActionResume, engine.ActionResume,
		}
		id, q := c.any(c.agents), c.any(c.queues)
		if c.pick(2) == 0 { // mostly a queue the recipient serves, so pauses happen
			r, rerr := e.Recipient(ctx, acc, id)
			if rerr != nil && !errors.Is(rerr, engine.ErrNotFound) {
				t.Fatal(rerr)
			}
			q = c.any(append(r.Queues, r.PausedQueues...))
		}
		_, err = e.SetStatus(ctx, acc, id, engine.StatusRequest{Action: actions[c.pick(len(actions))], QueueID: q})
	case w < 830:
		c.n++
		_, err = e.StartExternalCall(ctx, acc, c.any(c.agents), engine.ExternalCall{SessionID: fmt.Sprintf("x%d", c.n), Number: "+15550000"})
	case w < 860:
		err = e.EndExternalCall(ctx, acc, c.any(c.agents), "")
	case w < 890:
		err = e.StartWiretap(ctx, acc, engine.Wiretap{RecipientID: c.any(c.agents), SupervisorID: c.any([]string{"sup1", "sup2"})})
	case w < 910:
		err = e.StopWiretap(ctx, acc, engine.Wiretap{RecipientID: c.any(c.agents), SupervisorID: c.any([]string{"sup1", "sup2"})})
	case w < 920:
		err = e.Sync(ctx, acc, c.any(c.agents))
	case w < 960:
		allowInvalid = true // a queue may have been deleted meanwhile
		_, err = e.UpdateRecipient(ctx, acc, c.any(c.agents), engine.RecipientConfig{Queues: []string{c.any(c.queues), c.any(c.queues)}})
	case w < 963:
		err = e.DeleteQueue(ctx, acc, c.any(c.queues))
	case w < 975:
		s := strategies[c.pick(4)]
		_, err = e.CreateQueue(ctx, acc, thresholds(engine.QueueConfig{ID: c.any(c.queues), Name: string(s), Strategy: s, WrapupS: c.pick(2) * 15}))
	case w < 980:
		s := strategies[c.pick(4)]
		id := c.any(c.queues)
		_, err = e.UpdateQueue(ctx, acc, id, thresholds(engine.QueueConfig{ID: id, Name: "updated", Strategy: s, OfferTimeoutS: 1 + c.pick(30), WrapupS: c.pick(20), MaxWaitS: c.pick(200)}))
	case w < 984:
		err = e.DeleteRecipient(ctx, acc, c.any(c.agents))
	case w < 988:
		allowInvalid = true // a queue may have been deleted meanwhile
		_, err = e.CreateRecipient(ctx, acc, engine.RecipientConfig{ID: c.any(c.agents), Queues: []string{c.any(c.queues)}})
	default:
		snap, serr := e.Snapshot(ctx, acc)
		if serr != nil {
			t.Fatal(serr)
		}
		c.snapshots = append(c.snapshots, snap)
	}
	if err != nil && !errors.Is(err, engine.ErrConflict) && !errors.Is(err, engine.ErrNotFound) && !(allowInvalid && errors.Is(err, engine.ErrInvalid)) {
		t.Fatalf("step %d: unexpected %v", c.n, err)
	}
}

// finish stops the engine and checks the whole stream, and that every
// snapshot equals what the events up to its sequence say. Before stopping
// it lets the statistics interval pass, so everything that changed is
// published, and checks the engine's report and the last statistics
// events against the events.
func (c *chaos) finish() *enginetest.Checker {
	t := c.h.t
	t.Helper()
	c.h.clock.Advance(2 * c.statsInterval)
	report, err := c.h.eng.Stats(c.h.ctx, c.account)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.h.eng.Close(c.h.ctx); err != nil {
		t.Fatal(err)
	}
	evs := c.h.events(c.account)
	// One pass: at each snapshot's sequence (they are in sequence order),
	// and at the report's, the checker holds what the events up to there
	// say.
	checker := enginetest.NewChecker(c.account)
	checker.CheckStatsInterval(c.statsInterval)
	compared := 0
	at := func(seq uint64) {
		for _, snap := range c.snapshots {
			if snap.Sequence == seq {
				compareSnapshot(t, checker, snap)
				compareStats(t, checker, snap.Sequence, snap.TimestampMS, snap.Stats)
				compared++
			}
		}
		if seq == report.Sequence {
			compareStats(t, checker, report.Sequence, report.TimestampMS, report.AccountStats)
			checkStatsPublished(t, checker, report.TimestampMS)
			compared++
		}
	}
	for _, p := range evs {
		checker.Apply(p.Subject, p.Data)
		at(p.Seq)
	}
	if compared != len(c.snapshots)+1 {
		t.Errorf("compared %d of %d snapshots and the report: a position is not one of the account's events", compared, len(c.snapshots)+1)
	}
	checker.Finish()
	for _, v := range checker.Violations() {
		t.Error(v)
	}
	return checker
}

func compareSnapshot(t tb, c *enginetest.Checker, snap engine.Snapshot) {
	t.Helper()
	var running []string
	for _, q := range snap.Queues {
		running = append(running, q.ID)
		var waiting []string
		for _, cl := range q.Callers {
			waiting = append(waiting, cl.SessionID)
		}
		if got := c.Waiting(q.ID); fmt.Sprint(got) != fmt.Sprint(waiting) {
			t.Errorf("snapshot at %d: queue %s waiting %v, events say %v", snap.Sequence, q.ID, waiting, got)
		}
		if day := snap.Timestamp[:len(time.DateOnly)]; q.Day != day {
			t.Errorf("snapshot at %d taken %s: queue %s counts day %s", snap.Sequence, snap.Timestamp, q.ID, q.Day)
		}
		if d, a := c.Today(q.ID, q.Day); d != q.DeliveredToday || a != q.AbandonedToday {
			t.Errorf("snapshot at %d: queue %s delivered/abandoned %d/%d on %s, events say %d/%d", snap.Sequence, q.ID, q.DeliveredToday, q.AbandonedToday, q.Day, d, a)
		}
	}
	if fmt.Sprint(running) != fmt.Sprint(c.Running()) {
		t.Errorf("snapshot at %d: queues %v, events say %v", snap.Sequence, running, c.Running())
	}
	for _, r := range snap.Recipients {
		v := c.Recipient(r.ID)
		want := enginetest.RecipientView{State: r.State, Paused: r.PausedQueues}
		if r.Offer != nil {
			want.Offer = r.Offer.SessionID
		}
		if r.ActiveSession != nil {
			want.Active = r.ActiveSession.SessionID
		}
		if fmt.Sprint(v) != fmt.Sprint(want) {
			t.Errorf("snapshot at %d: recipient %s is %+v, events say %+v", snap.Sequence, r.ID, want, v)
		}
	}
}

func TestLongRandomRunsKeepEveryInvariant(t *testing.T) {
	b := openBus(t, t.TempDir(), true)
	for seed := range uint64(3) {
		t.Run(fmt.Sprint("seed", seed), func(t *testing.T) {
			t.Parallel()
			// Runs last about 1.5 h of virtual time: starting 40 min
			// before midnight UTC, they see the day's totals start again.
			start := time.Date(2026, 11, 25, 23, 20, 0, 0, time.UTC)
			h := newHarnessOn(t, b, engine.Config{SyncInterval: 2 * time.Minute, StatsInterval: time.Second, Clock: engine.NewVirtualClock(start)})
			rng := rand.New(rand.NewPCG(seed, 42))
			c := &chaos{h: h, account: fmt.Sprintf("%032x", seed+1), pick: rng.IntN, statsInterval: time.Second}
			c.setup()
			for range 3500 {
				c.step()
			}
			checker := c.finish()
			counts := checker.Counts()
			// A run this long exercises every event; if not, the driver is broken.
			for _, spec := range event.Catalogue() {
				if counts[spec.Event()] == 0 {
					t.Errorf("%s never happened in %d events", spec.Event(), checker.Events())
				}
			}
			t.Logf("%v", counts)
			t.Logf("%d events, %d snapshots, %v simulated", checker.Events(), len(c.snapshots), h.clock.Now().Sub(start))
		})
	}
}

func TestRapidRequestSequencesKeepEveryInvariant(t *testing.T) {
	b := openBus(t, t.TempDir(), true)
	n := 0
	rapid.Check(t, func(rt *rapid.T) {
		n++
		interval := time.Duration(rapid.IntRange(1, 5000).Draw(rt, "stats interval ms")) * time.Millisecond
		h := newHarnessOn(t, b, engine.Config{SyncInterval: 20 * time.Second, StatsInterval: interval})
		h.t = rt
		c := &chaos{h: h, account: fmt.Sprintf("%032x", 1000+n), pick: func(k int) int { return rapid.IntRange(0, k-1).Draw(rt, "pick") }, statsInterval: interval}
		c.setup()
		steps := rapid.IntRange(1, 100).Draw(rt, "steps")
		for range steps {
			c.step()
		}
		c.finish()
	})
}

func TestSnapshotPlusLaterEventsIsExact(t *testing.T) {
	h := newHarness(t, engine.Config{})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q"})
	h.agent("a", "q")
	h.arrive("q", "c1")
	h.arrive("q", "c2")
	h.status("a", engine.ActionPause, "q")
	snap := must[engine.Snapshot](t)(h.eng.Snapshot(h.ctx, acc))
	if snap.Sequence != h.last() {
		t.Errorf("snapshot sequence %d, stream ends at %d", snap.Sequence, h.last())
	}
	if snap.Epoch != h.bus.Epoch() || len(snap.Queues) != 1 || len(snap.Queues[0].Callers) != 2 || snap.Queues[0].LongestWaitMS != 0 {
		t.Errorf("snapshot %+v", snap)
	}
	if r := snap.Recipients[0]; r.State != event.StateReady || !slices.Equal(r.PausedQueues, []string{"q"}) {
		t.Errorf("recipient in snapshot %+v", r)
	}
	// An account that has published nothing still gets a usable sequence.
	other := "ffffffffffffffffffffffffffffffff"
	empty := must[engine.Snapshot](t)(h.eng.Snapshot(h.ctx, other))
	if empty.Sequence != h.last() || len(empty.Queues) != 0 {
		t.Errorf("empty account snapshot %+v, stream ends at %d", empty, h.last())
	}
}
