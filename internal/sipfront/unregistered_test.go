package sipfront_test

import (
	"context"
	"testing"
	"time"

	"github.com/emiago/diago"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/sipfront"
	"github.com/ccevents/ccevents/internal/testkit"
)

// An agent with SIP credentials whose phone is not registered cannot be
// reached: the offer is rejected once as unreachable, the agent goes away
// and is offered nothing more, and the caller rings the next agent, whose
// phone answers and is bridged.
func TestAgentWhosePhoneIsNotRegisteredGoesAwayAndTheNextAgentTakesTheCall(t *testing.T) {
	r := newRig(t, sipfront.Config{})
	// Round robin offers alice (first in id order) before bob.
	r.queue(engine.QueueConfig{ID: "sales", Name: "Sales", Strategy: event.StrategyRoundRobin, OfferTimeoutS: 20, WrapupS: 1, FinalizeTimeoutS: 1}, "1000")
	r.agent("alice", false, "sales") // credentials, no phone registered
	bobUser, bobPassword := r.agent("bob", false, "sales")
	bobHeard := listenFor(callerTone)
	bobPhone := newPhone(t, r.ctx, "udp", answerAndTalk(bobHeard, agentTone))
	r.ok(bobPhone.register(r.ctx, r.sip.Addr(), bobUser, bobPassword))

	callerHeard := listenFor(agentTone)
	call := func() (string, *diago.DialogClientSession) {
		t.Helper()
		before := len(r.events.matching("session.create", nil))
		ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
		defer cancel()
		d, med, err := newPhone(t, r.ctx, "udp", nil).call(ctx, r.sip.Addr(), "1000", diago.InviteOptions{})
		r.ok(err)
		t.Cleanup(func() { _ = d.Close() })
		cr, _ := med.AudioReader()
		cw, _ := med.AudioWriter()
		go callerHeard.listen(cr)
		go talk(d.Context(), cw, callerTone)
		var sid string
		testkit.Eventually(t, 15*time.Second, "the call's session is created", func() bool {
			created := r.events.matching("session.create", nil)
			if len(created) > before {
				sid, _ = created[before].Fields["session_id"].(string)
			}
			return sid != ""
		})
		return sid, d
	}

	sid, d := call()
	reject := r.waitEvent("recipient.reject", map[string]any{"session_id": sid, "recipient_id": "alice"})
	if reject.Fields["reason"] != "unreachable" || reject.Fields["state"] != "away" || reject.Fields["previous_state"] != "offered" {
		t.Errorf("alice's reject = %v, want reason unreachable, offered -> away", reject.Fields)
	}
	r.waitEvent("recipient.delivered", map[string]any{"session_id": sid, "recipient_id": "bob"})
	testkit.Eventually(t, 15*time.Second, "the caller and bob hear each other", func() bool {
		return bobHeard.toneFrames(callerTone, alone) >= 10 && callerHeard.toneFrames(agentTone, alone) >= 10
	})
	if a, err := engine.GetRecipient.Call(r.ctx, r.eng, acc, engine.RecipientRef{RecipientID: "alice"}); err != nil || a.State != event.StateAway {
		t.Errorf("alice is %s (%v), want away", a.State, err)
	}
	r.ok(d.Hangup(r.ctx))
	r.waitEvent("session.delete", map[string]any{"session_id": sid})

	// The next caller goes to bob (after his wrap-up), never to alice.
	sid2, d2 := call()
	r.waitEvent("recipient.delivered", map[string]any{"session_id": sid2, "recipient_id": "bob"})
	r.ok(d2.Hangup(r.ctx))
	r.waitEvent("session.delete", map[string]any{"session_id": sid2})
	if n := len(r.events.matching("recipient.offer", map[string]any{"recipient_id": "alice"})); n != 1 {
		t.Errorf("alice was offered %d calls, want 1: away after the unreachable one", n)
	}
	if n := len(r.events.matching("recipient.reject", nil)); n != 1 {
		t.Errorf("%d rejects, want alice's one", n)
	}
}

// With IgnoreUnregistered (the demo's simulator answers for recipients
// without a registered phone) an offer to such a recipient is left alone:
// it rings until the engine's offer timeout, and whoever stands in for
// the recipient may answer it.
func TestIgnoreUnregisteredLeavesTheOfferToWhoeverAnswersForTheRecipient(t *testing.T) {
	r := newRig(t, sipfront.Config{IgnoreUnregistered: true})
	r.queue(engine.QueueConfig{ID: "sales", Name: "Sales", OfferTimeoutS: 1, WrapupS: 1, FinalizeTimeoutS: 1}, "1000")
	r.agent("alice", false, "sales") // credentials, no phone registered
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	d, _, err := newPhone(t, r.ctx, "udp", nil).call(ctx, r.sip.Addr(), "1000", diago.InviteOptions{})
	r.ok(err)
	t.Cleanup(func() { _ = d.Close() })

	// Nobody rejects the offer as unreachable: it rings out.
	reject := r.waitEvent("recipient.reject", map[string]any{"recipient_id": "alice"})
	if reject.Fields["reason"] != "timeout" || reject.Fields["state"] != "ready" {
		t.Fatalf("alice's first reject = %v, want the offer timeout, alice still ready", reject.Fields)
	}
	// The stand-in answers the next offer.
	sid := reject.Fields["session_id"].(string)
	testkit.Eventually(t, 15*time.Second, "alice is offered the call again", func() bool {
		return len(r.events.matching("recipient.offer", map[string]any{"session_id": sid, "recipient_id": "alice"})) == 2
	})
	_, err = engine.Accept.Call(r.ctx, r.eng, acc, engine.AcceptRequest{SessionID: sid, RecipientID: "alice"})
	r.ok(err)
	r.waitEvent("recipient.delivered", map[string]any{"session_id": sid, "recipient_id": "alice"})
	if n := len(r.events.matching("recipient.reject", map[string]any{"reason": "unreachable"})); n != 0 {
		t.Errorf("%d unreachable rejects, want none", n)
	}
	r.ok(d.Hangup(r.ctx))
	r.waitEvent("session.delete", map[string]any{"session_id": sid})
}
