package sipfront_test

import (
	"context"
	"testing"
	"time"

	"github.com/emiago/diago"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/sipfront"
	"github.com/ccevents/ccevents/internal/testkit"
)

// hearsBothNeverHeard checks a listen-in: the supervisor hears caller and
// agent mixed, and neither of them hears the supervisor.
func hearsBothNeverHeard(t *testing.T, b *bridged, sup *audio) {
	t.Helper()
	testkit.Eventually(t, 15*time.Second, "the supervisor hears the caller and the agent", func() bool {
		return sup.toneFrames(callerTone, mixed) >= 25 && sup.toneFrames(agentTone, mixed) >= 25
	})
	if n := b.callerHeard.toneFrames(supervisorTone, mixed); n > 0 {
		t.Errorf("the caller heard the supervisor in %d frames", n)
	}
	if n := b.agentHeard.toneFrames(supervisorTone, mixed); n > 0 {
		t.Errorf("the agent heard the supervisor in %d frames", n)
	}
}

// A supervisor dials *44 and the agent's id: wiretap_start, the
// supervisor hears both parties and is never heard; hanging up stops the
// wiretap and leaves the call as it was.
func TestSupervisorListensInThroughTheFeatureCode(t *testing.T) {
	r := newRig(t, sipfront.Config{})
	b := r.bridgedCall()
	user, pw := r.agent("boss", true)

	sup := newPhone(t, r.ctx, "udp", nil)
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	d, med, err := sup.call(ctx, r.sip.Addr(), sipfront.WiretapPrefix+"alice", diago.InviteOptions{Username: user, Password: pw})
	r.ok(err)
	defer d.Close()
	heard := listenFor(callerTone, agentTone)
	sr, _ := med.AudioReader()
	sw, _ := med.AudioWriter()
	go heard.listen(sr)
	go talk(d.Context(), sw, supervisorTone)
	r.waitEvent("recipient.wiretap_start", map[string]any{"recipient_id": "alice", "supervisor_id": "boss", "session_id": b.sid, "mode": "listen"})
	hearsBothNeverHeard(t, b, heard)

	r.ok(d.Hangup(ctx))
	r.waitEvent("recipient.wiretap_stop", map[string]any{"recipient_id": "alice", "supervisor_id": "boss", "session_id": b.sid})
	before := b.agentHeard.toneFrames(callerTone, alone)
	testkit.Eventually(t, 10*time.Second, "the call goes on after the supervisor left", func() bool {
		return b.agentHeard.toneFrames(callerTone, alone) >= before+25
	})
	if _, ok := r.events.find("session.delete", nil); ok {
		t.Fatal("the call ended when the supervisor hung up")
	}
}

// The REST wiretap call (the engine's StartWiretap, which POST /wiretaps
// makes) rings the supervisor's registered phone, which joins listen-only;
// stopping it hangs the phone up; a call that ends ends the listening.
func TestSupervisorListensInThroughTheRESTWiretap(t *testing.T) {
	r := newRig(t, sipfront.Config{})
	b := r.bridgedCall()
	user, pw := r.agent("boss", true)
	var taps []*audio
	ended := make(chan chan struct{}, 2)
	sup := newPhone(t, r.ctx, "udp", func(d *diago.DialogServerSession) {
		heard := listenFor(callerTone, agentTone)
		done := make(chan struct{})
		taps = append(taps, heard) // one call at a time: read after the next event
		ended <- done
		defer close(done)
		answerAndTalk(heard, supervisorTone)(d)
	})
	r.ok(sup.register(r.ctx, r.sip.Addr(), user, pw))
	w := engine.Wiretap{RecipientID: "alice", SupervisorID: "boss"}

	r.ok(do(r, engine.StartWiretap, w))
	next := func() chan struct{} {
		select {
		case done := <-ended:
			return done
		case <-time.After(15 * time.Second):
			t.Fatal("after 15s: the supervisor's phone rings")
			return nil
		}
	}
	r.waitEvent("recipient.wiretap_start", map[string]any{"recipient_id": "alice", "supervisor_id": "boss", "session_id": b.sid})
	first := next()
	hearsBothNeverHeard(t, b, taps[0])
	r.ok(do(r, engine.StopWiretap, w))
	r.waitEvent("recipient.wiretap_stop", map[string]any{"recipient_id": "alice", "supervisor_id": "boss"})
	closed(t, first, "the supervisor's phone is hung up when the wiretap stops")

	// Again at once, and this time the caller hangs up: the supervisor's
	// phone too.
	r.ok(do(r, engine.StartWiretap, w))
	second := next()
	hearsBothNeverHeard(t, b, taps[1])
	ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
	defer cancel()
	r.ok(b.caller.Hangup(ctx))
	closed(t, second, "the supervisor's phone is hung up when the call ends")
	closed(t, b.agentEnded, "the agent's phone is hung up when the caller hangs up")
	r.waitEvent("session.delete", map[string]any{"session_id": b.sid})
}

