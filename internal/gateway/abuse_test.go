package gateway

import (
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/ccevents/ccevents/internal/limit"
	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/ccevents/ccevents/internal/wstest"
	"github.com/ccevents/ccevents/protocol"
)

func TestSubscribeFloodIsRefusedWithItsRate(t *testing.T) {
	// A rate this low refills nothing during the test: the burst is all.
	e := newEnv(t, Config{SubscribeRate: 0.001, SubscribeBurst: 3})
	acc := e.account("")
	tok := e.token(acc)
	c := e.dial()
	c.Subscribe(tok, acc, "qubicle.queue."+acc+".Q1")
	c.Subscribe(tok, acc, "qubicle.queue."+acc+".Q2")
	c.Send(fmt.Sprintf(`{"action":"unsubscribe","request_id":"u","data":{"binding":"qubicle.queue.%s.Q2"}}`, acc))
	if m, _ := c.Reply(); m.Status != "success" {
		t.Fatalf("third request within the burst: %s", m.Raw)
	}
	for _, action := range []string{"subscribe", "unsubscribe"} {
		c.Send(fmt.Sprintf(`{"action":%q,"request_id":"f","auth_token":%q,"data":{"account_id":%q,"binding":"qubicle.queue.%s.Q3"}}`, action, tok, acc, acc))
		msg := fmt.Sprintf("too many %s requests; at most 0.001 per second", action)
		unsubscribed := ""
		if action == "unsubscribe" {
			unsubscribed = `"unsubscribed":[],`
		}
		want := fmt.Sprintf(`{"action":"reply","request_id":"f","status":"error","data":{%s"subscribed":["qubicle.queue.%s.Q1"],"errors":[%q],"message":%q}}`, unsubscribed, acc, msg, msg)
		if m := c.NextMsg(); string(m.Raw) != want {
			t.Fatalf("%s beyond the rate\n got %s\nwant %s", action, m.Raw, want)
		}
	}
	c.Send(fmt.Sprintf(`{"action":"refresh","request_id":"f","auth_token":%q}`, tok))
	if m := c.NextMsg(); !strings.Contains(string(m.Raw), `"too many refresh requests; at most 0.001 per second"`) {
		t.Fatalf("refresh beyond the rate: %s", m.Raw)
	}
	// Pings are not limited, and the connection keeps its subscription.
	c.Ping()
	e.publish("qubicle.queue." + acc + ".Q1.join")
	if ev := c.Event(); ev.RoutingKey != "qubicle.queue."+acc+".Q1.join" {
		t.Fatalf("got %s", ev.Raw)
	}
	if n := e.metric("ccevents_ws_refused_total", "reason", refuseSubscribeRate); n != 3 {
		t.Fatalf("subscribe_rate refusals counted %v, want 3", n)
	}
	// Another connection has its own budget.
	e.dial().Subscribe(tok, acc, "qubicle.queue."+acc+".Q1")
}

func TestAuthFailuresFromOneAddressMakeItWait(t *testing.T) {
	e := newEnv(t, Config{AuthBackoff: limit.BackoffConfig{Failures: 3, Initial: time.Hour}})
	acc := e.account("")
	tok := e.token(acc)
	c := e.dial()
	sub := func(c *wstest.Conn, token string) (wstest.Msg, protocol.SubscriptionData) {
		c.Send(fmt.Sprintf(`{"action":"subscribe","request_id":"a","auth_token":%q,"data":{"account_id":%q,"binding":"qubicle.queue.%s.*"}}`, token, acc, acc))
		return c.Reply()
	}
	for i := range 3 {
		if _, f := sub(c, "not-a-token"); len(f.Errors) != 1 || !strings.HasPrefix(f.Errors[0], "failed to authenticate token: auth token is not valid") {
			t.Fatalf("failure %d answered %+v", i+1, f)
		}
	}
	// Now even a good token is not checked, on this connection or a new
	// one from the same address.
	const wait = "too many failed auth attempts from your address; try again in 3600 s"
	for _, cl := range []*wstest.Conn{c, e.dial()} {
		m, _ := sub(cl, tok)
		want := fmt.Sprintf(`{"action":"reply","request_id":"a","status":"error","data":{"subscribed":[],"errors":[%q],"message":%q,"retry_after":3600}}`, wait, wait)
		if string(m.Raw) != want {
			t.Fatalf("subscribe while waiting\n got %s\nwant %s", m.Raw, want)
		}
		cl.Send(fmt.Sprintf(`{"action":"refresh","request_id":"a","auth_token":%q}`, tok))
		if m := cl.NextMsg(); !strings.Contains(string(m.Raw), `"retry_after":3600`) {
			t.Fatalf("refresh while waiting: %s", m.Raw)
		}
		cl.Ping()
	}
	if n := e.metric("ccevents_ws_refused_total", "reason", refuseAuthBackoff); n != 4 {
		t.Fatalf("auth_backoff refusals counted %v, want 4", n)
	}
}

