package gateway

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/ccevents/ccevents/internal/wstest"
)

// The clients replayed here, and where their messages come from:
//
//   - qubicle-docs: 2600Hz's "Qubicle Websockets Setup" page: one subscribe
//     per short binding, no request_id, the account in data.account_id.
//   - pqc_blackhole: Kazoo's acceptance test (core/kazoo_proper, branch
//     4.3): ping with an 8-hex request_id and a token, subscribe, events by
//     subscribed_key, unsubscribe as the subscribe with action and
//     request_id replaced, and the same binding on two accounts.
//   - monster-ui: src/js/lib/monster.socket.js: subscribe and unsubscribe
//     with the token and a 32-hex request_id each time, replies matched by
//     request_id, events dispatched on the exact subscribed_key, logging in
//     again when an error begins with "failed to authenticate token".
//   - event-sink: a third-party sink that authenticates its socket once and
//     sends later requests without auth_token, as Kazoo allows.
//
// Each step sends what the client sends, byte for byte as its JSON encoder
// writes it, or checks the fields the client reads of the next message.

// kazooStep is one step of a replay: send a message, publish an event, or
// read the next message and check what the client reads of it.
type kazooStep struct {
	send    string
	publish string
	read    []check
}

// check is one field a client reads: path is dotted ("data.subscribed"),
// want a string, a []string, a prefix or generatedRequestID.
type check struct {
	path string
	want any
}

type prefix string

// generatedRequestID wants the 32 hex characters the gateway makes up for a
// request without request_id, as Kazoo does.
type generatedRequestID struct{}

func send(msg string) kazooStep        { return kazooStep{send: msg} }
func publish(subject string) kazooStep { return kazooStep{publish: subject} }
func read(checks ...check) kazooStep   { return kazooStep{read: checks} }
func is(path string, want any) check   { return check{path, want} }

// reply and event are the checks every client makes on a message's kind.
func replyTo(requestID any, status string, more ...check) kazooStep {
	return read(append([]check{is("action", "reply"), is("request_id", requestID), is("status", status)}, more...)...)
}

func eventOn(subscribedKey, routingKey, name string, more ...check) kazooStep {
	return read(append([]check{is("action", "event"), is("subscribed_key", subscribedKey), is("routing_key", routingKey), is("name", name)}, more...)...)
}

