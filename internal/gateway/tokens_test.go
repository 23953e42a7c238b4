package gateway

import (
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/ccevents/ccevents/internal/wstest"
	"github.com/ccevents/ccevents/protocol"
)

// shortToken issues a token of account that expires in one to two seconds
// (token times are whole seconds), and returns it with its expiry.
func (e *env) shortToken(account string) (string, time.Time) {
	e.t.Helper()
	tok, claims, err := e.auth.IssueToken(e.ctx, account, 2*time.Second)
	if err != nil {
		e.t.Fatalf("issue token: %v", err)
	}
	return tok, claims.ExpiresAt
}

// newShortTokenEnv is newClockEnv with one account and a short token of it
// (see shortToken), what every test of a token's expiry starts from.
func newShortTokenEnv(t testing.TB) (e *env, clock *testkit.Clock, acc, tok string, exp time.Time) {
	t.Helper()
	e, clock = newClockEnv(t, Config{})
	acc = e.account("")
	tok, exp = e.shortToken(acc)
	return e, clock, acc, tok, exp
}

type noticeFields struct {
	Reason    string `json:"reason"`
	Message   string `json:"message"`
	AccountID string `json:"account_id"`
	ExpiresAt string `json:"expires_at"`
}

// expectTokenNotice reads the next message, which must be the
// token_expiring notice for a token of account expiring at exp.
func expectTokenNotice(c *wstest.Conn, account string, exp time.Time) {
	c.T().Helper()
	m := c.NextMsg()
	var n noticeFields
	if m.Action != "notice" || json.Unmarshal(m.Data, &n) != nil {
		c.T().Fatalf("expected a notice, got %s", m.Raw)
	}
	want := exp.UTC().Format(time.RFC3339)
	if n.Reason != "token_expiring" || n.AccountID != account || n.ExpiresAt != want || !strings.Contains(n.Message, `{"action":"refresh","auth_token":"…"}`) {
		c.T().Fatalf("notice %s, want reason token_expiring for account %s expiring at %s", m.Raw, account, want)
	}
}

func TestExpiringTokenIsNoticedThenEndsTheConnection(t *testing.T) {
	t.Parallel()
	e, clock, acc, tok, exp := newShortTokenEnv(t)
	c := e.dial()
	c.Subscribe(tok, acc, "qubicle.queue."+acc+".*")
	e.publish("qubicle.queue." + acc + ".Q1.join")
	if ev := c.Event(); ev.RoutingKey != "qubicle.queue."+acc+".Q1.join" {
		t.Fatalf("got %s", ev.Raw)
	}
	// The notice comes a tenth of the token's two seconds before expiry;
	// until the expiry the connection stays.
	clock.AdvanceTo(exp.Add(-100 * time.Millisecond))
	expectTokenNotice(c, acc, exp)
	c.Ping()
	clock.Advance(100 * time.Millisecond)
	if cl := c.ExpectClose(); cl.Code != protocol.CloseTokenExpired || cl.Reason != "token expired" {
		t.Fatalf("closed with %v, want 4001 token expired", cl)
	}
	if now := clock.Now(); now.Before(exp) {
		t.Fatalf("closed at %s, before the token expired at %s", now, exp)
	}
	// Counted once the close is under way, which may be just after the
	// client saw the close frame.
	testkit.Eventually(t, waitLong, "the expiry to be counted", func() bool {
		return e.metric("ccevents_ws_refused_total", "reason", refuseTokenExpired) == 1 && e.metric("ccevents_ws_closed_total", "code", "4001") == 1
	})
}

