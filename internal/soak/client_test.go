package soak

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ccevents/ccevents/internal/backoff"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// soakRun is what every client of one soak run shares.
type soakRun struct {
	gw    *gatewayProc
	accts []*account
	epoch atomic.Pointer[string] // the stream's epoch, from the first reply

	// draining stops churn, so clients settle and catch up.
	draining atomic.Bool
	frames   atomic.Int64 // event frames received by all clients
}

// sameEpoch reports whether e is the run's epoch, taking the first one
// seen as the run's. A restart on the same data dir must keep it.
func (r *soakRun) sameEpoch(e string) bool {
	if r.epoch.CompareAndSwap(nil, &e) {
		return true
	}
	return *r.epoch.Load() == e
}

// problems collects what went wrong for one client: the first few messages
// and a count.
type problems struct {
	mu   sync.Mutex
	msgs []string
	n    int
}

func (p *problems) add(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.n++
	if len(p.msgs) < 5 {
		p.msgs = append(p.msgs, fmt.Sprintf(format, args...))
	}
}

func (p *problems) count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.n
}

// tally counts outcomes by name, safely from any goroutine.
type tally struct {
	mu sync.Mutex
	m  map[string]int
}

func (t *tally) add(k string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.m == nil {
		t.m = map[string]int{}
	}
	t.m[k]++
}

func (t *tally) get(k string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.m[k]
}

func (t *tally) String() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	keys := slices.Sorted(maps.Keys(t.m))
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s: %d", k, t.m[k])
	}
	return strings.Join(parts, ", ")
}

// mergeInto adds t's counts to dst.
func (t *tally) mergeInto(dst *tally) {
	t.mu.Lock()
	defer t.mu.Unlock()
	dst.mu.Lock()
	defer dst.mu.Unlock()
	if dst.m == nil {
		dst.m = map[string]int{}
	}
	for k, n := range t.m {
		dst.m[k] += n
	}
}

// dialWS opens a websocket from local (a 127.0.0.x address).
func dialWS(ctx context.Context, url string, local net.IP) (net.Conn, error) {
	d := ws.Dialer{
		Timeout: 15 * time.Second,
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: local}}
			return nd.DialContext(ctx, network, addr)
		},
	}
	conn, br, _, err := d.Dial(ctx, url)
	if err != nil {
		return nil, err
	}
	if br != nil {
		// The gateway spoke right after the handshake: keep those bytes.
		return &bufferedConn{Conn: conn, r: br}, nil
	}
	return conn, nil
}

type bufferedConn struct {
	net.Conn
	r *bufio.Reader
}

func (c *bufferedConn) Read(p []byte) (int, error) { return c.r.Read(p) }

// wsWriter serializes writes to a connection: requests from the client's
// goroutine and pongs and close replies from its reader.
type wsWriter struct {
	mu   sync.Mutex
	conn net.Conn
}

func (w *wsWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_ = w.conn.SetWriteDeadline(time.Now().Add(15 * time.Second))
	return w.conn.Write(p)
}

func (w *wsWriter) text(msg []byte) error { return wsutil.WriteClientText(w, msg) }

func (w *wsWriter) close(code ws.StatusCode, reason string) error {
	return wsutil.WriteClientMessage(w, ws.OpClose, ws.NewCloseFrameBody(code, reason))
}

// ending names why a connection ended, for the tallies: "close 4008",
// "eof", "reset", "timeout".
func ending(err error) string {
	var ce wsutil.ClosedError
	switch {
	case errors.As(err, &ce):
		return "close " + strconv.Itoa(int(ce.Code))
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "eof"
	case errors.Is(err, syscall.ECONNRESET), errors.Is(err, syscall.EPIPE):
		return "reset"
	case errors.Is(err, os.ErrDeadlineExceeded):
		return "timeout"
	case errors.Is(err, net.ErrClosed):
		return "closed by us"
	}
	return "error: " + err.Error()
}

// Client kinds.
const (
	kindSteady = "steady" // stays connected; only restarts and limits end its connections
	kindChurn  = "churn"  // disconnects every few seconds, cleanly or not, and resumes
	kindSlow   = "slow"   // stops reading when told to, until the gateway closes it as a slow consumer
)

// rawClient is a well-behaved websocket client written against
// docs/protocol.md with raw frames: it subscribes, and after every lost
// connection reconnects and resumes each account with since.
type rawClient struct {
	run   *soakRun
	id    int
	kind  string
	local net.IP
	subs  []*stream

	subscribed atomic.Bool // every stream is answered on the live connection
	everReady  atomic.Bool // every stream was answered once

	// A slow reader's reader stops while gate is non-nil.
	gateMu sync.Mutex
	gate   chan struct{}

	probs    problems
	endings  tally // how connections ended, when the gateway ended them
	sessions atomic.Int64
	resumes  atomic.Int64
	retries  atomic.Int64 // subscribes sent again after a refusal with retry_after
}

