package sipfront_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/sipfront"
	"github.com/ccevents/ccevents/internal/testkit"
)

// When ccevents ends a call, its BYE tells each phone why, as a Q.850
// cause (RFC 3326) with the catalogue's name as text.
func TestCcEventsTellsPhonesWhyItEndedACall(t *testing.T) {
	for _, tc := range []struct {
		name   string
		cfg    sipfront.Config
		end    func(r *rig, b *bridged)
		reason string
		cause  string // of session.delete
		by     string
		told   []string // the phones ccevents sends a BYE to; both when empty
	}{
		{
			name:   "the caller's audio stops",
			cfg:    sipfront.Config{MediaTimeout: 2 * time.Second},
			end:    func(r *rig, b *bridged) { b.callerQuiet() },
			reason: `Q.850;cause=102;text="MEDIA_TIMEOUT"`, cause: "MEDIA_TIMEOUT", by: "system",
		},
		{
			name: "ccevents shuts down",
			end: func(r *rig, b *bridged) {
				ctx, cancel := context.WithTimeout(r.ctx, 15*time.Second)
				defer cancel()
				r.ok(r.sip.Close(ctx))
			},
			reason: `Q.850;cause=41;text="SYSTEM_SHUTDOWN"`,
		},
		{
			name: "the engine hangs the call up",
			end: func(r *rig, b *bridged) {
				r.ok(do(r, engine.Hangup, engine.HangupRequest{SessionID: b.sid, HangupBy: "system"}))
			},
			reason: `Q.850;cause=16;text="NORMAL_CLEARING"`, cause: "NORMAL_CLEARING", by: "system",
		},
		{
			name: "the caller hangs up saying why",
			end: func(r *rig, b *bridged) {
				d := b.caller
				bye := sip.NewRequest(sip.BYE, d.InviteResponse.Contact().Address)
				bye.AppendHeader(sip.NewHeader("Reason", `Q.850;cause=17;text="User busy"`))
				ctx, cancel := context.WithTimeout(r.ctx, 10*time.Second)
				defer cancel()
				r.ok(d.WriteBye(ctx, bye))
			},
			told:   []string{"agent"},
			reason: `Q.850;cause=17;text="USER_BUSY"`, cause: "USER_BUSY", by: "caller",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newRig(t, tc.cfg)
			b := r.bridgedCall()
			tc.end(r, b)
			for _, p := range []struct {
				name  string
				phone *phone
			}{{"caller", b.callerPhone}, {"agent", b.agentPhone}} {
				if tc.told != nil && !slices.Contains(tc.told, p.name) {
					continue
				}
				testkit.Eventually(t, 15*time.Second, "the "+p.name+"'s phone gets a BYE", func() bool { return len(p.phone.byeReasons()) > 0 })
				if got := p.phone.byeReasons(); !slices.Equal(got, []string{tc.reason}) {
					t.Errorf("the %s's phone got BYEs with Reason %q, want one with %q", p.name, got, tc.reason)
				}
			}
			if tc.cause != "" {
				r.waitEvent("session.delete", map[string]any{"session_id": b.sid, "disconnect_cause": tc.cause, "hangup_by": tc.by})
			}
		})
	}
}