func TestKazooClientsReadWhatTheyExpect(t *testing.T) {
	t.Parallel()
	const (
		session   = "qubicle.session.{ACCOUNT_ID}.S1"
		queueJoin = "qubicle.queue.{ACCOUNT_ID}.Q1.join"
		recipient = "qubicle.recipient.{ACCOUNT_ID}.R1.ready"
	)
	tests := []struct {
		client, name string
		steps        []kazooStep
	}{
		{"qubicle-docs", "short bindings, no request_id", []kazooStep{
			send(`{"action":"subscribe","auth_token":"{TOKEN}","data":{"account_id":"{ACCOUNT_ID}","binding":"qubicle.session"}}`),
			replyTo(generatedRequestID{}, "success", is("data.subscribed", []string{"qubicle.session"})),
			send(`{"action":"subscribe","auth_token":"{TOKEN}","data":{"account_id":"{ACCOUNT_ID}","binding":"qubicle.recipient"}}`),
			replyTo(generatedRequestID{}, "success", is("data.subscribed", []string{"qubicle.session", "qubicle.recipient"})),
			send(`{"action":"subscribe","auth_token":"{TOKEN}","data":{"account_id":"{ACCOUNT_ID}","binding":"qubicle.queue"}}`),
			replyTo(generatedRequestID{}, "success", is("data.subscribed", []string{"qubicle.session", "qubicle.recipient", "qubicle.queue"})),
			publish(session + ".create"),
			publish(recipient),
			publish(queueJoin),
			eventOn("qubicle.session", session+".create", "create", is("data.account_id", "{ACCOUNT_ID}"), is("data.session_id", "S1")),
			eventOn("qubicle.recipient", recipient, "ready", is("data.recipient_id", "R1")),
			eventOn("qubicle.queue", queueJoin, "join", is("data.queue_id", "Q1")),
		}},
		{"pqc_blackhole", "seq_ping", []kazooStep{
			send(`{"request_id":"5be0a21c","action":"ping","auth_token":"{TOKEN}"}`),
			replyTo("5be0a21c", "success", is("data.response", "pong")),
			send(`{"request_id":"5be0a21c","action":"ping","auth_token":"{TOKEN}"}`),
			replyTo("5be0a21c", "success"),
		}},
		{"pqc_blackhole", "seq_api: bind, events, unbind", []kazooStep{
			send(`{"request_id":"0c1d2e3f","action":"ping","auth_token":"{TOKEN}"}`),
			replyTo("0c1d2e3f", "success"),
			send(`{"action":"subscribe","auth_token":"{TOKEN}","request_id":"9a8b7c6d","data":{"account_id":"{ACCOUNT_ID}","binding":"qubicle.queue.{ACCOUNT_ID}.*"}}`),
			replyTo("9a8b7c6d", "success", is("data.subscribed", []string{"qubicle.queue.{ACCOUNT_ID}.*"})),
			publish("qubicle.queue.{ACCOUNT_ID}.Q1.create"),
			eventOn("qubicle.queue.{ACCOUNT_ID}.*", "qubicle.queue.{ACCOUNT_ID}.Q1.create", "create", is("data.account_id", "{ACCOUNT_ID}")),
			publish("qubicle.queue.{ACCOUNT_ID}.Q1.delete"),
			eventOn("qubicle.queue.{ACCOUNT_ID}.*", "qubicle.queue.{ACCOUNT_ID}.Q1.delete", "delete"),
			send(`{"action":"unsubscribe","auth_token":"{TOKEN}","request_id":"1f2e3d4c","data":{"account_id":"{ACCOUNT_ID}","binding":"qubicle.queue.{ACCOUNT_ID}.*"}}`),
			replyTo("1f2e3d4c", "success", is("data.unsubscribed", []string{"qubicle.queue.{ACCOUNT_ID}.*"}), is("data.subscribed", []string{})),
		}},
		{"pqc_blackhole", "seq_count_bindings: one binding on two accounts", []kazooStep{
			send(`{"request_id":"aa11bb22","action":"ping","auth_token":"{PARENT_TOKEN}"}`),
			replyTo("aa11bb22", "success"),
			send(`{"action":"subscribe","auth_token":"{PARENT_TOKEN}","request_id":"cc33dd44","data":{"account_id":"{ACCOUNT_ID}","binding":"qubicle.session"}}`),
			replyTo("cc33dd44", "success", is("data.subscribed", []string{"qubicle.session"})),
			send(`{"action":"subscribe","auth_token":"{PARENT_TOKEN}","request_id":"ee55ff66","data":{"account_id":"{PARENT_ID}","binding":"qubicle.session"}}`),
			replyTo("ee55ff66", "success", is("data.subscribed", []string{"qubicle.session", "qubicle.session"})),
			publish(session + ".create"),
			eventOn("qubicle.session", session+".create", "create", is("data.account_id", "{ACCOUNT_ID}")),
			send(`{"action":"unsubscribe","auth_token":"{PARENT_TOKEN}","request_id":"0a1b2c3d","data":{"account_id":"{PARENT_ID}","binding":"qubicle.session"}}`),
			replyTo("0a1b2c3d", "success", is("data.unsubscribed", []string{"qubicle.session"}), is("data.subscribed", []string{"qubicle.session"})),
			publish("qubicle.session.{ACCOUNT_ID}.S2.create"),
			eventOn("qubicle.session", "qubicle.session.{ACCOUNT_ID}.S2.create", "create"),
		}},
		{"monster-ui", "bind, events on the exact key, unbind", []kazooStep{
			send(`{"action":"subscribe","auth_token":"{TOKEN}","request_id":"3e1f5c2b9a8d4e7f6a5b4c3d2e1f0a9b","data":{"account_id":"{ACCOUNT_ID}","binding":"qubicle.recipient"}}`),
			replyTo("3e1f5c2b9a8d4e7f6a5b4c3d2e1f0a9b", "success", is("data.subscribed", []string{"qubicle.recipient"})),
			publish(recipient),
			eventOn("qubicle.recipient", recipient, "ready", is("data.event", "recipient.ready")),
			send(`{"action":"unsubscribe","auth_token":"{TOKEN}","request_id":"7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29","data":{"account_id":"{ACCOUNT_ID}","binding":"qubicle.recipient"}}`),
			replyTo("7c6b5a4f3e2d1c0b9a8f7e6d5c4b3a29", "success", is("data.unsubscribed", []string{"qubicle.recipient"})),
			// Unbinding what is not bound is no error, as in Kazoo.
			send(`{"action":"unsubscribe","auth_token":"{TOKEN}","request_id":"0f9e8d7c6b5a49382716a5b4c3d2e1f0","data":{"account_id":"{ACCOUNT_ID}","binding":"qubicle.recipient"}}`),
			replyTo("0f9e8d7c6b5a49382716a5b4c3d2e1f0", "success", is("data.unsubscribed", []string{}), is("data.subscribed", []string{})),
		}},
		{"monster-ui", "an expired token is refused with the prefix that makes it log in again", []kazooStep{
			send(`{"action":"subscribe","auth_token":"{EXPIRED}","request_id":"11111111222222223333333344444444","data":{"account_id":"{ACCOUNT_ID}","binding":"qubicle.queue"}}`),
			replyTo("11111111222222223333333344444444", "error", is("data.errors.0", prefix("failed to authenticate token"))),
			send(`{"action":"subscribe","auth_token":"not-a-token","request_id":"55555555666666667777777788888888","data":{"account_id":"{ACCOUNT_ID}","binding":"qubicle.queue"}}`),
			replyTo("55555555666666667777777788888888", "error", is("data.errors.0", prefix("failed to authenticate token"))),
			send(`{"action":"subscribe","auth_token":"{TOKEN}","request_id":"9999999900000000aaaaaaaabbbbbbbb","data":{"account_id":"{ACCOUNT_ID}","binding":"qubicle.queue"}}`),
			replyTo("9999999900000000aaaaaaaabbbbbbbb", "success", is("data.subscribed", []string{"qubicle.queue"})),
		}},
		{"event-sink", "authenticated once, later requests without a token", []kazooStep{
			send(`{"action":"subscribe","auth_token":"{TOKEN}","request_id":"s1","data":{"account_id":"{ACCOUNT_ID}","binding":"qubicle.queue"}}`),
			replyTo("s1", "success"),
			send(`{"action":"subscribe","request_id":"s2","data":{"account_id":"{ACCOUNT_ID}","binding":"qubicle.session"}}`),
			replyTo("s2", "success", is("data.subscribed", []string{"qubicle.queue", "qubicle.session"})),
			// The socket's token still decides what it may see.
			send(`{"action":"subscribe","request_id":"s3","data":{"account_id":"{PARENT_ID}","binding":"qubicle.queue"}}`),
			replyTo("s3", "error", is("data.errors.0", "this auth_token may not see account {PARENT_ID}")),
			send(`{"action":"ping"}`),
			replyTo(generatedRequestID{}, "success", is("data.response", "pong"), is("data.pong", true)),
			publish(session + ".create"),
			eventOn("qubicle.session", session+".create", "create"),
			send(`{"action":"unsubscribe","data":{"account_id":"{ACCOUNT_ID}","binding":"qubicle.session"}}`),
			replyTo(generatedRequestID{}, "success", is("data.unsubscribed", []string{"qubicle.session"}), is("data.subscribed", []string{"qubicle.queue"})),
		}},
	}
	e := newEnv(t, Config{})
	parent := e.account("")
	vars := map[string]string{"{PARENT_ID}": parent, "{PARENT_TOKEN}": e.token(parent), "{EXPIRED}": expiredToken(e, parent)}
	for _, tt := range tests {
		t.Run(tt.client+"/"+tt.name, func(t *testing.T) {
			acc := e.account(parent)
			vars := map[string]string{"{ACCOUNT_ID}": acc, "{TOKEN}": e.token(acc), "{EXPIRED}": vars["{EXPIRED}"],
				"{PARENT_ID}": vars["{PARENT_ID}"], "{PARENT_TOKEN}": vars["{PARENT_TOKEN}"]}
			fill := func(s string) string {
				for k, v := range vars {
					s = strings.ReplaceAll(s, k, v)
				}
				return s
			}
			c := e.dial()
			c.SetTest(t)
			for i, st := range tt.steps {
				switch {
				case st.send != "":
					c.Send(fill(st.send))
				case st.publish != "":
					e.publish(fill(st.publish))
				default:
					m := c.NextMsg()
					var v any
					if err := json.Unmarshal(m.Raw, &v); err != nil {
						t.Fatalf("step %d: %s is not JSON: %v", i+1, m.Raw, err)
					}
					for _, ch := range st.read {
						if problem := ch.verify(v, fill); problem != "" {
							t.Fatalf("step %d: %s: %s", i+1, problem, m.Raw)
						}
					}
				}
			}
		})
	}
}

