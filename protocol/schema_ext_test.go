package protocol_test

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"

	"github.com/ccevents/ccevents/protocol"
	"github.com/santhosh-tekuri/jsonschema/v6"
)

// What the protocol's types encode is valid under the schemas beside them.
func TestMessagesTheTypesEncodeAreValidUnderTheirSchemas(t *testing.T) {
	seq, recovered := uint64(48), false
	examples := map[string][]any{
		"subscribe": {protocol.Request{Action: protocol.Subscribe, AuthToken: "t", RequestID: protocol.NewRequestID("r1"),
			Data: protocol.RequestData{AccountID: strings.Repeat("ab", 16), Bindings: []protocol.BindingSpec{{Binding: "qubicle.queue"}},
				Since: &protocol.Position{Sequence: 40, Epoch: "e"}}}},
		"unsubscribe": {protocol.Request{Action: protocol.Unsubscribe, Data: protocol.RequestData{AccountID: strings.Repeat("ab", 16), Binding: "qubicle.queue"}}},
		"ping":        {protocol.Request{Action: protocol.Ping, RequestID: protocol.NewRequestID("p")}},
		"refresh":     {protocol.Request{Action: protocol.Refresh, AuthToken: "t"}},
		"reply": {
			protocol.Reply{Action: protocol.ReplyAction, RequestID: protocol.NewRequestID("r1"), Status: protocol.StatusSuccess,
				Data: protocol.SubscriptionData{Subscribed: []string{"qubicle.queue"}, Epoch: "e", Recovered: &recovered, ReplayUntil: &seq, Message: "why"}},
			protocol.Reply{Action: protocol.ReplyAction, RequestID: protocol.NewRequestID("r2"), Status: protocol.StatusError,
				Data: (&protocol.Error{Kind: protocol.ErrAuth, Message: protocol.AuthFailedPrefix + "expired", RetryAfter: 3}).Data()},
			protocol.Reply{Action: protocol.ReplyAction, RequestID: protocol.NewRequestID("r3"), Status: protocol.StatusSuccess,
				Data: protocol.RefreshData{ExpiresAt: "2026-12-06T10:00:00Z", Accounts: []string{"a"}}},
			protocol.Reply{Action: protocol.ReplyAction, RequestID: protocol.NewRequestID("r4"), Status: protocol.StatusSuccess, Data: protocol.Pong()},
		},
		"notice": {protocol.ShutdownNotice(), protocol.Notice{Action: protocol.NoticeAction, Data: protocol.NoticeData{
			Reason: protocol.NoticeTokenExpiring, Message: "m", AccountID: "a", ExpiresAt: "2026-12-06T10:00:00Z"}}},
	}
	for _, m := range protocol.MessageSchemas() {
		raw, err := json.Marshal(m.Payload)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := jsonschema.UnmarshalJSON(bytes.NewReader(raw))
		if err != nil {
			t.Fatal(err)
		}
		c := jsonschema.NewCompiler()
		c.DefaultDraft(jsonschema.Draft7)
		url := "file:///" + m.ID + ".json"
		if err := c.AddResource(url, doc); err != nil {
			t.Fatal(err)
		}
		sch, err := c.Compile(url)
		if err != nil {
			t.Fatalf("%s: %v", m.ID, err)
		}
		if len(examples[m.ID]) == 0 {
			t.Errorf("no example of %s", m.ID)
		}
		for _, ex := range examples[m.ID] {
			p, _ := json.Marshal(ex)
			v, err := jsonschema.UnmarshalJSON(bytes.NewReader(p))
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(v); err != nil {
				t.Errorf("%s %s: %v", m.ID, p, err)
			}
		}
	}
}
