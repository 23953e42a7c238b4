package engine_test

import (
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
)

func TestCallFlowPublishesEveryStepInCausalOrder(t *testing.T) {
	h := newHarness(t, engine.Config{})
	h.queue(engine.QueueConfig{ID: "sales", Name: "Sales", WrapupS: 10, FinalizeTimeoutS: 30})
	h.agent("alice", "sales")
	start := h.last()

	h.arrive("sales", "call1")
	h.clock.Advance(3 * time.Second)
	ok(t, h.eng.Accept(h.ctx, acc, "call1", "alice"))
	h.clock.Advance(60 * time.Second)
	ok(t, h.eng.Hangup(h.ctx, acc, "call1", event.PartyCaller))
	ok(t, h.eng.Finalize(h.ctx, acc, "call1", engine.Finalization{Disposition: "sold", Notes: "two seats"}))
	h.clock.Advance(10 * time.Second)

	evs := h.eventsAfter(acc, start)
	wantNamed(t, evs, []string{"state", "previous_state", "reason", "position"},
		"session.create",
		"queue.join[position=1]",
		"recipient.offer[state=offered previous_state=ready]",
		"queue.delivered[position=1]",
		"recipient.delivered[state=busy previous_state=offered]",
		"queue.leave[reason=delivered position=1]",
		"recipient.hangup[state=wrapup previous_state=busy]",
		"recipient.wrapup_start[state=wrapup previous_state=wrapup]",
		"recipient.interaction_finalize_start",
		"recipient.interaction_finalize_end",
		"recipient.wrapup_complete[state=ready previous_state=wrapup]",
		"session.delete",
	)
	del := evs[len(evs)-1].Fields
	if del["disconnect_cause"] != "NORMAL_CLEARING" || del["hangup_by"] != "caller" || del["duration_ms"] != float64(63000) {
		t.Errorf("session.delete = %v", del)
	}
	fin := evs[9].Fields
	if fin["disposition"] != "sold" || fin["timed_out"] != false {
		t.Errorf("finalize_end = %v", fin)
	}
	if d := evs[4].Fields["wait_duration_ms"]; d != float64(3000) {
		t.Errorf("delivered wait_duration_ms = %v, want 3000", d)
	}
	check(t, acc, h.events(acc), false)
}

func TestFinalizeWindowTimesOutAndEndsSession(t *testing.T) {
	h := newHarness(t, engine.Config{})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q", FinalizeTimeoutS: 20})
	h.agent("a", "q")
	h.arrive("q", "c")
	ok(t, h.eng.Accept(h.ctx, acc, "c", ""))
	ok(t, h.eng.Hangup(h.ctx, acc, "c", event.PartyRecipient))
	start := h.last()
	h.clock.Advance(20 * time.Second)
	wantNamed(t, h.eventsAfter(acc, start), []string{"timed_out", "hangup_by"}, "recipient.interaction_finalize_end[timed_out=true]", "session.delete[hangup_by=recipient]")
	if r := h.recipient("a"); r.State != event.StateReady {
		t.Errorf("without wrap-up the recipient is %s after hangup, want ready", r.State)
	}
}

func TestCallerHangingUpWhileRingingIsRescindedAndAbandoned(t *testing.T) {
	h := newHarness(t, engine.Config{})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q"})
	h.agent("a", "q")
	h.arrive("q", "c1")
	start := h.last()
	ok(t, h.eng.Hangup(h.ctx, acc, "c1", ""))
	wantNamed(t, h.eventsAfter(acc, start), []string{"reason", "state", "disconnect_cause"},
		"recipient.rescind[reason=abandoned state=ready]",
		"queue.leave[reason=abandoned]",
		"session.delete[disconnect_cause=ORIGINATOR_CANCEL]",
	)
}

