package gateway

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/wstest"
	"github.com/ccevents/ccevents/protocol"
)

// subscribeNoToken sends a subscribe without auth_token and returns the reply.
func subscribeNoToken(c *wstest.Conn, account, binding string) (wstest.Msg, protocol.SubscriptionData) {
	c.T().Helper()
	c.Send(fmt.Sprintf(`{"action":"subscribe","request_id":"n","data":{"account_id":%q,"binding":%q}}`, account, binding))
	return c.Reply()
}

func TestSocketAuthenticatedOnceStillChecksEveryToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	a, b := e.account(""), e.account("")
	c := e.dial()

	// Before any token, one is required.
	if m, f := subscribeNoToken(c, a, "qubicle.queue"); m.Status != "error" || f.Message != "auth_token is required (once per connection): get one with PUT /v2/api_auth" {
		t.Fatalf("tokenless subscribe on a fresh socket: %s", m.Raw)
	}
	// A ping with a token authenticates the socket, as Kazoo's do.
	c.Send(fmt.Sprintf(`{"action":"ping","request_id":"p","auth_token":%q}`, e.token(a)))
	if m, _ := c.Reply(); m.Status != "success" {
		t.Fatalf("ping with a token: %s", m.Raw)
	}
	if m, _ := subscribeNoToken(c, a, "qubicle.queue"); m.Status != "success" {
		t.Fatalf("tokenless subscribe after the ping: %s", m.Raw)
	}
	// A bad token is refused and leaves the socket's token as it was.
	c.Send(fmt.Sprintf(`{"action":"subscribe","request_id":"g","auth_token":"garbage","data":{"account_id":%q,"binding":"qubicle.session"}}`, a))
	if m, f := c.Reply(); m.Status != "error" || !strings.HasPrefix(f.Message, "failed to authenticate token: ") {
		t.Fatalf("garbage token: %s", m.Raw)
	}
	if m, _ := subscribeNoToken(c, a, "qubicle.session"); m.Status != "success" {
		t.Fatalf("tokenless subscribe after a refused token: %s", m.Raw)
	}
	// A token of another account is checked for what it may see, and from
	// then on is the socket's.
	c.Send(fmt.Sprintf(`{"action":"subscribe","request_id":"o","auth_token":%q,"data":{"account_id":%q,"binding":"qubicle.recipient"}}`, e.token(b), a))
	if m, f := c.Reply(); m.Status != "error" || f.Message != "this auth_token may not see account "+a {
		t.Fatalf("another account's token on a: %s", m.Raw)
	}
	if m, f := subscribeNoToken(c, a, "qubicle.recipient"); m.Status != "error" || f.Message != "this auth_token may not see account "+a {
		t.Fatalf("tokenless subscribe on a after b's token: %s", m.Raw)
	}
	if m, f := subscribeNoToken(c, b, "qubicle.recipient"); m.Status != "success" || !equalStrings(f.Subscribed, "qubicle.queue", "qubicle.session", "qubicle.recipient") {
		t.Fatalf("tokenless subscribe on b: %s", m.Raw)
	}
	// Events flow on both accounts, each under the client's own key.
	e.publish("qubicle.recipient." + b + ".R1.ready")
	if ev := c.Event(); ev.SubscribedKey != "qubicle.recipient" || ev.RoutingKey != "qubicle.recipient."+b+".R1.ready" {
		t.Fatalf("got %s", ev.Raw)
	}
}

func TestSocketTokenExpiryIsEnforced(t *testing.T) {
	t.Parallel()
	e, clock, acc, tok, exp := newShortTokenEnv(t)
	c := e.dial()
	c.Send(fmt.Sprintf(`{"action":"ping","request_id":"p","auth_token":%q}`, tok))
	if m, _ := c.Reply(); m.Status != "success" {
		t.Fatalf("ping: %s", m.Raw)
	}
	clock.AdvanceTo(exp) // the socket's token is now past its expiry
	m, f := subscribeNoToken(c, acc, "qubicle.queue")
	want := "failed to authenticate token: the auth_token this connection authenticated with expired at " + exp.UTC().Format(time.RFC3339)
	if m.Status != "error" || !strings.HasPrefix(f.Message, want) {
		t.Fatalf("tokenless subscribe after expiry: %s, want an error beginning %q", m.Raw, want)
	}
	// A fresh token brings the socket back.
	if f := c.Subscribe(e.token(acc), acc, "qubicle.queue"); !equalStrings(f.Subscribed, "qubicle.queue") {
		t.Fatalf("subscribed %v", f.Subscribed)
	}
}

func TestRefreshedTokenIsTheSocketsToken(t *testing.T) {
	t.Parallel()
	e, clock, acc, tok, exp := newShortTokenEnv(t)
	c := e.dial()
	c.Subscribe(tok, acc, "qubicle.queue")
	c.Send(fmt.Sprintf(`{"action":"refresh","request_id":"r","auth_token":%q}`, e.token(acc)))
	if m, _ := c.Reply(); m.Status != "success" {
		t.Fatalf("refresh: %s", m.Raw)
	}
	clock.AdvanceTo(exp) // the first token is past its expiry
	if m, _ := subscribeNoToken(c, acc, "qubicle.session"); m.Status != "success" {
		t.Fatalf("tokenless subscribe after refresh: %s", m.Raw)
	}
}
