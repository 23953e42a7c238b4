package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
)

func TestEventFrameDecodesAsAnEvent(t *testing.T) {
	tests := []struct {
		name    string
		payload string // the stored payload
		data    string // what the client reads in data
	}{
		{"payload with fields", `{"account_id":"a","queue_id":"q"}`, `{"sequence":42,"account_id":"a","queue_id":"q"}`},
		{"empty payload", `{}`, `{"sequence":42}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := EventFrame{
				SubscribedKey: "qubicle.queue", SubscriptionKey: "qubicle.queue.a.*.>",
				RoutingKey: "qubicle.queue.a.q.join", Name: "join", Sequence: 42, EpochJSON: `"88c240de897f0ff8"`,
				Members: []byte(tt.payload[1:]), EmptyPayload: tt.payload == "{}",
			}
			p := AppendEvent(nil, &f)
			if len(p) != f.Len() {
				t.Fatalf("AppendEvent wrote %d bytes, Len said %d", len(p), f.Len())
			}
			var m Message
			if err := json.Unmarshal(p, &m); err != nil {
				t.Fatalf("frame %s: %v", p, err)
			}
			want := Message{Action: EventAction, Event: Event{
				SubscribedKey: f.SubscribedKey, SubscriptionKey: f.SubscriptionKey, RoutingKey: f.RoutingKey,
				Name: "join", Sequence: 42, Epoch: "88c240de897f0ff8", Data: json.RawMessage(tt.data),
			}}
			if !reflect.DeepEqual(m, want) {
				t.Errorf("frame %s decodes to %+v, want %+v", p, m, want)
			}
		})
	}
}

func TestEventFrameAppendsWithoutAllocating(t *testing.T) {
	f := EventFrame{SubscribedKey: "qubicle.queue", SubscriptionKey: "qubicle.queue.a.*.>", RoutingKey: "qubicle.queue.a.q.join",
		Name: "join", Sequence: 42, EpochJSON: `"e"`, Members: []byte(`"account_id":"a"}`)}
	buf := make([]byte, 0, f.Len())
	if n := testing.AllocsPerRun(100, func() { buf = AppendEvent(buf[:0], &f) }); n != 0 {
		t.Errorf("AppendEvent allocates %v times per frame, want 0", n)
	}
}

func TestRequestsTheSDKSendsReadBackAsTheGatewayReadsThem(t *testing.T) {
	tests := []struct {
		name string
		req  Request
		wire string
	}{
		{"ping", Request{Action: Ping, RequestID: NewRequestID("r1")}, `{"action":"ping","request_id":"r1"}`},
		{"refresh", Request{Action: Refresh, AuthToken: "tok", RequestID: NewRequestID("r2")}, `{"action":"refresh","auth_token":"tok","request_id":"r2"}`},
		{"subscribe live", Request{Action: Subscribe, AuthToken: "tok", RequestID: NewRequestID("r3"),
			Data: RequestData{AccountID: "acc", Bindings: []BindingSpec{{Binding: "qubicle.queue"}}}},
			`{"action":"subscribe","auth_token":"tok","request_id":"r3","data":{"account_id":"acc","bindings":["qubicle.queue"]}}`},
		{"subscribe with since", Request{Action: Subscribe, AuthToken: "tok", RequestID: NewRequestID("r4"),
			Data: RequestData{AccountID: "acc", Bindings: []BindingSpec{{Binding: "qubicle.queue", Since: &Position{Sequence: 7, Epoch: "e"}}, {Binding: "qubicle.session", Since: &Position{Sequence: 9}}}}},
			`{"action":"subscribe","auth_token":"tok","request_id":"r4","data":{"account_id":"acc","bindings":[{"binding":"qubicle.queue","since":{"sequence":7,"epoch":"e"}},{"binding":"qubicle.session","since":{"sequence":9}}]}}`},
		{"unsubscribe", Request{Action: Unsubscribe, RequestID: NewRequestID("r5"), Data: RequestData{AccountID: "acc", Binding: "qubicle.queue"}},
			`{"action":"unsubscribe","request_id":"r5","data":{"account_id":"acc","binding":"qubicle.queue"}}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := json.Marshal(tt.req)
			if err != nil {
				t.Fatal(err)
			}
			if string(p) != tt.wire {
				t.Errorf("encoded %s, want %s", p, tt.wire)
			}
			got, err := ParseRequest(p)
			if err != nil {
				t.Fatalf("ParseRequest(%s): %v", p, err)
			}
			if !reflect.DeepEqual(got, tt.req) {
				t.Errorf("read back %+v, want %+v", got, tt.req)
			}
		})
	}
}

func TestParseRequestAcceptsEveryFormOfSince(t *testing.T) {
	req, err := ParseRequest([]byte(`{"action":"subscribe","data":{"since":40,"binding":"a","bindings":["b",{"binding":"c","since":{"sequence":3,"epoch":"e"}}]}}`))
	if err != nil {
		t.Fatal(err)
	}
	want := []BindingSpec{{Binding: "a"}, {Binding: "b"}, {Binding: "c", Since: &Position{Sequence: 3, Epoch: "e"}}}
	if got := req.Data.Specs(); !reflect.DeepEqual(got, want) || *req.Data.Since != (Position{Sequence: 40}) {
		t.Errorf("Specs() = %+v, since %+v", got, req.Data.Since)
	}
}