func TestOfferTimeoutRejectsAndOffersTheNextRecipient(t *testing.T) {
	h := newHarness(t, engine.Config{})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q", OfferTimeoutS: 15})
	h.agent("a", "q")
	h.clock.Advance(time.Second) // a is idle longer than b
	h.agent("b", "q")
	h.arrive("q", "c")
	start := h.last()
	h.clock.Advance(15 * time.Second)
	wantNamed(t, h.eventsAfter(acc, start), []string{"recipient_id", "reason"}, "recipient.reject[recipient_id=a reason=timeout]", "recipient.offer[recipient_id=b]")
	// b declines too: everyone has turned the caller down, so it starts over with a.
	ok(t, h.eng.Reject(h.ctx, acc, "c", "b", ""))
	wantNamed(t, h.eventsAfter(acc, start)[2:], []string{"recipient_id", "reason"}, "recipient.reject[recipient_id=b reason=declined]", "recipient.offer[recipient_id=a]")
}

func TestMaxWaitEndsTheCallWithTimeout(t *testing.T) {
	h := newHarness(t, engine.Config{})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q", MaxWaitS: 60})
	h.arrive("q", "c")
	start := h.last()
	h.clock.Advance(60 * time.Second)
	wantNamed(t, h.eventsAfter(acc, start), []string{"reason", "disconnect_cause", "wait_duration_ms"}, "queue.leave[reason=timeout wait_duration_ms=60000]", "session.delete[disconnect_cause=ALLOTTED_TIMEOUT]")
}

func TestFullQueueTurnsTheCallerAway(t *testing.T) {
	h := newHarness(t, engine.Config{})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q", MaxSize: 1})
	h.arrive("q", "c1")
	start := h.last()
	call, err := h.eng.Arrive(h.ctx, acc, engine.Arrival{SessionID: "c2", QueueID: "q"})
	ok(t, err)
	if call.State != engine.CallEnded || call.LeaveReason != event.LeaveQueueFull {
		t.Errorf("call = %+v, want ended with queue_full", call)
	}
	wantNamed(t, h.eventsAfter(acc, start), []string{"reason", "position"}, "session.create", "queue.join[position=2]", "queue.leave[reason=queue_full position=2]", "session.delete")
}

func TestStrategiesPickTheRecipientTheirNameSays(t *testing.T) {
	offered := func(h *harness, after uint64) []string {
		var out []string
		for _, p := range h.eventsAfter(acc, after) {
			if p.Event == "recipient.offer" {
				out = append(out, p.Fields["recipient_id"].(string))
			}
		}
		return out
	}
	// Each caller is offered, answered and hung up before the next arrives.
	run := func(t *testing.T, strategy event.Strategy, calls int, prepare func(h *harness)) []string {
		h := newHarness(t, engine.Config{})
		h.queue(engine.QueueConfig{ID: "q", Name: "Q", Strategy: strategy})
		for _, id := range []string{"a", "b", "c"} {
			h.agent(id, "q")
			h.clock.Advance(time.Second)
		}
		if prepare != nil {
			prepare(h)
		}
		start := h.last()
		for i := range calls {
			id := "call" + string(rune('0'+i))
			h.arrive("q", id)
			ok(t, h.eng.Accept(h.ctx, acc, id, ""))
			h.clock.Advance(time.Second)
			ok(t, h.eng.Hangup(h.ctx, acc, id, ""))
			h.clock.Advance(time.Second)
		}
		return offered(h, start)
	}
	t.Run("round_robin", func(t *testing.T) {
		if got := run(t, event.StrategyRoundRobin, 5, nil); !slices.Equal(got, []string{"a", "b", "c", "a", "b"}) {
			t.Errorf("offers %v, want a b c a b", got)
		}
	})
	t.Run("most_idle", func(t *testing.T) {
		// c took a call just now, so a (idle longest) then b are next.
		got := run(t, event.StrategyMostIdle, 4, nil)
		if !slices.Equal(got, []string{"a", "b", "c", "a"}) {
			t.Errorf("offers %v, want a b c a", got)
		}
	})
	t.Run("fewest_calls", func(t *testing.T) {
		got := run(t, event.StrategyFewestCalls, 3, func(h *harness) {
			h.arrive("q", "warm")
			ok(t, h.eng.Accept(h.ctx, acc, "warm", "")) // a takes one first
			ok(t, h.eng.Hangup(h.ctx, acc, "warm", ""))
		})
		if !slices.Equal(got, []string{"b", "c", "a"}) {
			t.Errorf("offers %v, want b c a", got)
		}
	})
	t.Run("ring_all", func(t *testing.T) {
		h := newHarness(t, engine.Config{})
		h.queue(engine.QueueConfig{ID: "q", Name: "Q", Strategy: event.StrategyRingAll})
		h.agent("a", "q")
		h.agent("b", "q")
		h.agent("c", "q")
		h.status("c", engine.ActionAway, "")
		h.arrive("q", "x")
		start := h.last()
		wantKind(t, h.eng.Accept(h.ctx, acc, "x", ""), engine.ErrInvalid, "say which one")
		ok(t, h.eng.Accept(h.ctx, acc, "x", "b"))
		wantNamed(t, h.eventsAfter(acc, start), []string{"recipient_id", "reason"}, "queue.delivered[recipient_id=b]", "recipient.delivered[recipient_id=b]", "recipient.rescind[recipient_id=a reason=answered_elsewhere]", "queue.leave[recipient_id=b reason=delivered]")
		check(t, acc, h.events(acc), false)
	})
}

