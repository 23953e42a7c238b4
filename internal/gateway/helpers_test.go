package gateway

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/protocol"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// waitLong bounds every wait for something the test expects to happen; it
// only matters when a test is about to fail.
const waitLong = 10 * time.Second

// env is a real bus, auth service and gateway listening on loopback.
type env struct {
	t      testing.TB
	ctx    context.Context
	dir    string
	bus    *bus.Bus
	auth   *auth.Service
	clock  *atomic.Int64 // offset added to the auth service's clock
	bcfg   bus.Config
	srv    *Server
	served chan error // Serve's result
	reg    *prometheus.Registry
	url    string
	root   auth.Account
}

type envOption func(*bus.Config)

func newEnv(t testing.TB, cfg Config, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, ctx: context.Background(), dir: t.TempDir(), clock: new(atomic.Int64)}
	e.bcfg = bus.Config{DataDir: e.dir, Memory: true}
	for _, o := range opts {
		o(&e.bcfg)
	}
	t.Cleanup(e.stop)
	e.openBus()
	e.start(cfg)
	return e
}

func (e *env) openBus() {
	t := e.t
	b, err := bus.Open(e.ctx, e.bcfg)
	if err != nil {
		t.Fatalf("open bus: %v", err)
	}
	e.bus = b
	kv, err := b.KeyValue(e.ctx, auth.DefaultBucket)
	if err != nil {
		t.Fatalf("open auth bucket: %v", err)
	}
	as, err := auth.NewService(e.ctx, kv, auth.Options{Now: func() time.Time {
		return time.Now().Add(time.Duration(e.clock.Load()))
	}})
	if err != nil {
		t.Fatalf("auth service: %v", err)
	}
	e.auth = as
	root, _, _, err := as.EnsureRoot(e.ctx, "root")
	if err != nil {
		t.Fatalf("ensure root: %v", err)
	}
	e.root = root
}

// start runs a gateway on the env's bus.
func (e *env) start(cfg Config) { e.startOn(cfg, e.bus, "127.0.0.1:0") }

// startAt runs a gateway on the env's bus, listening on addr.
func (e *env) startAt(cfg Config, addr string) { e.startOn(cfg, e.bus, addr) }

// startOn runs a gateway reading events from src, listening on addr.
func (e *env) startOn(cfg Config, src Source, addr string) {
	t := e.t
	e.reg = prometheus.NewRegistry()
	cfg.Registerer = e.reg
	srv, err := New(cfg, src, e.auth)
	if err != nil {
		t.Fatalf("new gateway: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve(e.ctx, ln) }()
	e.srv, e.served = srv, done
	e.url = "ws://" + ln.Addr().String()
}

// stopGateway shuts the gateway down and checks Serve returned nil.
func (e *env) stopGateway() {
	if e.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	_ = e.srv.Shutdown(ctx)
	if err := <-e.served; err != nil {
		e.t.Errorf("Serve returned %v after Shutdown", err)
	}
	e.srv = nil
}

// stop shuts everything down; it runs at cleanup.
func (e *env) stop() {
	e.stopGateway()
	if e.bus != nil {
		e.auth.Close()
		e.bus.Close()
		e.bus = nil
	}
}

// restartGateway stops the gateway and starts a new one on the same
// address, as a rolling restart does; the bus stays up.
func (e *env) restartGateway(cfg Config) {
	addr := strings.TrimPrefix(e.url, "ws://")
	e.stopGateway()
	e.startAt(cfg, addr)
}

// restart stops the gateway and the bus and starts both again on the same
// data directory.
func (e *env) restart(cfg Config) {
	e.stop()
	e.openBus()
	e.start(cfg)
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

// publish stores one event with a small realistic payload and returns its
// sequence.
func (e *env) publish(subject string) uint64 {
	e.t.Helper()
	seq, err := e.bus.Publish(e.ctx, subject, payloadFor(subject), "")
	if err != nil {
		e.t.Fatalf("publish %s: %v", subject, err)
	}
	return seq
}

func payloadFor(subject string) []byte {
	parts := strings.Split(subject, ".")
	var id [16]byte
	_, _ = rand.Read(id[:])
	return fmt.Appendf(nil, `{"account_id":%q,"event":"%s.%s","event_id":%q,"%s_id":%q,"timestamp":"2026-11-25T11:32:43.123Z","timestamp_ms":1795606363123}`,
		parts[2], parts[1], parts[4], hex.EncodeToString(id[:]), parts[1], parts[3])
}

// metric returns the value of a counter or gauge with the given labels.
func (e *env) metric(name string, labels ...string) float64 {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatalf("gather metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			if labelsMatch(m, labels) {
				if c := m.GetCounter(); c != nil {
					return c.GetValue()
				}
				return m.GetGauge().GetValue()
			}
		}
	}
	return 0
}

func labelsMatch(m *dto.Metric, kv []string) bool {
	for i := 0; i+1 < len(kv); i += 2 {
		found := false
		for _, l := range m.GetLabel() {
			if l.GetName() == kv[i] && l.GetValue() == kv[i+1] {
				found = true
			}
		}
		if !found {
			return false
		}
	}
	return true
}

// client is a websocket test client speaking raw frames.
type client struct {
	t      testing.TB
	nc     net.Conn
	r      io.Reader
	wmu    sync.Mutex
	noPong bool // leave server pings unanswered
	pings  int  // server pings seen
}

// closed is what a client met when the server closed the connection.
type closed struct {
	code   protocol.CloseCode
	reason string
}

func (c closed) Error() string { return fmt.Sprintf("closed %d %q", c.code, c.reason) }

func (e *env) dial() *client {
	e.t.Helper()
	return dialURL(e.t, e.url, nil)
}

func dialURL(t testing.TB, url string, netDial func(ctx context.Context, network, addr string) (net.Conn, error)) *client {
	t.Helper()
	c, err := tryDial(t, url, netDial)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { c.nc.Close() })
	return c
}