func TestOriginAllowList(t *testing.T) {
	e := newEnv(t, Config{AllowedOrigins: []string{"https://wallboard.example.com", "https://*.agents.example.com"}})
	tests := []struct {
		origin string // "" sends none
		ok     bool
	}{
		{"", true},
		{"https://wallboard.example.com", true},
		{"https://WALLBOARD.example.com:443", true},
		{"https://eu.agents.example.com", true},
		{"http://wallboard.example.com", false},
		{"https://evil.example.net", false},
		{"https://wallboard.example.com.evil.net", false},
		{"https://agents.example.com", false},
		{"null", false},
	}
	refused := 0
	for _, tt := range tests {
		t.Run(tt.origin, func(t *testing.T) {
			var h http.Header
			if tt.origin != "" {
				h = http.Header{"Origin": {tt.origin}}
			}
			nc, _, _, err := (&ws.Dialer{Header: ws.HandshakeHeaderHTTP(h)}).Dial(t.Context(), e.url)
			if tt.ok {
				if err != nil {
					t.Fatalf("origin %q refused: %v", tt.origin, err)
				}
				nc.Close()
				return
			}
			refused++
			var se ws.StatusError
			if !errors.As(err, &se) || int(se) != http.StatusForbidden {
				if nc != nil {
					nc.Close()
				}
				t.Fatalf("origin %q: got %v, want HTTP 403", tt.origin, err)
			}
		})
	}
	if n := e.metric("ccevents_ws_refused_total", "reason", refuseOrigin); n != float64(refused) {
		t.Fatalf("origin refusals counted %v, want %d", n, refused)
	}
}

func TestGatewayRefusesABadOriginPattern(t *testing.T) {
	e := newEnv(t, Config{})
	_, err := New(Config{AllowedOrigins: []string{"https://*.com"}}, e.bus, e.auth)
	if err == nil || !strings.Contains(err.Error(), `allowed origin "https://*.com"`) {
		t.Fatalf("New with a bad origin pattern: %v", err)
	}
}

func TestNestingBombIsRefusedWithoutClosing(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.dial()
	msg := "the message is nested more than 8 levels deep; a request needs at most 5"
	want := fmt.Sprintf(`{"action":"reply","status":"error","data":{"errors":[%q],"message":%q}}`, msg, msg)
	for _, bomb := range []string{
		`{"action":"ping","x":[[[[[[[[[]]]]]]]]]}`,
		`{"action":"ping","x":` + strings.Repeat("[", 60_000),
		strings.Repeat(`{"a":`, 9_000),
	} {
		c.Send(bomb)
		if m := c.NextMsg(); wstest.DropGeneratedID(t, m.Raw) != want {
			t.Fatalf("bomb of %d bytes answered %s", len(bomb), m.Raw)
		}
	}
	// Brackets inside strings are not nesting.
	c.Send(`{"action":"ping","request_id":"[[[[[[[[[[[[{{{{{{{{{{\"[[[["}`)
	if m := c.NextMsg(); m.Status != "success" {
		t.Fatalf("brackets in a string were counted: %s", m.Raw)
	}
	if n := e.metric("ccevents_ws_refused_total", "reason", refuseNesting); n != 3 {
		t.Fatalf("nesting refusals counted %v, want 3", n)
	}
}

func TestAbandonedHandshakesAreCounted(t *testing.T) {
	e := newEnv(t, Config{HandshakeTimeout: 50 * time.Millisecond})
	e.stallHandshake("GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\n") // and nothing more
	testkit.Eventually(t, waitLong, "the stalled handshake to be counted", func() bool {
		return e.metric("ccevents_ws_refused_total", "reason", refuseHandshake) == 1
	})
	// A completed websocket handshake is not counted.
	c := e.dial()
	c.Ping()
	c.NetConn().Close()
	testkit.Eventually(t, waitLong, "the connection to be forgotten", func() bool { return e.metric("ccevents_ws_connections") == 0 })
	if n := e.metric("ccevents_ws_refused_total", "reason", refuseHandshake); n != 1 {
		t.Fatalf("handshake_incomplete counted %v after a good connection, want 1", n)
	}
}

func TestConnectionsBeyondTheListenersShareAreAnswered503(t *testing.T) {
	e := newEnv(t, Config{MaxConns: 2})
	first, second := e.dial(), e.dial()
	first.Ping()
	second.Ping()
	// Connections kept inside the listener's limits still offer their
	// socket to the shared flushers.
	e.srv.mu.Lock()
	for c := range e.srv.conns {
		if c.raw == nil {
			t.Error("an admitted plain TCP connection has no raw socket for the flushers")
		}
	}
	e.srv.mu.Unlock()

	_, _, _, err := ws.Dial(t.Context(), e.url)
	var status ws.StatusError
	if !errors.As(err, &status) || int(status) != http.StatusServiceUnavailable {
		t.Fatalf("third connection: %v, want HTTP 503", err)
	}
	if n := e.metric("ccevents_ws_refused_total", "reason", refuseMaxConns); n != 1 {
		t.Errorf("max_conns refusals %v, want 1", n)
	}
	first.NetConn().Close()
	testkit.Eventually(t, waitLong, "the closed connection's place to be free", func() bool {
		c, _, _, err := ws.Dial(t.Context(), e.url)
		if err != nil {
			return false
		}
		c.Close()
		return true
	})
}