func TestParseRequestExplainsWhatToFix(t *testing.T) {
	tests := []struct{ in, want string }{
		{`{"action":`, "the message is not valid JSON (unexpected end of JSON input at byte 10)"},
		{`[1]`, `the message must be a JSON object like {"action": "subscribe", "auth_token": "…", "data": {…}}`},
		{`{"data":{"since":"x"}}`, `"since" must be {"sequence": N, "epoch": "…"} or a sequence number N`},
		{`{"data":{"bindings":[true]}}`, `each entry of data.bindings must be a binding string or {"binding": "…", "since": {"sequence": N, "epoch": "…"}}`},
		{`{"data":{"bindings":[{"binding":1}]}}`, "data.bindings.binding must be a string, got number"},
		{`{"data":{"account_id":7}}`, "data.account_id must be a string, got number"},
		{`{"data":{"since":{"sequence":-1}}}`, "data.since.sequence must be a whole number of 0 or more, got number -1"},
		{`{"data":{"bindings":[{"since":{"sequence":"x"}}]}}`, "data.bindings.since.sequence must be a whole number of 0 or more, got string"},
	}
	for _, tt := range tests {
		_, err := ParseRequest([]byte(tt.in))
		if !errors.Is(err, ErrBadRequest) || err.Error() != tt.want {
			t.Errorf("ParseRequest(%s) = %v, want %q (bad_request)", tt.in, err, tt.want)
		}
	}
}

func TestRequestIDIsEchoedAsItCame(t *testing.T) {
	for _, raw := range []string{`"r1"`, `7`, `"quo\"te"`} {
		req, err := ParseRequest([]byte(`{"action":"ping","request_id":` + raw + `}`))
		if err != nil {
			t.Fatal(err)
		}
		p, _ := json.Marshal(Reply{Action: ReplyAction, RequestID: req.RequestID, Status: StatusSuccess, Data: Pong()})
		if want := `{"action":"reply","request_id":` + raw + `,"status":"success","data":{"pong":true,"response":"pong"}}`; string(p) != want {
			t.Errorf("reply %s, want %s", p, want)
		}
	}
	if got := NewRequestID(`quo"te`).Text(); got != `quo"te` {
		t.Errorf("Text() = %q", got)
	}
	for _, raw := range []string{``, `null`} {
		if !RequestID(raw).IsZero() {
			t.Errorf("RequestID(%q).IsZero() = false", raw)
		}
	}
}

func TestErrorsMatchTheirKindAndCode(t *testing.T) {
	err := fmt.Errorf("subscribe: %w", Errorf(ErrForbidden, "binding %s must name account %s", "x", "y"))
	if !errors.Is(err, ErrForbidden) || errors.Is(err, ErrAuth) || err.Error() != "subscribe: binding x must name account y" {
		t.Errorf("error %v: kind not matched", err)
	}
	closed := fmt.Errorf("read: %w", &CloseError{Code: CloseSlowConsumer, Reason: ReasonSlowConsumer})
	if !errors.Is(closed, CloseSlowConsumer) || errors.Is(closed, CloseGoingAway) {
		t.Errorf("close error %v: code not matched", closed)
	}
	if KindOf(AuthFailedPrefix+"auth token has expired") != ErrAuth || KindOf("binding …") != "" {
		t.Error("KindOf does not read the auth prefix")
	}
}

func TestReplyDataShapesAreKazoos(t *testing.T) {
	seq := uint64(0)
	tests := []struct {
		data any
		want string
	}{
		{SubscriptionData{Subscribed: []string{}}, `{"subscribed":[]}`},
		{SubscriptionData{Unsubscribed: []string{}, Subscribed: []string{"b"}}, `{"unsubscribed":[],"subscribed":["b"]}`},
		{SubscriptionData{Subscribed: []string{"b"}, Epoch: "e", Sequence: &seq}, `{"subscribed":["b"],"epoch":"e","sequence":0}`},
		{(&Error{Kind: ErrAuth, Message: "m", RetryAfter: 3}).Data(), `{"errors":["m"],"message":"m","retry_after":3}`},
		{Pong(), `{"pong":true,"response":"pong"}`},
	}
	for _, tt := range tests {
		p, _ := json.Marshal(tt.data)
		if string(p) != tt.want {
			t.Errorf("%T encodes as %s, want %s", tt.data, p, tt.want)
		}
	}
	if !strings.HasPrefix(AuthFailedPrefix, "failed to authenticate token") {
		t.Error("the auth prefix is not Kazoo's")
	}
}

func TestTooDeep(t *testing.T) {
	tests := []struct {
		in   string
		want bool
	}{
		{`{}`, false},
		{`{"data":{"bindings":[{"since":{"sequence":1}}]}}`, false},
		{`[[[[[[[[]]]]]]]]`, false},
		{`[[[[[[[[[]]]]]]]]]`, true},
		{`{"a":"[[[[[[[[[[[[[["}`, false},
		{`{"a":"\"[[[[[[[[[[[[[["}`, false},
		{`{"a":"\\"}` + strings.Repeat("[", 9), true},
		{`]]]]]]]]]][[[[[[[[`, false}, // invalid JSON is the decoder's to refuse
		{strings.Repeat("[", 9), true},
	}
	for _, tt := range tests {
		if got := tooDeep([]byte(tt.in), MaxDepth); got != tt.want {
			t.Errorf("tooDeep(%.40q) = %v, want %v", tt.in, got, tt.want)
		}
	}
}