// tryDial dials url; the caller closes the client.
func tryDial(t testing.TB, url string, netDial func(ctx context.Context, network, addr string) (net.Conn, error)) (*client, error) {
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	d := ws.Dialer{NetDial: netDial}
	nc, br, _, err := d.Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	c := &client{t: t, nc: nc, r: nc}
	if br != nil {
		c.r = io.MultiReader(br, nc)
	}
	return c, nil
}

// dialRefused dials url expecting the upgrade to be refused, and returns
// the HTTP status and body.
func dialRefused(t testing.TB, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	var body []byte
	d := ws.Dialer{OnStatusError: func(_ int, _ []byte, r io.Reader) {
		// r is the whole response, on a connection kept alive.
		if resp, err := http.ReadResponse(bufio.NewReader(r), nil); err == nil {
			body, _ = io.ReadAll(resp.Body)
		}
	}}
	nc, _, _, err := d.Dial(ctx, url)
	var se ws.StatusError
	if !errors.As(err, &se) {
		if nc != nil {
			nc.Close()
		}
		t.Fatalf("dial %s: %v, want the upgrade refused", url, err)
	}
	return int(se), string(body)
}

func (c *client) writeFrame(op ws.OpCode, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(waitLong))
	return wsutil.WriteClientMessage(c.nc, op, p)
}

