package gateway

import (
	"fmt"
	"strings"
	"testing"
	"time"
)

// subscribeNoToken sends a subscribe without auth_token and returns the reply.
func (c *client) subscribeNoToken(account, binding string) (msg, replyFields) {
	c.t.Helper()
	c.send(fmt.Sprintf(`{"action":"subscribe","request_id":"n","data":{"account_id":%q,"binding":%q}}`, account, binding))
	return c.reply()
}

func TestSocketAuthenticatedOnceStillChecksEveryToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	a, b := e.account(""), e.account("")
	c := e.dial()

	// Before any token, one is required.
	if m, f := c.subscribeNoToken(a, "qubicle.queue"); m.Status != "error" || f.Message != "auth_token is required (once per connection): get one with PUT /v2/api_auth" {
		t.Fatalf("tokenless subscribe on a fresh socket: %s", m.raw)
	}
	// A ping with a token authenticates the socket, as Kazoo's do.
	c.send(fmt.Sprintf(`{"action":"ping","request_id":"p","auth_token":%q}`, e.token(a)))
	if m, _ := c.reply(); m.Status != "success" {
		t.Fatalf("ping with a token: %s", m.raw)
	}
	if m, _ := c.subscribeNoToken(a, "qubicle.queue"); m.Status != "success" {
		t.Fatalf("tokenless subscribe after the ping: %s", m.raw)
	}
	// A bad token is refused and leaves the socket's token as it was.
	c.send(fmt.Sprintf(`{"action":"subscribe","request_id":"g","auth_token":"garbage","data":{"account_id":%q,"binding":"qubicle.session"}}`, a))
	if m, f := c.reply(); m.Status != "error" || !strings.HasPrefix(f.Message, "failed to authenticate token: ") {
		t.Fatalf("garbage token: %s", m.raw)
	}
	if m, _ := c.subscribeNoToken(a, "qubicle.session"); m.Status != "success" {
		t.Fatalf("tokenless subscribe after a refused token: %s", m.raw)
	}
	// A token of another account is checked for what it may see, and from
	// then on is the socket's.
	c.send(fmt.Sprintf(`{"action":"subscribe","request_id":"o","auth_token":%q,"data":{"account_id":%q,"binding":"qubicle.recipient"}}`, e.token(b), a))
	if m, f := c.reply(); m.Status != "error" || f.Message != "this auth_token may not see account "+a {
		t.Fatalf("another account's token on a: %s", m.raw)
	}
	if m, f := c.subscribeNoToken(a, "qubicle.recipient"); m.Status != "error" || f.Message != "this auth_token may not see account "+a {
		t.Fatalf("tokenless subscribe on a after b's token: %s", m.raw)
	}
	if m, f := c.subscribeNoToken(b, "qubicle.recipient"); m.Status != "success" || !equalStrings(f.Subscribed, "qubicle.queue", "qubicle.session", "qubicle.recipient") {
		t.Fatalf("tokenless subscribe on b: %s", m.raw)
	}
	// Events flow on both accounts, each under the client's own key.
	e.publish("qubicle.recipient." + b + ".R1.ready")
	if ev := c.event(); ev.SubscribedKey != "qubicle.recipient" || ev.RoutingKey != "qubicle.recipient."+b+".R1.ready" {
		t.Fatalf("got %s", ev.raw)
	}
}

func TestSocketTokenExpiryIsEnforced(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	acc := e.account("")
	tok, exp := e.shortToken(acc)
	c := e.dial()
	c.send(fmt.Sprintf(`{"action":"ping","request_id":"p","auth_token":%q}`, tok))
	if m, _ := c.reply(); m.Status != "success" {
		t.Fatalf("ping: %s", m.raw)
	}
	time.Sleep(time.Until(exp)) // the socket's token is now past its expiry
	m, f := c.subscribeNoToken(acc, "qubicle.queue")
	want := "failed to authenticate token: the auth_token this connection authenticated with expired at " + exp.UTC().Format(time.RFC3339)
	if m.Status != "error" || !strings.HasPrefix(f.Message, want) {
		t.Fatalf("tokenless subscribe after expiry: %s, want an error beginning %q", m.raw, want)
	}
	// A fresh token brings the socket back.
	if f := c.subscribe(e.token(acc), acc, "qubicle.queue"); !equalStrings(f.Subscribed, "qubicle.queue") {
		t.Fatalf("subscribed %v", f.Subscribed)
	}
}

func TestRefreshedTokenIsTheSocketsToken(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	acc := e.account("")
	tok, exp := e.shortToken(acc)
	c := e.dial()
	c.subscribe(tok, acc, "qubicle.queue")
	c.send(fmt.Sprintf(`{"action":"refresh","request_id":"r","auth_token":%q}`, e.token(acc)))
	if m, _ := c.reply(); m.Status != "success" {
		t.Fatalf("refresh: %s", m.raw)
	}
	time.Sleep(time.Until(exp)) // the first token is past its expiry
	if m, _ := c.subscribeNoToken(acc, "qubicle.session"); m.Status != "success" {
		t.Fatalf("tokenless subscribe after refresh: %s", m.raw)
	}
}