// expiredToken issues a token of account whose lifetime ended a second ago.
func expiredToken(e *env, account string) string {
	e.t.Helper()
	tok, _, err := e.auth.IssueToken(e.ctx, account, 1)
	if err != nil {
		e.t.Fatalf("issue token: %v", err)
	}
	testkit.Eventually(e.t, waitLong, "the token to expire", func() bool {
		_, err := e.auth.Verify(tok)
		return err != nil
	})
	return tok
}

var hex32 = regexp.MustCompile(`^[0-9a-f]{32}$`)

// verify returns what is wrong with the field the check reads, or "".
func (ch check) verify(msg any, fill func(string) string) string {
	got, found := msg, true
	for _, key := range strings.Split(ch.path, ".") {
		switch v := got.(type) {
		case map[string]any:
			got, found = v[key]
		case []any:
			var i int
			if _, err := fmt.Sscan(key, &i); err != nil || i >= len(v) {
				found = false
			} else {
				got = v[i]
			}
		default:
			found = false
		}
		if !found {
			return fmt.Sprintf("%s is missing", ch.path)
		}
	}
	switch want := ch.want.(type) {
	case string:
		if got != fill(want) {
			return fmt.Sprintf("%s is %v, want %q", ch.path, got, fill(want))
		}
	case bool:
		if got != want {
			return fmt.Sprintf("%s is %v, want %v", ch.path, got, want)
		}
	case prefix:
		if s, ok := got.(string); !ok || !strings.HasPrefix(s, string(want)) {
			return fmt.Sprintf("%s is %v, want it to begin with %q", ch.path, got, want)
		}
	case generatedRequestID:
		if s, ok := got.(string); !ok || !hex32.MatchString(s) {
			return fmt.Sprintf("%s is %v, want 32 hex characters", ch.path, got)
		}
	case []string:
		list, ok := got.([]any)
		strs := make([]string, len(list))
		for i, x := range list {
			strs[i], _ = x.(string)
		}
		filled := make([]string, len(want))
		for i, w := range want {
			filled[i] = fill(w)
		}
		if !ok || !slices.Equal(strs, filled) {
			return fmt.Sprintf("%s is %v, want %q", ch.path, got, filled)
		}
	default:
		return fmt.Sprintf("check of %s wants a %T, which the test cannot compare", ch.path, want)
	}
	return ""
}

