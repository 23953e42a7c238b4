package sipfront_test

import (
	"context"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo/sip"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/sipfront"
	"github.com/ccevents/ccevents/internal/testkit"
)

// A caller dials a queue's number, hears hold music, the agent's phone
// rings, the agent answers and the two talk; the caller hangs up. The
// engine's events tell the story, and audio flows both ways only once
// bridged.
func TestQueueCallRingsTheAgentsPhoneAndBridgesAudio(t *testing.T) {
	r := newRig(t, sipfront.Config{})
	r.queue(engine.QueueConfig{ID: "sales", Name: "Sales", OfferTimeoutS: 20, WrapupS: 1, FinalizeTimeoutS: 1}, "1000")
	user, pw := r.agent("alice", false, "sales")

	agentHeard := listenFor(callerTone)
	answered := make(chan time.Time, 1)
	release := make(chan struct{})
	agentPhone := newPhone(t, r.ctx, "udp", func(d *diago.DialogServerSession) {
		if err := d.Ringing(); err != nil {
			return
		}
		<-release // ring until the test lets the agent answer
		med, err := d.Answer(diago.AnswerOptions{})
		if err != nil {
			t.Errorf("agent answer: %v", err)
			return
		}
		answered <- time.Now()
		ar, _ := med.AudioReader()
		aw, _ := med.AudioWriter()
		go agentHeard.listen(ar)
		talk(d.Context(), aw, agentTone)
	})
	r.ok(agentPhone.register(r.ctx, r.sip.Addr(), user, pw))

	callerPhone := newPhone(t, r.ctx, "udp", nil)
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	d, med, err := callerPhone.call(ctx, r.sip.Addr(), "1000", diago.InviteOptions{
		Headers: []sip.Header{&sip.FromHeader{DisplayName: "Maria Garcia", Address: sip.Uri{User: "+15550100", Host: "127.0.0.1"}, Params: sip.NewParams()}},
	})
	r.ok(err)
	callerHeard := listenFor(agentTone)
	cr, _ := med.AudioReader()
	cw, _ := med.AudioWriter()
	go callerHeard.listen(cr)
	talkCtx, stopTalk := context.WithCancel(ctx)
	defer stopTalk()
	go talk(talkCtx, cw, callerTone)

	// The caller is queued and hears the welcome and hold music; the agent's
	// phone rings. Nothing the caller says reaches anyone yet.
	testkit.Eventually(t, 10*time.Second, "the agent is offered the call", func() bool {
		_, ok := r.events.find("recipient.offer", nil)
		return ok
	})
	offer, _ := r.events.find("recipient.offer", nil)
	sid := offer.Fields["session_id"].(string)
	testkit.Eventually(t, 10*time.Second, "the caller hears the welcome", func() bool { return callerHeard.count() > 25 })
	if n := callerHeard.toneFrames(agentTone, alone); n > 0 {
		t.Fatalf("the caller heard the agent's tone in %d frames before the agent answered", n)
	}
	close(release)
	var answerAt time.Time
	select {
	case answerAt = <-answered:
	case <-ctx.Done():
		t.Fatal("the agent's phone was never answered")
	}
	testkit.Eventually(t, 10*time.Second, "the agent hears the caller", func() bool { return agentHeard.toneFrames(callerTone, alone) >= 25 })
	testkit.Eventually(t, 10*time.Second, "the caller hears the agent", func() bool { return callerHeard.toneFrames(agentTone, alone) >= 25 })
	// Nothing the caller said before the bridge arrives late: the agent
	// heard no more frames than real time since answering allows.
	if got, most := agentHeard.count(), int(time.Since(answerAt)/(20*time.Millisecond))+10; got > most {
		t.Errorf("the agent heard %d frames in %s; at most %d are live audio", got, time.Since(answerAt), most)
	}

	stopTalk()
	r.ok(d.Hangup(ctx))
	testkit.Eventually(t, 15*time.Second, "the session ends", func() bool {
		_, ok := r.events.find("session.delete", func(f map[string]any) bool { return f["session_id"] == sid })
		return ok
	})
	got := names(r.events.of(sid))
	want := []string{
		"session.create", "queue.join", "recipient.offer", "queue.delivered", "recipient.delivered", "queue.leave",
		"recipient.hangup", "recipient.wrapup_start", "recipient.interaction_finalize_start",
	}
	if !slices.Equal(got[:len(want)], want) || got[len(got)-1] != "session.delete" {
		t.Fatalf("events of the call:\n  %s\nwant them to start\n  %s\nand end with session.delete", strings.Join(got, "\n  "), strings.Join(want, "\n  "))
	}
	create := r.events.of(sid)[0].Fields
	if create["caller_id_number"] != "+15550100" || create["caller_id_name"] != "Maria Garcia" || create["callee"] != "1000" {
		t.Errorf("session.create = %v", create)
	}
	del, _ := r.events.find("session.delete", func(f map[string]any) bool { return f["session_id"] == sid })
	if del.Fields["disconnect_cause"] != "NORMAL_CLEARING" || del.Fields["hangup_by"] != "caller" {
		t.Errorf("session.delete = %v", del.Fields)
	}
}