func TestUnavailableRecipientsAreNeverOffered(t *testing.T) {
	h := newHarness(t, engine.Config{})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q", WrapupS: 30})
	h.queue(engine.QueueConfig{ID: "other", Name: "Other"})
	h.agent("away", "q")
	h.status("away", engine.ActionAway, "")
	h.agent("paused", "q", "other")
	h.status("paused", engine.ActionPause, "q")
	h.agent("external", "q")
	_, err := h.eng.StartExternalCall(h.ctx, acc, "external", engine.ExternalCall{Number: "+15550199"})
	ok(t, err)
	h.agent("wrapup", "q")
	h.arrive("q", "first")
	ok(t, h.eng.Accept(h.ctx, acc, "first", "wrapup"))
	ok(t, h.eng.Hangup(h.ctx, acc, "first", ""))
	_, err = h.eng.CreateRecipient(h.ctx, acc, engine.RecipientConfig{ID: "loggedout", Queues: []string{"q"}})
	ok(t, err)
	start := h.last()

	h.arrive("q", "second")
	h.clock.Advance(10 * time.Second)
	for _, p := range h.eventsAfter(acc, start) {
		if p.Event == "recipient.offer" {
			t.Fatalf("offered to %v although nobody is available", p.Fields["recipient_id"])
		}
	}
	// The first to become available gets it: wrap-up ends at 30 s.
	h.clock.Advance(20 * time.Second)
	got := names(h.eventsAfter(acc, start), "recipient_id")
	if got[len(got)-1] != "recipient.offer[recipient_id=wrapup]" {
		t.Fatalf("after wrap-up: %v", got)
	}
	check(t, acc, h.events(acc), false)
}

