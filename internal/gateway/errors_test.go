package gateway

import (
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/ccevents/ccevents/internal/wstest"
	"github.com/ccevents/ccevents/protocol"
	"github.com/gobwas/ws"
)

// TestRequestErrorsAreExplainedAndKeepTheConnection sends every kind of bad
// request and checks the exact reply a user sees; after each one the
// connection still answers.
func TestRequestErrorsAreExplainedAndKeepTheConnection(t *testing.T) {
	e := newEnv(t, Config{})
	acc := e.account("")
	other := e.account("")
	child := e.account(acc)
	tok := e.token(acc)
	childTok := e.token(child)
	expired := e.token(acc)
	e.clock.Store(int64(2 * time.Hour)) // every token issued so far is past its hour
	tok = e.token(acc)
	childTok = e.token(child)

	sub := func(token, account string, data string) string {
		return fmt.Sprintf(`{"action":"subscribe","request_id":"r","auth_token":%q,"data":{"account_id":%q,%s}}`, token, account, data)
	}
	fail := func(subscribed string, errs ...string) string {
		q := make([]string, len(errs))
		for i, e := range errs {
			q[i] = fmt.Sprintf("%q", e)
		}
		return fmt.Sprintf(`{"action":"reply","request_id":"r","status":"error","data":{"subscribed":[%s],"errors":[%s],"message":%s}}`, subscribed, strings.Join(q, ","), q[0])
	}
	plain := func(id, msg string) string {
		return fmt.Sprintf(`{"action":"reply",%s"status":"error","data":{"errors":[%q],"message":%q}}`, id, msg, msg)
	}
	queues := fmt.Sprintf("qubicle.queue.%s.*", acc)

	tests := []struct {
		name, send, want string
	}{
		{"not JSON", `{"action":`, plain("", "the message is not valid JSON (unexpected end of JSON input at byte 10)")},
		{"not an object", `[1,2]`, plain("", `the message must be a JSON object like {"action": "subscribe", "auth_token": "…", "data": {…}}`)},
		{"no action", `{"request_id":"r"}`, plain(`"request_id":"r",`, `"action" is required: subscribe, unsubscribe, refresh or ping`)},
		{"unknown action", `{"action":"subscribe_all","request_id":"r"}`, plain(`"request_id":"r",`, `unknown action "subscribe_all": use subscribe, unsubscribe, refresh or ping`)},
		{"field of the wrong type", `{"action":"subscribe","data":{"binding":5}}`, plain("", "data.binding must be a string, got number")},
		{"bindings entry of the wrong type", `{"action":"subscribe","data":{"bindings":[true]}}`, plain("", `each entry of data.bindings must be a binding string or {"binding": "…", "since": {"sequence": N, "epoch": "…"}}`)},
		{"negative since", `{"action":"subscribe","data":{"since":{"sequence":-1}}}`, plain("", "data.since.sequence must be a whole number of 0 or more, got number -1")},
		{"no token", fmt.Sprintf(`{"action":"subscribe","request_id":"r","data":{"account_id":%q,"binding":%q}}`, acc, queues),
			fail("", "auth_token is required (once per connection): get one with PUT /v2/api_auth")},
		{"garbage token", sub("garbage", acc, `"binding":"`+queues+`"`),
			fail("", "failed to authenticate token: auth token is not valid: not a well-formed JWT")},
		{"expired token", sub(expired, acc, `"binding":"`+queues+`"`),
			fail("", "failed to authenticate token: auth token has expired at <time>")},
		{"no account", sub(tok, "", `"binding":"`+queues+`"`),
			fail("", "data.account_id is required: the account whose events to receive")},
		{"malformed account", sub(tok, "ACME", `"binding":"`+queues+`"`),
			fail("", `data.account_id must be an account id (32 lowercase hex characters), got "ACME"`)},
		{"foreign account", sub(tok, other, `"binding":"qubicle.queue.`+other+`.*"`),
			fail("", "this auth_token may not see account "+other)},
		{"child token on parent", sub(childTok, acc, `"binding":"`+queues+`"`),
			fail("", "this auth_token may not see account "+acc)},
		{"no binding", sub(tok, acc, `"bindings":[]`),
			fail("", `data.binding or data.bindings is required, e.g. "binding": "qubicle.queue.`+acc+`.*"`)},
		{"binding of another account", sub(tok, acc, `"binding":"qubicle.queue.`+child+`.*"`),
			fail("", fmt.Sprintf("binding %q must name account %s (data.account_id), got %s", "qubicle.queue."+child+".*", acc, child))},
		{"wildcard account", sub(tok, acc, `"binding":"qubicle.queue.*.Q1"`),
			fail("", `binding "qubicle.queue.*.Q1": the account segment must be a literal account id, got "*"`)},
		{"hash account", sub(tok, acc, `"binding":"qubicle.queue.#"`),
			fail("", `binding "qubicle.queue.#": the account segment must be a literal account id, got "#"`)},
		{"unknown family", sub(tok, acc, `"binding":"qubicle.agent.`+acc+`.*"`),
			fail("", fmt.Sprintf(`binding "qubicle.agent.%s.*": unknown family "agent" (expected queue, recipient, session, stats or *)`, acc))},
		{"unknown event", sub(tok, acc, `"binding":"qubicle.queue.`+acc+`.*.jion"`),
			fail("", fmt.Sprintf(`binding "qubicle.queue.%s.*.jion": unknown queue event "jion" (known: create, delete, join, leave, delivered)`, acc))},
		{"unsubscribe nothing", `{"action":"unsubscribe","request_id":"r","data":{}}`,
			`{"action":"reply","request_id":"r","status":"error","data":{"unsubscribed":[],"subscribed":[],"errors":["data.binding or data.bindings is required: the bindings to unsubscribe"],"message":"data.binding or data.bindings is required: the bindings to unsubscribe"}}`},
		{"unsubscribe what is not subscribed: nothing to remove, as in Kazoo", fmt.Sprintf(`{"action":"unsubscribe","request_id":"r","data":{"binding":%q}}`, queues),
			`{"action":"reply","request_id":"r","status":"success","data":{"unsubscribed":[],"subscribed":[]}}`},
		{"unsubscribe a malformed binding", `{"action":"unsubscribe","request_id":"r","data":{"binding":"qubicle.queue.*"}}`,
			`{"action":"reply","request_id":"r","status":"error","data":{"unsubscribed":[],"subscribed":[],"errors":["binding \"qubicle.queue.*\": the account segment must be a literal account id, got \"*\""],"message":"binding \"qubicle.queue.*\": the account segment must be a literal account id, got \"*\""}}`},
	}
	c := e.dial()
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.SetTest(t)
			c.Send(tt.send)
			got := string(c.Must())
			if !strings.Contains(tt.want, `"request_id"`) {
				got = wstest.DropGeneratedID(t, []byte(got))
			}
			if i := strings.Index(tt.want, "<time>"); i >= 0 {
				prefix := tt.want[:i]
				if !strings.HasPrefix(got, prefix) {
					t.Fatalf("reply\n got %s\nwant prefix %s", got, prefix)
				}
			} else if got != tt.want {
				t.Fatalf("reply\n got %s\nwant %s", got, tt.want)
			}
			c.Ping()
		})
	}
	c.SetTest(t)
	if n := e.metric("ccevents_ws_errors_total", "kind", string(protocol.ErrAuth)); n != 3 {
		t.Errorf("auth errors counted %v, want 3", n)
	}
}

