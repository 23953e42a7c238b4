// Package wstest is the websocket test client of the gateway's protocol,
// for tests: it dials, sends requests (package protocol's types, or any
// text to see how the gateway answers it), reads replies, events and
// notices with a deadline, answers the gateway's pings, and reports the
// close frame the gateway sent.
//
// wstest speaks raw frames on purpose (tests send what no well-behaved
// client would); it never reconnects, buffers nothing it was not asked to
// read, and is never used outside tests: the Go SDK is package client.
package wstest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"regexp"
	"sync"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/ccevents/ccevents/protocol"
)

// Wait bounds every read, write and dial; it only matters when a test is
// about to fail.
const Wait = 10 * time.Second

// Conn is one websocket connection to a gateway, speaking raw frames. Its
// methods that read are for one goroutine. WriteFrame may be called from
// any; Send fails the test on an error (t.Fatalf), so only from the test's
// own goroutine, as testing requires.
type Conn struct {
	t   testing.TB
	nc  net.Conn
	r   io.Reader
	wmu sync.Mutex
	// NoPong leaves the gateway's pings unanswered.
	NoPong bool
	// Pings counts the gateway's pings seen.
	Pings int
	// ReadWait bounds each read instead of Wait, for a test whose
	// answers take longer to come (a cluster routing a command).
	ReadWait time.Duration
}

// Closed is the close frame the gateway sent, as the error reading met.
type Closed struct {
	Code   protocol.CloseCode
	Reason string
}

func (c Closed) Error() string { return fmt.Sprintf("closed %d %q", c.Code, c.Reason) }

// NetConn returns the TCP connection, e.g. to close it without a close
// frame.
func (c *Conn) NetConn() net.Conn { return c.nc }

// Reader returns what the connection reads frames from, for a test that
// reads them itself.
func (c *Conn) Reader() io.Reader { return c.r }

// T returns the test the connection reports failures to, for helpers of
// its own.
func (c *Conn) T() testing.TB { return c.t }

// SetTest makes the connection report failures to t from now on, e.g. to
// a subtest sharing it.
func (c *Conn) SetTest(t testing.TB) { c.t = t }

// Buffered reads through a 64 KiB buffer, for a connection that reads
// many frames.
func (c *Conn) Buffered() *Conn {
	c.r = bufio.NewReaderSize(c.r, 64<<10)
	return c
}

// WriteFrame sends one masked frame.
func (c *Conn) WriteFrame(op ws.OpCode, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	_ = c.nc.SetWriteDeadline(time.Now().Add(Wait))
	return wsutil.WriteClientMessage(c.nc, op, p)
}

// Send writes a text message: a string as is, anything else (a
// protocol.Request, say) as JSON.
func (c *Conn) Send(v any) {
	c.t.Helper()
	p, ok := v.(string)
	if !ok {
		b, err := json.Marshal(v)
		if err != nil {
			c.t.Fatalf("encode %v: %v", v, err)
		}
		p = string(b)
	}
	if err := c.WriteFrame(ws.OpText, []byte(p)); err != nil {
		c.t.Fatalf("send: %v", err)
	}
}

// Next returns the next text message. The gateway's pings are answered
// unless NoPong is set; a close frame is answered and returned as Closed.
func (c *Conn) Next() ([]byte, error) {
	wait := c.ReadWait
	if wait <= 0 {
		wait = Wait
	}
	_ = c.nc.SetReadDeadline(time.Now().Add(wait))
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
			c.Pings++
			if !c.NoPong {
				_ = c.WriteFrame(ws.OpPong, p)
			}
		case ws.OpClose:
			code, reason := ws.ParseCloseFrameData(p)
			_ = c.WriteFrame(ws.OpClose, p)
			return nil, Closed{protocol.CloseCode(code), reason}
		case ws.OpText:
			return p, nil
		}
	}
}