func TestImpossibleRequestsAreRefusedWithAReason(t *testing.T) {
	h := newHarness(t, engine.Config{})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q"})
	h.queue(engine.QueueConfig{ID: "q2", Name: "Q2"})
	_, err := h.eng.CreateRecipient(h.ctx, acc, engine.RecipientConfig{ID: "r1", Queues: []string{"q"}})
	ok(t, err)
	h.agent("busy", "q2")
	h.arrive("q2", "talking")
	ok(t, h.eng.Accept(h.ctx, acc, "talking", ""))
	h.arrive("q", "waiting")
	status := func(id string, a engine.Action, q string) error {
		_, err := h.eng.SetStatus(h.ctx, acc, id, engine.StatusRequest{Action: a, QueueID: q})
		return err
	}
	cases := []struct {
		name string
		err  error
		kind error
		says string
	}{
		{"ready while logged out", status("r1", engine.ActionReady, ""), engine.ErrConflict, "recipient r1 is logged out; log in before going ready"},
		{"pause while logged out", status("r1", engine.ActionPause, "q"), engine.ErrConflict, "log in before pausing"},
		{"logout while logged out", status("r1", engine.ActionLogout, ""), engine.ErrConflict, "already logged out"},
		{"unknown action", status("r1", "dance", ""), engine.ErrInvalid, "action must be one of"},
		{"pause without queue", status("r1", engine.ActionPause, ""), engine.ErrInvalid, "queue_id"},
		{"unknown recipient", status("nobody", engine.ActionLogin, ""), engine.ErrNotFound, "recipient nobody does not exist"},
		{"login twice", status("busy", engine.ActionLogin, ""), engine.ErrConflict, "already logged in"},
		{"logout on a call", status("busy", engine.ActionLogout, ""), engine.ErrConflict, "hang up before logging out"},
		{"pause a queue not served", status("busy", engine.ActionPause, "q"), engine.ErrConflict, "does not serve queue q"},
		{"resume a queue not paused", status("busy", engine.ActionResume, "q2"), engine.ErrConflict, "has not paused queue q2"},
		{"accept a call not offered", h.eng.Accept(h.ctx, acc, "waiting", "busy"), engine.ErrConflict, "call waiting is not being offered to recipient busy"},
		{"accept a call ringing nobody", h.eng.Accept(h.ctx, acc, "waiting", ""), engine.ErrConflict, "not ringing anyone"},
		{"accept an unknown call", h.eng.Accept(h.ctx, acc, "nope", ""), engine.ErrNotFound, "call nope does not exist"},
		{"recipient hangs up a waiting call", h.eng.Hangup(h.ctx, acc, "waiting", event.PartyRecipient), engine.ErrConflict, "only the caller"},
		{"finalize before the call ends", h.eng.Finalize(h.ctx, acc, "talking", engine.Finalization{}), engine.ErrConflict, "opens when the call ends"},
		{"external call while busy", errOf(h.eng.StartExternalCall(h.ctx, acc, "busy", engine.ExternalCall{Number: "1"})), engine.ErrConflict, "already on call talking"},
		{"end an external call not started", h.eng.EndExternalCall(h.ctx, acc, "busy", ""), engine.ErrConflict, "not on an external call"},
		{"wiretap stop without start", h.eng.StopWiretap(h.ctx, acc, engine.Wiretap{RecipientID: "busy", SupervisorID: "sup"}), engine.ErrConflict, "not monitoring"},
		{"wiretap with a bad supervisor id", h.eng.StartWiretap(h.ctx, acc, engine.Wiretap{RecipientID: "busy", SupervisorID: "a b"}), engine.ErrInvalid, "supervisor_id"},
		{"call to an unknown queue", errOf(h.eng.Arrive(h.ctx, acc, engine.Arrival{QueueID: "nope"})), engine.ErrNotFound, "queue nope does not exist"},
		{"duplicate queue", errOf(h.eng.CreateQueue(h.ctx, acc, engine.QueueConfig{ID: "q", Name: "again"})), engine.ErrConflict, "already exists"},
		{"queue without a name", errOf(h.eng.CreateQueue(h.ctx, acc, engine.QueueConfig{ID: "q3"})), engine.ErrInvalid, "name is required"},
		{"bad strategy", errOf(h.eng.CreateQueue(h.ctx, acc, engine.QueueConfig{Name: "x", Strategy: "random"})), engine.ErrInvalid, "strategy must be one of"},
		{"negative wrap-up", errOf(h.eng.CreateQueue(h.ctx, acc, engine.QueueConfig{Name: "x", WrapupS: -1})), engine.ErrInvalid, "wrapup_s must be between 0 and 3600"},
		{"recipient of an unknown queue", errOf(h.eng.CreateRecipient(h.ctx, acc, engine.RecipientConfig{Queues: []string{"nope"}})), engine.ErrInvalid, "queue nope does not exist"},
		{"remove a recipient on a call", h.eng.DeleteRecipient(h.ctx, acc, "busy"), engine.ErrConflict, "on call talking"},
		{"bad account id", h.eng.DeleteQueue(h.ctx, "ACCOUNT", "q"), engine.ErrInvalid, "account id must be 32 lowercase hex"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) { wantKind(t, c.err, c.kind, c.says) })
	}
	check(t, acc, h.events(acc), false)
}