func TestPartlyValidSubscribeAppliesTheValidBindings(t *testing.T) {
	e := newEnv(t, Config{})
	acc := e.account("")
	c := e.dial()
	good := "qubicle.queue." + acc + ".*"
	c.Send(fmt.Sprintf(`{"action":"subscribe","request_id":"p","auth_token":%q,"data":{"account_id":%q,"bindings":[%q,"qubicle.queue.%s.bad id"]}}`, e.token(acc), acc, good, acc))
	m, _ := c.Reply()
	msg := fmt.Sprintf(`binding "qubicle.queue.%s.bad id": segment 4 must be an id (1 to 64 letters, digits, '_' or '-'), '*' or '#', got "bad id"`, acc)
	want := fmt.Sprintf(`{"action":"reply","request_id":"p","status":"error","data":{"subscribed":[%q],"epoch":%q,"sequence":0,"errors":[%q],"message":%q}}`, good, e.bus.Epoch(), msg, msg)
	if string(m.Raw) != want {
		t.Fatalf("reply\n got %s\nwant %s", m.Raw, want)
	}
	e.publish("qubicle.queue." + acc + ".Q1.join")
	if ev := c.Event(); ev.SubscribedKey != good {
		t.Fatalf("got %s", ev.Raw)
	}
}

func TestBindingLimitPerConnection(t *testing.T) {
	e := newEnv(t, Config{MaxBindingsPerConn: 2})
	acc := e.account("")
	tok := e.token(acc)
	c := e.dial()
	c.Subscribe(tok, acc, "qubicle.queue."+acc+".Q1")
	c.Send(fmt.Sprintf(`{"action":"subscribe","request_id":"l","auth_token":%q,"data":{"account_id":%q,"bindings":["qubicle.queue.%s.Q2","qubicle.queue.%s.Q3"]}}`, tok, acc, acc, acc))
	_, f := c.Reply()
	wantErr := fmt.Sprintf(`binding "qubicle.queue.%s.Q3": too many bindings on this connection (limit 2); unsubscribe some first`, acc)
	if len(f.Errors) != 1 || f.Errors[0] != wantErr || !equalStrings(f.Subscribed, "qubicle.queue."+acc+".Q1", "qubicle.queue."+acc+".Q2") {
		t.Fatalf("reply %+v", f)
	}
	c.Send(fmt.Sprintf(`{"action":"subscribe","request_id":"l","auth_token":%q,"data":{"account_id":%q,"bindings":["a","b","c"]}}`, tok, acc))
	if _, f := c.Reply(); len(f.Errors) != 1 || f.Errors[0] != "a request may carry at most 2 bindings, got 3" {
		t.Fatalf("reply %+v", f)
	}
}