// A wiretap ccevents cannot carry out says so with wiretap_failed: the
// supervisor's phone is not registered, or the agent is on no call; a
// phone without wiretap permission is refused.
func TestWiretapFailsWhenItCannotBeCarriedOut(t *testing.T) {
	r := newRig(t, sipfront.Config{})
	b := r.bridgedCall()
	r.agent("boss", true) // credentials, but no phone registered
	r.ok(do(r, engine.StartWiretap, engine.Wiretap{RecipientID: "alice", SupervisorID: "boss"}))
	r.waitEvent("recipient.wiretap_failed", map[string]any{"recipient_id": "alice", "supervisor_id": "boss", "session_id": b.sid, "reason": "supervisor_unreachable"})

	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	user, pw := r.agent("carol", true)
	r.agent("idle", false)
	sup := newPhone(t, r.ctx, "udp", nil)
	d, med, err := sup.call(ctx, r.sip.Addr(), sipfront.WiretapPrefix+"idle", diago.InviteOptions{Username: user, Password: pw})
	r.ok(err)
	defer d.Close()
	heard := listenFor(callerTone)
	sr, _ := med.AudioReader()
	go heard.listen(sr)
	r.waitEvent("recipient.wiretap_failed", map[string]any{"recipient_id": "idle", "supervisor_id": "carol", "reason": "no_active_session"})
	select {
	case <-d.Context().Done(): // told why, then hung up
	case <-ctx.Done():
		t.Fatal("the supervisor's phone was not hung up after a failed listen-in")
	}
	if heard.count() < 50 {
		t.Errorf("the supervisor heard %d frames, want an announcement of why not", heard.count())
	}

	user, pw = r.agent("dave", false)
	_, _, err = sup.call(ctx, r.sip.Addr(), sipfront.WiretapPrefix+"alice", diago.InviteOptions{Username: user, Password: pw})
	if statusOf(err) != 403 {
		t.Fatalf("listen-in from a phone without wiretap permission: %v, want 403", err)
	}
}

// A wiretap stopped while the supervisor's phone still rings cancels the
// ringing: the supervisor never joins a call nobody monitors any more.
func TestWiretapStoppedWhileTheSupervisorsPhoneRingsCancelsIt(t *testing.T) {
	r := newRig(t, sipfront.Config{})
	r.bridgedCall()
	user, pw := r.agent("boss", true)
	ringing, cancelled := make(chan struct{}), make(chan struct{})
	sup := newPhone(t, r.ctx, "udp", func(d *diago.DialogServerSession) {
		_ = d.Ringing()
		close(ringing)
		<-d.Context().Done() // rings until the CANCEL
		close(cancelled)
	})
	r.ok(sup.register(r.ctx, r.sip.Addr(), user, pw))
	w := engine.Wiretap{RecipientID: "alice", SupervisorID: "boss"}
	r.ok(do(r, engine.StartWiretap, w))
	closed(t, ringing, "the supervisor's phone rings")
	r.ok(do(r, engine.StopWiretap, w))
	closed(t, cancelled, "the ringing is cancelled when the wiretap stops")
	if ev, ok := r.events.find("recipient.wiretap_failed", nil); ok {
		t.Errorf("a stopped wiretap also failed: %v", ev.Fields)
	}
}