func TestWiretapFailsWithNothingToMonitorAndStopsWithTheCall(t *testing.T) {
	h := newHarness(t, engine.Config{})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q"})
	h.agent("a", "q")
	start := h.last()
	tap := engine.Wiretap{RecipientID: "a", SupervisorID: "sup1", Mode: event.WiretapWhisper}
	wantKind(t, h.eng.StartWiretap(h.ctx, acc, tap), engine.ErrConflict, "nothing to monitor")
	h.arrive("q", "c")
	ok(t, h.eng.Accept(h.ctx, acc, "c", "a"))
	ok(t, h.eng.StartWiretap(h.ctx, acc, tap))
	wantKind(t, h.eng.StartWiretap(h.ctx, acc, engine.Wiretap{RecipientID: "a", SupervisorID: "sup2"}), engine.ErrConflict, "already monitored by supervisor sup1")
	h.clock.Advance(5 * time.Second)
	ok(t, h.eng.Hangup(h.ctx, acc, "c", ""))
	var taps []published
	for _, p := range h.eventsAfter(acc, start) {
		if strings.HasPrefix(p.Event, "recipient.wiretap") || p.Event == "recipient.hangup" {
			taps = append(taps, p)
		}
	}
	wantNamed(t, taps, []string{"reason", "supervisor_id", "duration_ms"},
		"recipient.wiretap_failed[reason=no_active_session supervisor_id=sup1]",
		"recipient.wiretap_start[supervisor_id=sup1]",
		"recipient.wiretap_failed[reason=already_monitored supervisor_id=sup2]",
		"recipient.wiretap_stop[supervisor_id=sup1 duration_ms=5000]",
		"recipient.hangup[duration_ms=5000]",
	)
}

func TestStatusChangesReportTransitionsAndRescindRingingCalls(t *testing.T) {
	h := newHarness(t, engine.Config{})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q", WrapupS: 60})
	h.agent("a", "q")
	h.arrive("q", "c1")
	start := h.last()
	h.status("a", engine.ActionAway, "") // ringing: the offer is withdrawn first
	h.status("a", engine.ActionReady, "")
	ok(t, h.eng.Accept(h.ctx, acc, "c1", "a"))
	h.status("a", engine.ActionAway, "") // on a call: away takes effect after it
	ok(t, h.eng.Hangup(h.ctx, acc, "c1", ""))
	h.status("a", engine.ActionReady, "") // in wrap-up, away after it: wrap-up ends, then ready
	h.status("a", engine.ActionPause, "q")
	h.status("a", engine.ActionResume, "q")
	h.status("a", engine.ActionLogout, "")
	wantNamed(t, h.eventsAfter(acc, start), []string{"state", "previous_state", "reason"},
		"recipient.rescind[state=ready previous_state=offered reason=recipient_unavailable]",
		"recipient.away[state=away previous_state=ready]",
		"recipient.ready[state=ready previous_state=away]",
		"recipient.offer[state=offered previous_state=ready]",
		"queue.delivered",
		"recipient.delivered[state=busy previous_state=offered]",
		"queue.leave[reason=delivered]",
		"recipient.hangup[state=wrapup previous_state=busy]",
		"recipient.wrapup_start[state=wrapup previous_state=wrapup]",
		"recipient.interaction_finalize_start",
		"recipient.wrapup_complete[state=away previous_state=wrapup]",
		"recipient.ready[state=ready previous_state=away]",
		"recipient.pause[state=ready previous_state=ready]",
		"recipient.resume[state=ready previous_state=ready]",
		"recipient.delete[state=logged_out previous_state=ready reason=logout]",
	)
	check(t, acc, h.events(acc), false)
}