func equalStrings(got []string, want ...string) bool { return slices.Equal(got, want) }

func TestConnectionLimitPerAccount(t *testing.T) {
	e := newEnv(t, Config{MaxConnsPerAccount: 1})
	acc := e.account("")
	tok := e.token(acc)
	e.dial().Subscribe(tok, acc, "qubicle.queue."+acc+".*")
	c := e.dial()
	c.Send(fmt.Sprintf(`{"action":"subscribe","auth_token":%q,"data":{"account_id":%q,"binding":"qubicle.queue.%s.*"}}`, tok, acc, acc))
	msg := fmt.Sprintf("too many connections subscribed to account %s (limit 1)", acc)
	if m := c.NextMsg(); wstest.DropGeneratedID(t, m.Raw) != fmt.Sprintf(`{"action":"reply","status":"error","data":{"subscribed":[],"errors":[%q],"message":%q}}`, msg, msg) {
		t.Fatalf("got %s", m.Raw)
	}
	c.Ping()
}

func TestConnectionLimitPerAddress(t *testing.T) {
	e := newEnv(t, Config{MaxConnsPerIP: 2})
	a, b := e.dial(), e.dial()
	a.Ping()
	b.Ping()
	// Refused at the upgrade with 429, as Kazoo's blackhole does.
	status, body := wstest.DialRefused(t, e.url)
	if want := "too many connections from your address (limit 2); close some before opening more\n"; status != http.StatusTooManyRequests || body != want {
		t.Fatalf("third connection: %d %q, want 429 %q", status, body, want)
	}
	if n := e.metric("ccevents_ws_refused_total", "reason", refuseConnsPerIP); n != 1 {
		t.Errorf("refusals counted %v, want 1", n)
	}
	// Once one goes, a new one is welcome.
	a.Send(`{"action":"ping"}`)
	a.NetConn().Close()
	testkit.Eventually(t, waitLong, "the closed connection to be forgotten", func() bool { return e.metric("ccevents_ws_connections") == 1 })
	e.dial().Ping()
}