// pause stops the slow reader from reading until resume.
func (c *rawClient) pause() {
	c.gateMu.Lock()
	defer c.gateMu.Unlock()
	if c.gate == nil {
		c.gate = make(chan struct{})
	}
}

func (c *rawClient) resume() {
	c.gateMu.Lock()
	defer c.gateMu.Unlock()
	if c.gate != nil {
		close(c.gate)
		c.gate = nil
	}
}

func (c *rawClient) currentGate() chan struct{} {
	c.gateMu.Lock()
	defer c.gateMu.Unlock()
	return c.gate
}

// loop connects, subscribes and reads until ctx ends, reconnecting after
// every lost connection.
func (c *rawClient) loop(ctx context.Context) {
	// Jittered, so a restart is not met by a stampede.
	retry := backoff.New(100*time.Millisecond, 2*time.Second, backoff.EqualJitter)
	for ctx.Err() == nil {
		why, ok := c.session(ctx)
		var wait time.Duration
		switch {
		case !ok:
			wait = retry.Next()
		case why == "churn" && !c.run.draining.Load():
			retry.Reset()
			wait = rand.N(3 * time.Second)
		default:
			retry.Reset()
			wait = 50*time.Millisecond + rand.N(450*time.Millisecond)
		}
		_ = backoff.Sleep(ctx, wait)
	}
}

// subscribeMessages builds one subscribe per account: a fresh one the first
// time, then one resuming all of the account's bindings after the last
// event received.
func (c *rawClient) subscribeMessages() [][]byte {
	epoch := ""
	if e := c.run.epoch.Load(); e != nil {
		epoch = *e
	}
	msgs := make([][]byte, len(c.subs))
	for i, s := range c.subs {
		data := map[string]any{"account_id": s.acct.id, "bindings": s.bindings}
		if s.started {
			data["since"] = map[string]any{"sequence": s.last.Load(), "epoch": epoch}
		}
		msgs[i], _ = json.Marshal(map[string]any{"action": "subscribe", "auth_token": s.acct.token,
			"request_id": strconv.Itoa(i), "data": data})
	}
	return msgs
}

// session runs one connection. It reports how the connection ended, and
// false when it could not be opened.
func (c *rawClient) session(ctx context.Context) (string, bool) {
	conn, err := dialWS(ctx, c.run.gw.wsURL(), c.local)
	if err != nil {
		return "", false
	}
	c.sessions.Add(1)
	msgs := c.subscribeMessages()
	w := &wsWriter{conn: conn}
	quit := make(chan struct{})
	done := make(chan error, 1)
	go func() { done <- c.read(conn, w, quit) }()
	for _, m := range msgs {
		if err := w.text(m); err != nil {
			break // the reader sees why
		}
	}

	var churn <-chan time.Time
	if c.kind == kindChurn {
		churn = time.After(5*time.Second + rand.N(25*time.Second))
	}
	// Every way out stops the reader (already done, or made to end here)
	// before the client counts as unsubscribed.
	stop := sync.OnceFunc(func() { close(quit); conn.Close() })
	defer func() { stop(); c.subscribed.Store(false) }()
	// finish ends the connection from our side and waits for the reader.
	finish := func(graceful bool) {
		if graceful {
			_ = w.close(ws.StatusNormalClosure, "bye")
			select {
			case <-done:
				return
			case <-time.After(10 * time.Second):
			}
		}
		stop()
		<-done
	}
	for {
		select {
		case err := <-done:
			why := ending(err)
			c.endings.add(why)
			return why, true
		case <-churn:
			if c.run.draining.Load() {
				churn = nil
				continue
			}
			graceful := rand.N(2) == 0
			if graceful {
				c.endings.add("churn: client closed")
			} else {
				c.endings.add("churn: client dropped TCP")
			}
			finish(graceful)
			return "churn", true
		case <-ctx.Done():
			finish(true)
			return "stop", true
		}
	}
}

// read handles server messages until the connection ends.
func (c *rawClient) read(conn net.Conn, w *wsWriter, quit <-chan struct{}) error {
	rw := struct {
		io.Reader
		io.Writer
	}{bufio.NewReaderSize(conn, 4096), w}
	answered := make([]bool, len(c.subs))
	for {
		if g := c.currentGate(); g != nil {
			select {
			case <-g:
			case <-quit:
				return net.ErrClosed
			}
		}
		msg, op, err := wsutil.ReadServerData(rw)
		if err != nil {
			return err
		}
		if op != ws.OpText {
			c.probs.add("the gateway sent a %v message", op)
			continue
		}
		c.handle(msg, answered, w)
	}
}