func TestSyncGoesOutPeriodicallyForLoggedInRecipients(t *testing.T) {
	h := newHarness(t, engine.Config{SyncInterval: 30 * time.Second})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q"})
	h.agent("a", "q")
	h.agent("b", "q")
	_, err := h.eng.CreateRecipient(h.ctx, acc, engine.RecipientConfig{ID: "out"})
	ok(t, err)
	h.status("b", engine.ActionPause, "q")
	start := h.last()
	h.clock.Advance(95 * time.Second)
	count := map[string]int{}
	for _, p := range h.eventsAfter(acc, start) {
		if p.Event == "recipient.sync" {
			count[p.Fields["recipient_id"].(string)]++
		}
	}
	if count["a"] != 3 || count["b"] != 3 || count["out"] != 0 {
		t.Errorf("syncs per recipient %v, want a:3 b:3 out:0", count)
	}
	ok(t, h.eng.Sync(h.ctx, acc, "out"))
	evs := h.eventsAfter(acc, start)
	last := evs[len(evs)-1]
	if last.Event != "recipient.sync" || last.Fields["state"] != "logged_out" {
		t.Errorf("on-demand sync of a logged-out recipient: %v", last.Fields)
	}
	check(t, acc, h.events(acc), false)
}

func TestEstimatedWaitFollowsTheDocumentedFormula(t *testing.T) {
	h := newHarness(t, engine.Config{DefaultHandleTime: 100 * time.Second})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q", WrapupS: 20})
	h.agent("a", "q")
	h.agent("b", "q")
	// One completed call of 40 s talk + 20 s wrap-up: AHT becomes 60 s.
	h.arrive("q", "first")
	ok(t, h.eng.Accept(h.ctx, acc, "first", ""))
	h.clock.Advance(40 * time.Second)
	ok(t, h.eng.Hangup(h.ctx, acc, "first", ""))
	h.clock.Advance(20 * time.Second)
	h.status("b", engine.ActionAway, "")
	// Now a is ready (R=1, S=1): position 1 waits 0, position 2 waits 60 s, 3 waits 120 s.
	var est []int
	for _, id := range []string{"w1", "w2", "w3"} {
		c, err := h.eng.Arrive(h.ctx, acc, engine.Arrival{SessionID: id, QueueID: "q"})
		ok(t, err)
		est = append(est, c.EstimatedWaitS)
	}
	// w1 was offered to a at once, so for w2 R=0 and S=1: (2-0)*60/1 = 120.
	if !slices.Equal(est, []int{0, 120, 180}) {
		t.Errorf("estimated waits %v, want [0 120 180]", est)
	}
	q := must[engine.Queue](t)(h.eng.Queue(h.ctx, acc, "q"))
	if q.AverageHandleS != 60 || len(q.Callers) != 3 || q.Callers[2].Position != 3 {
		t.Errorf("queue view %+v", q)
	}
}

// BenchmarkQueueCallThroughTheBus measures the engine's per-event path
// (state change, encode, publish and wait for the bus) with one answered
// call of eight events per iteration.
func BenchmarkQueueCallThroughTheBus(b *testing.B) {
	h := newHarness(b, engine.Config{})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q"})
	h.agent("a", "q")
	start := h.last()
	b.ReportAllocs()
	for i := 0; b.Loop(); i++ {
		id := "c" + strconv.Itoa(i)
		h.arrive("q", id)
		if err := h.eng.Accept(h.ctx, acc, id, "a"); err != nil {
			b.Fatal(err)
		}
		if err := h.eng.Hangup(h.ctx, acc, id, ""); err != nil {
			b.Fatal(err)
		}
		if err := h.eng.Finalize(h.ctx, acc, id, engine.Finalization{}); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(h.last()-start)/b.Elapsed().Seconds(), "events/s")
}
