package engine_test

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/engine/cluster"
	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/testkit"
)

// Nodes of the release before commands were declared read an accept's
// recipient, a reject's reason and who hung up from the wire request's
// id/other/value, with no body. A command must still put them there (so
// such a node reads what a new one sends) and read them from there alone
// (so a new node reads what such a node sends) during a rolling upgrade.
func TestCommandsFillAndReadThePreviousReleasesWireSlots(t *testing.T) {
	for _, tc := range []struct {
		cmd  engine.AnyCommand
		args any
		want engine.Slots
	}{
		{engine.Accept, engine.AcceptRequest{SessionID: "c1", RecipientID: "alice"}, engine.Slots{ID: "c1", Other: "alice"}},
		{engine.Reject, engine.RejectRequest{SessionID: "c1", RecipientID: "alice", Reason: event.RejectBusy}, engine.Slots{ID: "c1", Other: "alice", Value: string(event.RejectBusy)}},
		{engine.Hangup, engine.HangupRequest{SessionID: "c1", HangupBy: event.PartyCaller}, engine.Slots{ID: "c1", Value: string(event.PartyCaller)}},
		{engine.EndExternalCall, engine.ExternalCallRequest{RecipientID: "alice", HangupBy: event.PartyRecipient}, engine.Slots{ID: "alice", Value: string(event.PartyRecipient)}},
		{engine.DeleteQueue, engine.QueueRef{QueueID: "sales"}, engine.Slots{ID: "sales"}},
		{engine.Sync, engine.RecipientRef{RecipientID: "alice"}, engine.Slots{ID: "alice"}},
	} {
		t.Run(tc.cmd.Name(), func(t *testing.T) {
			slots, _, err := tc.cmd.EncodeArgs(tc.args)
			ok(t, err)
			if slots != tc.want {
				t.Errorf("slots %+v, want %+v", slots, tc.want)
			}
			got, err := tc.cmd.DecodeArgs(slots, func(any) error { return nil }) // no body
			ok(t, err)
			if !reflect.DeepEqual(got, tc.args) {
				t.Errorf("read back from the slots alone: %+v, want %+v", got, tc.args)
			}
		})
	}
}

// A node answers commands in the previous release's form (no body, the
// arguments in id/other/value), and answers commands whose reply is
// built from the request with no result, as that release did.
func TestNodeAnswersThePreviousReleasesCommands(t *testing.T) {
	b, n := standaloneNode(t, newLogBook(t))
	ctx := t.Context()
	r := n.Router()
	must[engine.Queue](t)(engine.CreateQueue.Call(ctx, r, acc, engine.QueueConfig{ID: "sales", Name: "Sales"}))
	must[engine.Recipient](t)(engine.CreateRecipient.Call(ctx, r, acc, engine.RecipientConfig{ID: "alice", Queues: []string{"sales"}}))
	must[engine.Recipient](t)(engine.SetStatus.Call(ctx, r, acc, engine.SetStatusRequest{RecipientID: "alice", StatusRequest: engine.StatusRequest{Action: engine.ActionLogin}}))
	must[engine.Call](t)(engine.Arrive.Call(ctx, r, acc, engine.Arrival{SessionID: "c1", QueueID: "sales"}))

	old := func(t *testing.T, req string) (result json.RawMessage, refusal string) {
		t.Helper()
		var rep struct {
			Result json.RawMessage `json:"result"`
			Error  *struct {
				Message string `json:"message"`
			} `json:"error"`
		}
		// The node dispatches as soon as the call arrives; its offer may
		// still be on its way, so ask until alice rings (or 10 s have
		// passed: then the last refusal is what the case checks).
		testkit.Until(t.Context(), 10*time.Second, func() bool {
			m, err := b.Conn().Request(cluster.CommandSubject(acc), []byte(req), 10*time.Second)
			ok(t, err)
			rep.Result, rep.Error = nil, nil
			ok(t, json.Unmarshal(m.Data, &rep))
			return rep.Error == nil || !strings.Contains(rep.Error.Message, "not ringing anyone")
		})
		if rep.Error != nil {
			return rep.Result, rep.Error.Message
		}
		return rep.Result, ""
	}
	for _, tc := range []struct {
		name, req, refusal string
	}{
		{"accept names its recipient in other", `{"op":"accept","account_id":"` + acc + `","id":"c1","other":"bob"}`, "recipient bob does not exist"},
		{"accept", `{"op":"accept","account_id":"` + acc + `","id":"c1","other":"alice"}`, ""},
		{"hangup names its party in value", `{"op":"hangup","account_id":"` + acc + `","id":"c1","value":"nobody"}`, "hangup_by must be"},
		{"hangup", `{"op":"hangup","account_id":"` + acc + `","id":"c1","value":"caller"}`, ""},
		{"sync", `{"op":"sync","account_id":"` + acc + `","id":"alice"}`, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			result, refusal := old(t, tc.req)
			if tc.refusal == "" && refusal != "" || !strings.Contains(refusal, tc.refusal) {
				t.Fatalf("refusal %q, want one containing %q", refusal, tc.refusal)
			}
			if len(result) != 0 {
				t.Errorf("result %s, want none (the previous release sent none)", result)
			}
		})
	}
}
