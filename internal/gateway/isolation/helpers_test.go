package isolation

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/gateway"
)

// waitLong bounds every read; it only matters when a test is about to fail.
const waitLong = 10 * time.Second

// env is a real bus, auth service and gateway on loopback.
type env struct {
	t    *testing.T
	ctx  context.Context
	bus  *bus.Bus
	auth *auth.Service
	root auth.Account
	url  string
}

func newEnv(t *testing.T, cfg gateway.Config) *env {
	t.Helper()
	ctx := context.Background()
	b, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir(), Memory: true})
	if err != nil {
		t.Fatalf("open bus: %v", err)
	}
	t.Cleanup(b.Close)
	kv, err := b.KeyValue(ctx, auth.DefaultBucket)
	if err != nil {
		t.Fatalf("auth bucket: %v", err)
	}
	as, err := auth.NewService(ctx, kv, auth.Options{})
	if err != nil {
		t.Fatalf("auth service: %v", err)
	}
	t.Cleanup(as.Close)
	root, _, _, err := as.EnsureRoot(ctx, "root")
	if err != nil {
		t.Fatalf("root account: %v", err)
	}
	srv, err := gateway.New(cfg, b, as)
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(ctx, waitLong)
		defer cancel()
		_ = srv.Shutdown(sctx)
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &env{t: t, ctx: ctx, bus: b, auth: as, root: root, url: "ws://" + ln.Addr().String()}
}

// account creates a child of parent (the root when empty).
func (e *env) account(parent string) string {
	e.t.Helper()
	if parent == "" {
		parent = e.root.ID
	}
	a, _, err := e.auth.CreateAccount(e.ctx, parent, "test")
	if err != nil {
		e.t.Fatalf("create account: %v", err)
	}
	return a.ID
}

func (e *env) token(account string) string {
	e.t.Helper()
	tok, _, err := e.auth.IssueToken(e.ctx, account, time.Hour)
	if err != nil {
		e.t.Fatalf("issue token: %v", err)
	}
	return tok
}

// publish stores a queue or session event straight on the bus.
func (e *env) publish(subject string) {
	e.t.Helper()
	var parts [5]string
	copy(parts[:], splitDots(subject))
	payload := fmt.Appendf(nil, `{"account_id":%q,"event":"%s.%s","event_id":"%032x","%s_id":%q,"timestamp":"2026-11-25T11:32:43.123Z","timestamp_ms":1795606363123}`,
		parts[2], parts[1], parts[4], time.Now().UnixNano(), parts[1], parts[3])
	if _, err := e.bus.Publish(e.ctx, subject, payload, ""); err != nil {
		e.t.Fatalf("publish %s: %v", subject, err)
	}
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

// client is a websocket client reading and writing whole text messages.
type client struct {
	t  *testing.T
	nc net.Conn
	r  io.Reader
}

func (e *env) dial() *client {
	e.t.Helper()
	ctx, cancel := context.WithTimeout(e.ctx, waitLong)
	defer cancel()
	nc, br, _, err := ws.Dial(ctx, e.url)
	if err != nil {
		e.t.Fatalf("dial: %v", err)
	}
	e.t.Cleanup(func() { nc.Close() })
	c := &client{t: e.t, nc: nc, r: nc}
	if br != nil {
		c.r = io.MultiReader(br, nc)
	}
	return c
}

func (c *client) send(text string) {
	c.t.Helper()
	_ = c.nc.SetWriteDeadline(time.Now().Add(waitLong))
	if err := wsutil.WriteClientText(c.nc, []byte(text)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// msg is a gateway message, decoded.
type msg struct {
	Action     string          `json:"action"`
	Status     string          `json:"status"`
	RoutingKey string          `json:"routing_key"`
	Data       json.RawMessage `json:"data"`
	raw        []byte
}

type replyFields struct {
	Subscribed []string `json:"subscribed"`
	Message    string   `json:"message"`
}

// next returns the next text message, answering pings.
func (c *client) next() msg {
	c.t.Helper()
	_ = c.nc.SetReadDeadline(time.Now().Add(waitLong))
	for {
		p, op, err := wsutil.ReadServerData(readWriter{c})
		if err != nil {
			c.t.Fatalf("read: %v", err)
		}
		if op != ws.OpText {
			continue
		}
		var m msg
		if err := json.Unmarshal(p, &m); err != nil {
			c.t.Fatalf("gateway sent invalid JSON %s: %v", p, err)
		}
		m.raw = p
		return m
	}
}

// readWriter reads through the client's buffered reader and writes to its
// connection (for pong replies).
type readWriter struct{ c *client }

func (rw readWriter) Read(p []byte) (int, error)  { return rw.c.r.Read(p) }
func (rw readWriter) Write(p []byte) (int, error) { return rw.c.nc.Write(p) }

func (c *client) reply() (msg, replyFields) {
	c.t.Helper()
	m := c.next()
	if m.Action != "reply" {
		c.t.Fatalf("expected a reply, got %s", m.raw)
	}
	var f replyFields
	if err := json.Unmarshal(m.Data, &f); err != nil {
		c.t.Fatalf("reply data %s: %v", m.Data, err)
	}
	return m, f
}

func (c *client) subscribe(token, account string, bindings ...string) {
	c.t.Helper()
	p, _ := json.Marshal(map[string]any{"action": "subscribe", "auth_token": token, "data": map[string]any{"account_id": account, "bindings": bindings}})
	c.send(string(p))
	if m, _ := c.reply(); m.Status != "success" {
		c.t.Fatalf("subscribe %v: %s", bindings, m.raw)
	}
}

// eventsUntil reads events up to and including one with routing key last,
// and returns the routing keys before it.
func (c *client) eventsUntil(last string) []string {
	c.t.Helper()
	var keys []string
	for {
		m := c.next()
		if m.Action != "event" {
			c.t.Fatalf("expected an event, got %s", m.raw)
		}
		if m.RoutingKey == last {
			return keys
		}
		keys = append(keys, m.RoutingKey)
	}
}

func equalStrings(got []string, want ...string) bool {
	if len(got) != len(want) {
		return false
	}
	for i := range got {
		if got[i] != want[i] {
			return false
		}
	}
	return true
}
