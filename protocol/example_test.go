package protocol_test

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/ccevents/ccevents/protocol"
)

// A subscribe that resumes a short binding after sequence 40 of a history.
func ExampleRequest() {
	req := protocol.Request{Action: protocol.Subscribe, AuthToken: "eyJhbGci…", RequestID: protocol.NewRequestID("r1"),
		Data: protocol.RequestData{AccountID: "79cc5a70d3079d452131b3166275126c",
			Bindings: []protocol.BindingSpec{{Binding: "qubicle.queue", Since: &protocol.Position{Sequence: 40, Epoch: "88c240de897f0ff8"}}}}}
	msg, _ := json.Marshal(req) // send as one text message
	fmt.Println(string(msg))
	// Output:
	// {"action":"subscribe","auth_token":"eyJhbGci…","request_id":"r1","data":{"account_id":"79cc5a70d3079d452131b3166275126c","bindings":[{"binding":"qubicle.queue","since":{"sequence":40,"epoch":"88c240de897f0ff8"}}]}}
}

// Every message the gateway sends reads with one decode; Action says what
// it is.
func ExampleMessage() {
	frames := []string{
		`{"action":"reply","request_id":"r1","status":"success","data":{"subscribed":["qubicle.queue"],"epoch":"88c240de897f0ff8","recovered":true,"replay_until":94}}`,
		`{"action":"event","subscribed_key":"qubicle.queue","subscription_key":"qubicle.queue.79cc5a70d3079d452131b3166275126c.*.>","routing_key":"qubicle.queue.79cc5a70d3079d452131b3166275126c.sales.join","name":"join","sequence":42,"epoch":"88c240de897f0ff8","data":{"sequence":42}}`,
		`{"action":"notice","data":{"reason":"shutdown","message":"the gateway is shutting down: reconnect, and resume with since to miss nothing"}}`,
	}
	for _, f := range frames {
		var m protocol.Message
		if err := json.Unmarshal([]byte(f), &m); err != nil {
			panic(err)
		}
		switch m.Action {
		case protocol.ReplyAction:
			var d protocol.SubscriptionData
			_ = json.Unmarshal(m.Data, &d)
			fmt.Println("reply to", m.RequestID.Text(), m.Status, d.Subscribed, "recovered:", *d.Recovered)
		case protocol.EventAction:
			fmt.Println("event", m.RoutingKey, "resume from", m.Position())
		case protocol.NoticeAction:
			var n protocol.NoticeData
			_ = json.Unmarshal(m.Data, &n)
			fmt.Println("notice", n.Reason)
		}
	}
	// Output:
	// reply to r1 success [qubicle.queue] recovered: true
	// event qubicle.queue.79cc5a70d3079d452131b3166275126c.sales.join resume from 42@88c240de897f0ff8
	// notice shutdown
}

// Close codes are error values: a client tells a slow-consumer close from
// others with errors.Is.
func ExampleCloseError() {
	var err error = fmt.Errorf("read: %w", &protocol.CloseError{Code: protocol.CloseSlowConsumer, Reason: protocol.ReasonSlowConsumer})
	fmt.Println(errors.Is(err, protocol.CloseSlowConsumer), errors.Is(err, protocol.CloseGoingAway))
	fmt.Println(err)
	// Output:
	// true false
	// read: gateway closed the connection: 4008 slow consumer: reconnect and resume with since
}
