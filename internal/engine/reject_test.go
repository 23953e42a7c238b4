package engine_test

import (
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/promutil"
)

// A recipient whose phone cannot be reached goes away (redirection on no
// answer): the caller rings the next recipient, and nobody offers the
// unreachable one anything until they go ready again, even when they are
// the only one left. The away survives a restart like any away.
func TestUnreachableRecipientGoesAwayAndIsOfferedNothingUntilReady(t *testing.T) {
	ctx := t.Context()
	dir := t.TempDir()
	b := openBus(t, dir, false)
	h := newStoredHarness(t, b, engine.Config{})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q"})
	h.agent("a", "q")
	h.clock.Advance(time.Second) // a is idle longer than b
	h.agent("b", "q")
	h.arrive("q", "c")
	start := h.last()

	ok(t, h.eng.Reject(ctx, acc, "c", "a", event.RejectUnreachable))
	h.clock.Advance(5 * time.Second)
	ok(t, h.eng.Reject(ctx, acc, "c", "b", event.RejectDeclined))
	h.clock.Advance(time.Minute) // long enough for anything held to come back
	wantNamed(t, h.eventsAfter(acc, start), []string{"recipient_id", "reason", "state", "previous_state"},
		"recipient.reject[recipient_id=a reason=unreachable state=away previous_state=offered]",
		"recipient.offer[recipient_id=b state=offered previous_state=ready]",
		"recipient.reject[recipient_id=b reason=declined state=ready previous_state=offered]",
		// everyone ready has turned the caller down: it starts over with b, never a
		"recipient.offer[recipient_id=b state=offered previous_state=ready]",
		"recipient.reject[recipient_id=b reason=timeout state=ready previous_state=offered]",
		"recipient.offer[recipient_id=b state=offered previous_state=ready]",
		"recipient.reject[recipient_id=b reason=timeout state=ready previous_state=offered]",
		"recipient.offer[recipient_id=b state=offered previous_state=ready]",
		"recipient.reject[recipient_id=b reason=timeout state=ready previous_state=offered]",
		"recipient.offer[recipient_id=b state=offered previous_state=ready]",
	)
	if r := h.recipient("a"); r.State != event.StateAway || r.Availability != event.StateAway {
		t.Fatalf("a is %s (availability %s), want away", r.State, r.Availability)
	}

	// a comes back: b is still ringing, so a takes the next caller at once.
	h.status("a", engine.ActionReady, "")
	mark := h.last()
	h.arrive("q", "c2")
	if got := names(h.eventsAfter(acc, mark), "recipient_id"); !slices.Contains(got, "recipient.offer[recipient_id=a]") {
		t.Fatalf("a went ready and a caller arrived, but a was not offered it: %v", got)
	}
	ok(t, h.eng.Reject(ctx, acc, "c2", "a", event.RejectUnreachable))
	check(t, acc, h.events(acc), false)

	// A new engine on the same bucket finds a away.
	ok(t, h.eng.Close(ctx))
	h2 := newStoredHarness(t, b, engine.Config{})
	if r := h2.recipient("a"); r.State != event.StateAway {
		t.Errorf("after a restart a is %s, want away", r.State)
	}
}

// A timeout (nobody answered within offer_timeout_s) is not redirection on
// no answer: the recipient stays ready, and the caller rings them again
// once everyone eligible has had it, one offer per offer timeout at most.
func TestTimedOutRecipientStaysReady(t *testing.T) {
	h := newHarness(t, engine.Config{})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q", OfferTimeoutS: 10})
	h.agent("a", "q")
	h.arrive("q", "c")
	start := h.last()
	h.clock.Advance(10 * time.Second)
	wantNamed(t, h.eventsAfter(acc, start), []string{"recipient_id", "reason", "state"}, "recipient.reject[recipient_id=a reason=timeout state=ready]", "recipient.offer[recipient_id=a state=offered]")
}

// A phone or desktop that rejects every offer the moment it rings (do not
// disturb answering 486, a desktop declining everything) is offered at
// most one call per engine.MinOfferInterval, however many callers wait;
// each hold is counted. A person who takes a second or more to decline is
// never held back.
func TestRecipientRejectingAtMachineSpeedIsHeldBack(t *testing.T) {
	reg := prometheus.NewRegistry()
	h := newHarness(t, engine.Config{Registerer: reg})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q"})
	h.agent("a", "q")
	for _, c := range []string{"c1", "c2", "c3"} {
		h.arrive("q", c)
	}
	start := h.last()
	// For ten seconds a rejects whatever rings, as soon as it rings.
	const step = 50 * time.Millisecond
	for range int(10 * time.Second / step) {
		if r := h.recipient("a"); r.Offer != nil {
			ok(t, h.eng.Reject(h.ctx, acc, r.Offer.SessionID, "a", event.RejectBusy))
		}
		h.clock.Advance(step)
	}
	offers := 0
	for _, p := range h.eventsAfter(acc, start) {
		if p.Event == "recipient.offer" {
			offers++
		}
	}
	// The first offer came with the arrivals, before start; one more per
	// second since.
	if offers < 9 || offers > 10 {
		t.Errorf("%d offers in 10 s to a recipient rejecting each at once, want one a second", offers)
	}
	holds, _, err := promutil.Sample(reg, "ccevents_engine_offer_holds_total")
	ok(t, err)
	if holds < 9 || holds > 11 {
		t.Errorf("ccevents_engine_offer_holds_total = %g, want one per reject (about 10)", holds)
	}
	check(t, acc, h.events(acc), false)

	// Declining after a second of ringing, as a person does, holds nothing.
	for h.recipient("a").Offer == nil {
		h.clock.Advance(step)
	}
	h.clock.Advance(engine.MinOfferInterval)
	before := holds
	mark := h.last()
	ok(t, h.eng.Reject(h.ctx, acc, h.recipient("a").Offer.SessionID, "a", event.RejectDeclined))
	if got := names(h.eventsAfter(acc, mark), "recipient_id"); !slices.Equal(got, []string{"recipient.reject[recipient_id=a]", "recipient.offer[recipient_id=a]"}) {
		t.Errorf("a person's decline: %v, want the next caller offered at once", got)
	}
	if holds, _, _ := promutil.Sample(reg, "ccevents_engine_offer_holds_total"); holds != before {
		t.Errorf("a decline after %s counted a hold", engine.MinOfferInterval)
	}
}
