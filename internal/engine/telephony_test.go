package engine_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
)

func TestEndCallCarriesTheTelephonysCauseIntoSessionDelete(t *testing.T) {
	cases := []struct {
		name      string
		answer    bool
		external  bool
		end       engine.CallEnd
		wantCause string
		wantBy    string
	}{
		{"a waiting caller without a cause abandons", false, false, engine.CallEnd{}, "ORIGINATOR_CANCEL", "caller"},
		{"a waiting caller's network failure", false, false, engine.CallEnd{Cause: event.CauseNetworkOutOfOrder}, "NETWORK_OUT_OF_ORDER", "caller"},
		{"an answered call without a cause clears normally", true, false, engine.CallEnd{HangupBy: event.PartyRecipient}, "NORMAL_CLEARING", "recipient"},
		{"an answered call whose media timed out", true, false, engine.CallEnd{HangupBy: event.PartySystem, Cause: event.CauseMediaTimeout}, "MEDIA_TIMEOUT", "system"},
		{"an external call the far end found busy", false, true, engine.CallEnd{HangupBy: event.PartyCaller, Cause: event.CauseUserBusy}, "USER_BUSY", "caller"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			h := newHarness(t, engine.Config{})
			h.queue(engine.QueueConfig{ID: "q", Name: "Q", WrapupS: 5, FinalizeTimeoutS: 10})
			h.agent("a", "q")
			id := "c1"
			if tc.external {
				_, err := h.eng.StartExternalCall(h.ctx, acc, "a", engine.ExternalCall{SessionID: id, Number: "+15550100"})
				ok(t, err)
			} else {
				h.arrive("q", id)
			}
			if tc.answer {
				ok(t, h.eng.Accept(h.ctx, acc, id, "a"))
			}
			start := h.last()
			ok(t, h.eng.EndCall(h.ctx, acc, id, tc.end))
			h.clock.Advance(time.Minute) // wrap-up and finalize windows close
			evs := h.eventsAfter(acc, start)
			last := evs[len(evs)-1]
			if last.Event != "session.delete" {
				t.Fatalf("last event %s, want session.delete", last.Event)
			}
			if last.Fields["disconnect_cause"] != tc.wantCause || last.Fields["hangup_by"] != tc.wantBy {
				t.Errorf("session.delete = %v, want cause %s by %s", last.Fields, tc.wantCause, tc.wantBy)
			}
			check(t, acc, h.events(acc), false)
		})
	}
}

func TestEndCallRefusesAnUnknownCause(t *testing.T) {
	h := newHarness(t, engine.Config{})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q"})
	h.arrive("q", "c1")
	err := h.eng.EndCall(h.ctx, acc, "c1", engine.CallEnd{Cause: "LOUD_NOISE"})
	if !errors.Is(err, engine.ErrInvalid) {
		t.Fatalf("EndCall with an unknown cause: %v, want invalid", err)
	}
}

func TestFailWiretapEndsMonitoringThatCouldNotBeSetUp(t *testing.T) {
	h := newHarness(t, engine.Config{})
	h.queue(engine.QueueConfig{ID: "q", Name: "Q"})
	h.agent("a", "q")
	h.arrive("q", "c1")
	ok(t, h.eng.Accept(h.ctx, acc, "c1", "a"))
	w := engine.Wiretap{RecipientID: "a", SupervisorID: "sup"}
	ok(t, h.eng.StartWiretap(h.ctx, acc, w))
	start := h.last()
	ok(t, h.eng.FailWiretap(h.ctx, acc, w, event.WiretapSupervisorUnreachable))
	if err := h.eng.FailWiretap(h.ctx, acc, w, event.WiretapSupervisorUnreachable); !errors.Is(err, engine.ErrConflict) {
		t.Errorf("failing it twice: %v, want a conflict", err)
	}
	ok(t, h.eng.Hangup(h.ctx, acc, "c1", event.PartyCaller))
	got := names(h.eventsAfter(acc, start), "reason")
	if got[0] != "recipient.wiretap_failed[reason=supervisor_unreachable]" || slices.Contains(got, "recipient.wiretap_stop") {
		t.Fatalf("events after the failure: %v; want wiretap_failed first and no wiretap_stop", got)
	}
}
