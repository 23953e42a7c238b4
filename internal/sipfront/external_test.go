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

// farCall is a call the trunk's far end took.
type farCall struct {
	d     *diago.DialogServerSession
	heard *audio // agentTone
	ended chan struct{}
}

// trunk is a SIP trunk's far end on loopback: it answers every number
// and says farTone, except busyNumber, which is busy.
func trunk(t *testing.T) (*phone, <-chan *farCall) {
	calls := make(chan *farCall, 4)
	p := newPhone(t, t.Context(), "udp", func(d *diago.DialogServerSession) {
		if d.InviteRequest.Recipient.User == busyNumber {
			_ = d.Respond(486, "Busy Here", nil)
			return
		}
		fc := &farCall{d: d, heard: listenFor(agentTone), ended: make(chan struct{})}
		defer close(fc.ended)
		calls <- fc
		answerAndTalk(fc.heard, farTone)(d)
	})
	return p, calls
}

const busyNumber = "+15550486"

// An agent's phone dials a number: ccevents sends it to the trunk and
// bridges the two; recipient.external_call_start, then _end and
// session.delete with who hung up and why, whichever side ends it.
func TestAgentsPhoneCallsOutThroughTheTrunk(t *testing.T) {
	far, farCalls := trunk(t)
	r := newRig(t, sipfront.Config{Trunk: far.addr})
	user, pw := r.agent("alice", false)
	agent := newPhone(t, r.ctx, "udp", nil)

	for _, tc := range []struct {
		name, number  string
		farHangsUp    bool
		status        int // the agent's phone's final answer when not 200
		cause, hungUp string
	}{
		{name: "the agent hangs up", number: "+15550100", cause: "NORMAL_CLEARING", hungUp: "recipient"},
		{name: "the far end hangs up", number: "+15550101", farHangsUp: true, cause: "NORMAL_CLEARING", hungUp: "caller"},
		{name: "the far end is busy", number: busyNumber, status: 486, cause: "USER_BUSY", hungUp: "caller"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
			defer cancel()
			d, med, err := agent.call(ctx, r.sip.Addr(), tc.number, diago.InviteOptions{Username: user, Password: pw})
			start := r.waitEvent("recipient.external_call_start", map[string]any{"recipient_id": "alice", "number": tc.number, "direction": "outbound"})
			sid := start.Fields["session_id"].(string)
			if tc.status != 0 {
				if got := statusOf(err); got != tc.status {
					t.Fatalf("the agent's call: %v, want %d", err, tc.status)
				}
			} else {
				r.ok(err)
				defer d.Close()
				var fc *farCall
				select {
				case fc = <-farCalls:
				case <-ctx.Done():
					t.Fatal("the trunk got no call")
				}
				if got := fc.d.InviteRequest.Recipient.User; got != tc.number {
					t.Errorf("the trunk was asked for %q, want %q", got, tc.number)
				}
				heard := listenFor(farTone)
				ar, _ := med.AudioReader()
				aw, _ := med.AudioWriter()
				go heard.listen(ar)
				go talk(d.Context(), aw, agentTone)
				testkit.Eventually(t, 10*time.Second, "the agent and the far end hear each other", func() bool {
					return heard.toneFrames(farTone, alone) >= 25 && fc.heard.toneFrames(agentTone, alone) >= 25
				})
				if tc.farHangsUp {
					r.ok(fc.d.Hangup(ctx))
					select {
					case <-d.Context().Done():
					case <-ctx.Done():
						t.Fatal("the agent's phone was not hung up after the far end hung up")
					}
				} else {
					r.ok(d.Hangup(ctx))
					closed(t, fc.ended, "the far end is hung up after the agent hung up")
				}
			}
			r.waitEvent("recipient.external_call_end", map[string]any{"session_id": sid, "recipient_id": "alice"})
			r.waitEvent("session.delete", map[string]any{"session_id": sid, "disconnect_cause": tc.cause, "hangup_by": tc.hungUp})
		})
	}

	t.Run("a logged-out agent may not call out", func(t *testing.T) {
		_, err := engine.SetStatus.Call(r.ctx, r.eng, acc, engine.SetStatusRequest{RecipientID: "alice", StatusRequest: engine.StatusRequest{Action: engine.ActionLogout}})
		r.ok(err)
		defer func() {
			_, err := engine.SetStatus.Call(r.ctx, r.eng, acc, engine.SetStatusRequest{RecipientID: "alice", StatusRequest: engine.StatusRequest{Action: engine.ActionLogin}})
			r.ok(err)
		}()
		_, _, err = agent.call(r.ctx, r.sip.Addr(), "+15550102", diago.InviteOptions{Username: user, Password: pw})
		if statusOf(err) != 403 {
			t.Fatalf("a logged-out agent's call: %v, want 403", err)
		}
	})
	t.Run("a name that is neither a number nor a colleague", func(t *testing.T) {
		_, _, err := agent.call(r.ctx, r.sip.Addr(), "nobody", diago.InviteOptions{Username: user, Password: pw})
		if statusOf(err) != 404 {
			t.Fatalf("a call to nobody: %v, want 404", err)
		}
	})
}

// An agent calls a colleague's SIP user: the colleague's phone rings, and
// each is on an external call (outbound and inbound) until one hangs up.
func TestAgentCallsAColleaguesPhone(t *testing.T) {
	r := newRig(t, sipfront.Config{})
	aliceUser, alicePw := r.agent("alice", false)
	bobUser, bobPw := r.agent("bob", false)
	bobHeard := listenFor(agentTone)
	bobEnded := make(chan struct{})
	bob := newPhone(t, r.ctx, "udp", func(d *diago.DialogServerSession) {
		defer close(bobEnded)
		answerAndTalk(bobHeard, farTone)(d)
	})
	r.ok(bob.register(r.ctx, r.sip.Addr(), bobUser, bobPw))
	alice := newPhone(t, r.ctx, "udp", nil)
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	d, med, err := alice.call(ctx, r.sip.Addr(), bobUser, diago.InviteOptions{Username: aliceUser, Password: alicePw})
	r.ok(err)
	defer d.Close()
	heard := listenFor(farTone)
	ar, _ := med.AudioReader()
	aw, _ := med.AudioWriter()
	go heard.listen(ar)
	go talk(d.Context(), aw, agentTone)
	out := r.waitEvent("recipient.external_call_start", map[string]any{"recipient_id": "alice", "number": bobUser, "direction": "outbound"})
	in := r.waitEvent("recipient.external_call_start", map[string]any{"recipient_id": "bob", "number": aliceUser, "direction": "inbound"})
	testkit.Eventually(t, 10*time.Second, "alice and bob hear each other", func() bool {
		return heard.toneFrames(farTone, alone) >= 25 && bobHeard.toneFrames(agentTone, alone) >= 25
	})
	r.ok(d.Hangup(ctx))
	closed(t, bobEnded, "bob's phone is hung up after alice hung up")
	r.waitEvent("session.delete", map[string]any{"session_id": out.Fields["session_id"], "hangup_by": "recipient"})
	r.waitEvent("session.delete", map[string]any{"session_id": in.Fields["session_id"], "hangup_by": "caller"})
}