// frame is a server message: a reply, an event or a notice.
type frame struct {
	Action        string          `json:"action"`
	RequestID     string          `json:"request_id"`
	Status        string          `json:"status"`
	SubscribedKey string          `json:"subscribed_key"`
	RoutingKey    string          `json:"routing_key"`
	Sequence      uint64          `json:"sequence"`
	Epoch         string          `json:"epoch"`
	Data          json.RawMessage `json:"data"`
}

type replyData struct {
	Subscribed  []string `json:"subscribed"`
	Epoch       string   `json:"epoch"`
	Sequence    *uint64  `json:"sequence"`
	Recovered   *bool    `json:"recovered"`
	ReplayUntil *uint64  `json:"replay_until"`
	Message     string   `json:"message"`
	RetryAfter  int      `json:"retry_after"` // seconds
	Pong        bool     `json:"pong"`
}

type eventData struct {
	Sequence  uint64 `json:"sequence"`
	AccountID string `json:"account_id"`
	EventID   string `json:"event_id"`
}

func (c *rawClient) handle(msg []byte, answered []bool, w *wsWriter) {
	var f frame
	if err := json.Unmarshal(msg, &f); err != nil {
		c.probs.add("unreadable message from the gateway: %v: %.200s", err, msg)
		return
	}
	switch f.Action {
	case "event":
		c.run.frames.Add(1)
		c.handleEvent(&f, answered)
	case "reply":
		c.handleReply(&f, answered, w)
	case "notice":
		// shutdown notices precede the 1001 close; nothing to do
	default:
		c.probs.add("unknown action %q from the gateway", f.Action)
	}
}

func (c *rawClient) handleReply(f *frame, answered []bool, w *wsWriter) {
	i, err := strconv.Atoi(f.RequestID)
	if err != nil || i < 0 || i >= len(c.subs) {
		c.probs.add("reply to a request never sent: %q", f.RequestID)
		return
	}
	s := c.subs[i]
	var d replyData
	if err := json.Unmarshal(f.Data, &d); err != nil {
		c.probs.add("unreadable reply data: %v", err)
		return
	}
	if f.Status != "success" && d.RetryAfter > 0 {
		// Throttled, not refused (docs/protocol.md): the same subscribe
		// again after the time asked, resuming from what arrived.
		c.retries.Add(1)
		time.AfterFunc(time.Duration(d.RetryAfter)*time.Second, func() { _ = w.text(c.subscribeMessages()[i]) })
		return
	}
	if f.Status != "success" {
		c.probs.add("subscribe to %s refused: %s", s.acct.id, d.Message)
		return
	}
	if !c.run.sameEpoch(d.Epoch) {
		c.probs.add("reply with epoch %q, the run's is %q", d.Epoch, *c.run.epoch.Load())
	}
	for _, b := range s.bindings {
		if !slices.Contains(d.Subscribed, b) {
			c.probs.add("reply lists %q as subscribed, without %q", d.Subscribed, b)
			break
		}
	}
	switch {
	case !s.started:
		if d.Sequence == nil {
			c.probs.add("first subscribe reply without a sequence")
			return
		}
		s.begin(*d.Sequence)
	case d.Recovered == nil || !*d.Recovered:
		c.probs.add("resume of %s after %d not recovered: %s", s.acct.id, s.last.Load(), d.Message)
	case d.ReplayUntil == nil:
		c.probs.add("resume reply without replay_until")
	default:
		c.resumes.Add(1)
	}
	answered[i] = true
	if !slices.Contains(answered, false) {
		c.subscribed.Store(true)
		c.everReady.Store(true)
	}
}

func (c *rawClient) handleEvent(f *frame, answered []bool) {
	var d eventData
	if err := json.Unmarshal(f.Data, &d); err != nil {
		c.probs.add("event %d: unreadable data: %v", f.Sequence, err)
		return
	}
	var s *stream
	for i, x := range c.subs {
		if x.acct.id == d.AccountID {
			s = x
			if !answered[i] {
				c.probs.add("event %d of %s arrived before the reply to its subscribe", f.Sequence, d.AccountID)
				return
			}
		}
	}
	switch {
	case s == nil:
		c.probs.add("event %d of account %q, which this client never subscribed to", f.Sequence, d.AccountID)
		return
	case d.Sequence != f.Sequence:
		c.probs.add("event frame sequence %d, data.sequence %d", f.Sequence, d.Sequence)
	case !c.run.sameEpoch(f.Epoch):
		c.probs.add("event %d with epoch %q", f.Sequence, f.Epoch)
	}
	if msg := s.accept(f.RoutingKey, f.SubscribedKey, f.Sequence, d.EventID); msg != "" {
		c.probs.add("%s", msg)
	}
}