func TestRefreshKeepsSubscriptionsPastTheOldExpiry(t *testing.T) {
	t.Parallel()
	e, clock, acc, tok, exp := newShortTokenEnv(t)
	c := e.dial()
	c.Subscribe(tok, acc, "qubicle.queue."+acc+".*")
	// The notice comes a tenth of the token's two seconds before expiry.
	clock.AdvanceTo(exp.Add(-100 * time.Millisecond))
	expectTokenNotice(c, acc, exp)

	fresh, claims, err := e.auth.IssueToken(e.ctx, acc, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	c.Send(fmt.Sprintf(`{"action":"refresh","request_id":"r","auth_token":%q}`, fresh))
	want := fmt.Sprintf(`{"action":"reply","request_id":"r","status":"success","data":{"expires_at":%q,"accounts":[%q]}}`,
		claims.ExpiresAt.UTC().Format(time.RFC3339), acc)
	if m := c.NextMsg(); string(m.Raw) != want {
		t.Fatalf("refresh\n got %s\nwant %s", m.Raw, want)
	}
	// Past the old expiry the subscription still delivers.
	clock.AdvanceTo(exp.Add(100 * time.Millisecond))
	e.publish("qubicle.queue." + acc + ".Q1.join")
	if ev := c.Event(); ev.RoutingKey != "qubicle.queue."+acc+".Q1.join" {
		t.Fatalf("got %s", ev.Raw)
	}
	c.Ping()
}

func TestSubscribingAgainWithAFreshTokenExtendsTheAccount(t *testing.T) {
	t.Parallel()
	e, clock, acc, tok, exp := newShortTokenEnv(t)
	c := e.dial()
	c.Subscribe(tok, acc, "qubicle.queue."+acc+".Q1")
	// The same binding again, with a token that lives longer.
	c.Subscribe(e.token(acc), acc, "qubicle.queue."+acc+".Q1")
	clock.AdvanceTo(exp.Add(100 * time.Millisecond))
	e.publish("qubicle.queue." + acc + ".Q1.join")
	if ev := c.Event(); ev.RoutingKey != "qubicle.queue."+acc+".Q1.join" {
		t.Fatalf("got %s", ev.Raw)
	}
}

func TestEarliestTokenOfSeveralAccountsDecides(t *testing.T) {
	t.Parallel()
	e, clock := newClockEnv(t, Config{})
	a, b := e.account(""), e.account("")
	short, exp := e.shortToken(b)
	c := e.dial()
	c.Subscribe(e.token(a), a, "qubicle.queue."+a+".*")
	c.Subscribe(short, b, "qubicle.queue."+b+".*")
	clock.AdvanceTo(exp.Add(-100 * time.Millisecond))
	expectTokenNotice(c, b, exp)
	// A refresh with a token of a is for a's subscriptions only.
	c.Send(fmt.Sprintf(`{"action":"refresh","request_id":"r","auth_token":%q}`, e.token(a)))
	if m := c.NextMsg(); m.Status != "success" || !strings.Contains(string(m.Raw), fmt.Sprintf(`"expires_at":%q`, exp.UTC().Format(time.RFC3339))) {
		t.Fatalf("refresh with the other account's token: %s (want success, still expiring at b's expiry)", m.Raw)
	}
	clock.Advance(100 * time.Millisecond)
	if cl := c.ExpectClose(); cl.Code != protocol.CloseTokenExpired {
		t.Fatalf("closed with %v, want 4001", cl)
	}
}

func TestRefreshRefusals(t *testing.T) {
	e := newEnv(t, Config{})
	parent := e.account("")
	child := e.account(parent)
	other := e.account("")
	expired := e.token(child)
	e.clock.Store(int64(2 * time.Hour)) // the token above is now past its hour
	parentTok := e.token(parent)

	idle := e.dial()
	idle.Send(fmt.Sprintf(`{"action":"refresh","request_id":"r","auth_token":%q}`, e.token(child)))
	if m, f := idle.Reply(); m.Status != "error" || f.Message != "there is nothing to refresh: this connection has no subscriptions; subscribe with the new token" {
		t.Fatalf("refresh without subscriptions: %s", m.Raw)
	}

	c := e.dial()
	c.Subscribe(parentTok, child, "qubicle.queue."+child+".*")
	tests := []struct {
		name, token, want string
	}{
		{"no token", "", "refresh needs the new token in auth_token: get one with PUT /v2/api_auth"},
		{"garbage", "garbage", "failed to authenticate token: auth token is not valid: not a well-formed JWT"},
		{"expired", expired, "failed to authenticate token: auth token has expired at "},
		{"an api key", strings.Repeat("ab", 32), "failed to authenticate token: auth token is not valid: this is an API key, not an auth token; exchange it for one with PUT /v2/api_auth"},
		{"token of another account", e.token(other),
			fmt.Sprintf("this auth_token is of account %s, but the subscriptions on this connection were made with a token of account %s: refresh with a token of that account", other, parent)},
		{"child's own token for a subscription made with the parent's", e.token(child),
			fmt.Sprintf("this auth_token is of account %s, but the subscriptions on this connection were made with a token of account %s: refresh with a token of that account", child, parent)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c.SetTest(t)
			c.Send(map[string]any{"action": "refresh", "request_id": "r", "auth_token": tt.token})
			m, f := c.Reply()
			if m.Status != "error" || !strings.HasPrefix(f.Message, tt.want) {
				t.Fatalf("refresh answered %s, want an error starting %q", m.Raw, tt.want)
			}
			c.Ping()
		})
	}
	c.SetTest(t)
	// The parent's fresh token refreshes.
	c.Send(map[string]any{"action": "refresh", "request_id": "r", "auth_token": e.token(parent)})
	if m, _ := c.Reply(); m.Status != "success" {
		t.Fatalf("refresh with the parent's token: %s", m.Raw)
	}
}