func TestProtocolViolationsCloseWithTheirCode(t *testing.T) {
	e := newEnv(t, Config{MaxFrameBytes: 1024})
	tests := []struct {
		name   string
		op     ws.OpCode
		p      []byte
		code   protocol.CloseCode
		reason string
		metric string // the ccevents_ws_refused_total reason
	}{
		{"oversized message", ws.OpText, []byte(`{"action":"ping","pad":"` + strings.Repeat("x", 2000) + `"}`), protocol.CloseMessageTooBig, "message larger than the limit of 1024 bytes", refuseFrameSize},
		{"binary message", ws.OpBinary, []byte(`{"action":"ping"}`), protocol.CloseUnsupportedData, "binary messages are not supported: send JSON as text", refuseBinary},
		{"invalid UTF-8", ws.OpText, []byte("{\"action\":\"\xff\xfe\"}"), protocol.CloseInvalidUTF8, "text message is not valid UTF-8", refuseUTF8},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.dial()
			c.SetTest(t)
			if err := c.WriteFrame(tt.op, tt.p); err != nil {
				t.Fatal(err)
			}
			if cl := c.ExpectClose(); cl.Code != tt.code || cl.Reason != tt.reason {
				t.Fatalf("closed with %v, want %d %q", cl, tt.code, tt.reason)
			}
			// Counted once the close is under way, which may be just
			// after the client saw the close frame.
			testkit.Eventually(t, waitLong, "the refusal to be counted", func() bool { return e.metric("ccevents_ws_refused_total", "reason", tt.metric) == 1 })
		})
	}
}

func TestFragmentedMessageIsOneRequest(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.dial()
	// A ping from the client in the middle of the fragments is answered.
	frames := []ws.Frame{
		ws.NewFrame(ws.OpText, false, []byte(`{"action":"pi`)),
		ws.NewPingFrame([]byte("hi")),
		ws.NewFrame(ws.OpContinuation, true, []byte(`ng","request_id":"frag"}`)),
	}
	for _, f := range frames {
		if err := ws.WriteFrame(c.NetConn(), ws.MaskFrame(f)); err != nil {
			t.Fatal(err)
		}
	}
	if m := c.NextMsg(); string(m.Raw) != `{"action":"reply","request_id":"frag","status":"success","data":{"pong":true,"response":"pong"}}` {
		t.Fatalf("got %s", m.Raw)
	}
}

func TestKeepaliveClosesPeerThatStopsAnsweringPings(t *testing.T) {
	// The lively client must get a request through every second even on a
	// busy machine; 150 ms was too short under the race detector and load.
	e := newEnv(t, Config{PingInterval: 100 * time.Millisecond, PongTimeout: 900 * time.Millisecond})
	silent, lively := e.dial(), e.dial()
	silent.NoPong = true
	done := make(chan wstest.Closed, 1)
	go func() {
		var cl wstest.Closed
		for {
			if _, err := silent.Next(); err != nil {
				cl, _ = err.(wstest.Closed)
				done <- cl
				return
			}
		}
	}()
	// The lively client answers pings while the silent one is given up.
	var cl wstest.Closed
	for waiting := true; waiting; {
		select {
		case cl = <-done:
			waiting = false
		default:
			lively.Ping()
		}
	}
	if cl.Code != protocol.CloseKeepaliveTimeout || cl.Reason != "nothing received for 1s, not even a pong" {
		t.Fatalf("silent peer closed with %v", cl)
	}
	if silent.Pings == 0 {
		t.Fatal("the server never pinged")
	}
	lively.Ping()
}