// A short binding follows every rule of the binding it stands for: it
// resumes with since, shares the one-event-per-connection rule with
// overlapping bindings (under the one subscribed first), and is
// unsubscribed per account or, without data.account_id, everywhere.
func TestShortBindingsFollowTheRulesOfTheirExpansion(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	acc, other := e.account(""), e.account("")
	tok := e.token(e.root.ID)
	first := e.publish("qubicle.queue." + acc + ".Q1.join")
	e.publish("qubicle.recipient." + acc + ".R1.ready")
	second := e.publish("qubicle.queue." + acc + ".Q2.join")

	c := e.dial()
	m, f := sinceSubscribe(c, tok, acc, first-1, e.bus.Epoch(), "qubicle.queue")
	if m.Status != "success" || f.Recovered == nil || !*f.Recovered || !equalStrings(f.Subscribed, "qubicle.queue") {
		t.Fatalf("resume: %s", m.Raw)
	}
	for _, want := range []uint64{first, second} {
		if ev := c.Event(); ev.Sequence != want || ev.SubscribedKey != "qubicle.queue" {
			t.Fatalf("replayed %s, want sequence %d under qubicle.queue", ev.Raw, want)
		}
	}
	// The full form overlaps: each event still comes once, under the short
	// binding, subscribed first.
	c.Subscribe(tok, acc, "qubicle.queue."+acc+".*")
	c.Subscribe(tok, other, "qubicle.queue")
	e.publish("qubicle.queue." + acc + ".Q1.leave")
	e.publish("qubicle.queue." + other + ".Q9.join")
	// Two accounts: each in its own order, not one with the other.
	want := map[string]bool{"qubicle.queue." + acc + ".Q1.leave": true, "qubicle.queue." + other + ".Q9.join": true}
	for range len(want) {
		if ev := c.Event(); !want[ev.RoutingKey] || ev.SubscribedKey != "qubicle.queue" {
			t.Fatalf("got %s, want one of %v under qubicle.queue", ev.Raw, want)
		} else {
			delete(want, ev.RoutingKey)
		}
	}
	c.Send(`{"action":"unsubscribe","request_id":"u","data":{"binding":"qubicle.queue"}}`)
	m, f = c.Reply()
	var removed struct {
		Unsubscribed []string `json:"unsubscribed"`
	}
	_ = json.Unmarshal(m.Data, &removed)
	if m.Status != "success" || !equalStrings(removed.Unsubscribed, "qubicle.queue", "qubicle.queue") || !equalStrings(f.Subscribed, "qubicle.queue."+acc+".*") {
		t.Fatalf("unsubscribe without an account: %s", m.Raw)
	}
	e.publish("qubicle.queue." + acc + ".Q2.leave")
	if ev := c.Event(); ev.SubscribedKey != "qubicle.queue."+acc+".*" {
		t.Fatalf("got %s under the remaining binding", ev.Raw)
	}
}

// pqc_blackhole's seq_max_conn: with max_connections_per_ip 1, a pinging
// socket is up and a second one fails its upgrade with 429.
func TestKazooMaxConnectionsPerIPIsAnswered429(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{MaxConnsPerIP: 1})
	acc := e.account("")
	c := e.dial()
	c.Send(fmt.Sprintf(`{"request_id":"7e3a90c1","action":"ping","auth_token":%q}`, e.token(acc)))
	if m, _ := c.Reply(); string(m.RequestID) != `"7e3a90c1"` || m.Status != "success" {
		t.Fatalf("ping: %s", m.Raw)
	}
	if status, _ := wstest.DialRefused(t, e.url); status != 429 {
		t.Fatalf("second connection: %d, want 429", status)
	}
}