// Must returns the next text message or fails the test.
func (c *Conn) Must() []byte {
	c.t.Helper()
	p, err := c.Next()
	if err != nil {
		c.t.Fatalf("reading from gateway: %v", err)
	}
	return p
}

// ExpectClose reads until the gateway closes and returns its close frame.
func (c *Conn) ExpectClose() Closed {
	c.t.Helper()
	for {
		_, err := c.Next()
		var cl Closed
		switch {
		case errors.As(err, &cl):
			return cl
		case err != nil:
			c.t.Fatalf("expected a close frame, got %v", err)
		}
	}
}

// Msg is any message of the gateway, decoded, with its text.
type Msg struct {
	protocol.Message
	Raw []byte
}

// NextMsg reads and decodes the next message.
func (c *Conn) NextMsg() Msg {
	c.t.Helper()
	p := c.Must()
	var m Msg
	if err := json.Unmarshal(p, &m.Message); err != nil {
		c.t.Fatalf("gateway sent invalid JSON %s: %v", p, err)
	}
	m.Raw = p
	return m
}

// Reply reads the next message, which must be a reply, and its data.
func (c *Conn) Reply() (Msg, protocol.SubscriptionData) {
	c.t.Helper()
	m := c.NextMsg()
	if m.Action != protocol.ReplyAction {
		c.t.Fatalf("expected a reply, got %s", m.Raw)
	}
	var d protocol.SubscriptionData
	if err := json.Unmarshal(m.Data, &d); err != nil {
		c.t.Fatalf("reply data %s: %v", m.Data, err)
	}
	return m, d
}

// Subscribe subscribes to bindings of account and returns the successful
// reply's data, or fails the test.
func (c *Conn) Subscribe(token, account string, bindings ...string) protocol.SubscriptionData {
	c.t.Helper()
	req := protocol.Request{Action: protocol.Subscribe, AuthToken: token, Data: protocol.RequestData{AccountID: account}}
	for _, b := range bindings {
		req.Data.Bindings = append(req.Data.Bindings, protocol.BindingSpec{Binding: b})
	}
	c.Send(req)
	m, d := c.Reply()
	if m.Status != protocol.StatusSuccess {
		c.t.Fatalf("subscribe %v: %s", bindings, m.Raw)
	}
	return d
}

// Event reads the next message, which must be an event.
func (c *Conn) Event() Msg {
	c.t.Helper()
	m := c.NextMsg()
	if m.Action != protocol.EventAction {
		c.t.Fatalf("expected an event, got %s", m.Raw)
	}
	return m
}

// EventsUntil reads events up to and including one with routing key
// last, and returns the routing keys before it.
func (c *Conn) EventsUntil(last string) []string {
	c.t.Helper()
	var keys []string
	for {
		m := c.Event()
		if m.RoutingKey == last {
			return keys
		}
		keys = append(keys, m.RoutingKey)
	}
}

// Ping checks that the connection still answers requests.
func (c *Conn) Ping() {
	c.t.Helper()
	c.Send(`{"action":"ping","request_id":"alive?"}`)
	m := c.NextMsg()
	if want := `{"action":"reply","request_id":"alive?","status":"success","data":{"pong":true,"response":"pong"}}`; string(m.Raw) != want {
		c.t.Fatalf("ping answered %s, want %s", m.Raw, want)
	}
}

// generatedID matches the start of a reply to a request that had no
// request_id: the gateway made one up, 32 hex characters as Kazoo does.
var generatedID = regexp.MustCompile(`^\{"action":"reply","request_id":"[0-9a-f]{32}",`)

// DropGeneratedID checks that a reply carries a generated request_id and
// returns it without, to compare with what the test expects.
func DropGeneratedID(t testing.TB, raw []byte) string {
	t.Helper()
	loc := generatedID.FindIndex(raw)
	if loc == nil {
		t.Fatalf("reply %s carries no generated request_id", raw)
	}
	return `{"action":"reply",` + string(raw[loc[1]:])
}