// send writes a text message: a string as is, anything else as JSON.
func (c *client) send(v any) {
	c.t.Helper()
	p, ok := v.(string)
	if !ok {
		b, err := json.Marshal(v)
		if err != nil {
			c.t.Fatalf("encode %v: %v", v, err)
		}
		p = string(b)
	}
	if err := c.writeFrame(ws.OpText, []byte(p)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// next returns the next text message; server pings are answered unless
// noPong is set, and a close frame is answered and returned as closed.
func (c *client) next() ([]byte, error) {
	_ = c.nc.SetReadDeadline(time.Now().Add(waitLong))
	for {
		h, err := ws.ReadHeader(c.r)
		if err != nil {
			return nil, err
		}
		p := make([]byte, h.Length)
		if _, err := io.ReadFull(c.r, p); err != nil {
			return nil, err
		}
		switch h.OpCode {
		case ws.OpPing:
			c.pings++
			if !c.noPong {
				_ = c.writeFrame(ws.OpPong, p)
			}
		case ws.OpClose:
			code, reason := ws.ParseCloseFrameData(p)
			_ = c.writeFrame(ws.OpClose, p)
			return nil, closed{protocol.CloseCode(code), reason}
		case ws.OpText:
			return p, nil
		}
	}
}

// must returns the next message or fails the test.
func (c *client) must() []byte {
	c.t.Helper()
	p, err := c.next()
	if err != nil {
		c.t.Fatalf("reading from gateway: %v", err)
	}
	return p
}

// expectClose reads until the server closes and returns the close frame.
func (c *client) expectClose() closed {
	c.t.Helper()
	for {
		_, err := c.next()
		var cl closed
		switch {
		case errors.As(err, &cl):
			return cl
		case err != nil:
			c.t.Fatalf("expected a close frame, got %v", err)
		}
	}
}

// msg is any message of the gateway, decoded.
type msg struct {
	Action          string          `json:"action"`
	RequestID       json.RawMessage `json:"request_id"`
	Status          string          `json:"status"`
	SubscribedKey   string          `json:"subscribed_key"`
	SubscriptionKey string          `json:"subscription_key"`
	RoutingKey      string          `json:"routing_key"`
	Name            string          `json:"name"`
	Sequence        uint64          `json:"sequence"`
	Epoch           string          `json:"epoch"`
	Data            json.RawMessage `json:"data"`
	raw             []byte
}

type replyFields struct {
	Subscribed  []string `json:"subscribed"`
	Epoch       string   `json:"epoch"`
	Sequence    *uint64  `json:"sequence"`
	Recovered   *bool    `json:"recovered"`
	ReplayUntil *uint64  `json:"replay_until"`
	Errors      []string `json:"errors"`
	Message     string   `json:"message"`
}

func (c *client) nextMsg() msg {
	c.t.Helper()
	p := c.must()
	var m msg
	if err := json.Unmarshal(p, &m); err != nil {
		c.t.Fatalf("gateway sent invalid JSON %s: %v", p, err)
	}
	m.raw = p
	return m
}

// reply reads the next message, which must be a reply.
func (c *client) reply() (msg, replyFields) {
	c.t.Helper()
	m := c.nextMsg()
	if m.Action != "reply" {
		c.t.Fatalf("expected a reply, got %s", m.raw)
	}
	var f replyFields
	if err := json.Unmarshal(m.Data, &f); err != nil {
		c.t.Fatalf("reply data %s: %v", m.Data, err)
	}
	return m, f
}

// subscribe sends a subscribe and returns a successful reply.
func (c *client) subscribe(token, account string, bindings ...string) replyFields {
	c.t.Helper()
	c.send(map[string]any{"action": "subscribe", "auth_token": token, "data": map[string]any{"account_id": account, "bindings": bindings}})
	m, f := c.reply()
	if m.Status != "success" {
		c.t.Fatalf("subscribe %v: %s", bindings, m.raw)
	}
	return f
}

// event reads the next message, which must be an event.
func (c *client) event() msg {
	c.t.Helper()
	m := c.nextMsg()
	if m.Action != "event" {
		c.t.Fatalf("expected an event, got %s", m.raw)
	}
	return m
}

// eventsUntil reads events up to and including one with routing key last,
// and returns the routing keys before it.
func (c *client) eventsUntil(last string) []string {
	c.t.Helper()
	var keys []string
	for {
		m := c.event()
		if m.RoutingKey == last {
			return keys
		}
		keys = append(keys, m.RoutingKey)
	}
}

// ping checks the connection still answers requests.
func (c *client) ping() {
	c.t.Helper()
	c.send(`{"action":"ping","request_id":"alive?"}`)
	m := c.nextMsg()
	if want := `{"action":"reply","request_id":"alive?","status":"success","data":{"pong":true,"response":"pong"}}`; string(m.raw) != want {
		c.t.Fatalf("ping answered %s, want %s", m.raw, want)
	}
}

// generatedID matches the start of a reply to a request that had no
// request_id: the gateway made one up, 32 hex characters as Kazoo does.
var generatedID = regexp.MustCompile(`^\{"action":"reply","request_id":"[0-9a-f]{32}",`)

// dropGeneratedID checks that a reply carries a generated request_id and
// returns it without, to compare with what the test expects.
func dropGeneratedID(t testing.TB, raw []byte) string {
	t.Helper()
	loc := generatedID.FindIndex(raw)
	if loc == nil {
		t.Fatalf("reply %s carries no generated request_id", raw)
	}
	return `{"action":"reply",` + string(raw[loc[1]:])
}

// bufferedClient wraps a reader in a small buffer, for clients that read
// many frames.
func bufferedClient(c *client) *client {
	c.r = bufio.NewReaderSize(c.r, 64<<10)
	return c
}

// dialSmallReceiveBuffer dials with a 4 KiB socket receive buffer, for a
// client whose socket fills as soon as it stops reading.
func dialSmallReceiveBuffer(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = setReceiveBuffer(fd, 4096)
		})
		return errors.Join(err, serr)
	}}
	return d.DialContext(ctx, network, addr)
}
