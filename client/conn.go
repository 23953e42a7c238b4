package client

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ccevents/ccevents/internal/shorten"
	"github.com/ccevents/ccevents/protocol"
	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// maxMessageBytes bounds one incoming frame: an event payload is at most
// 64 KiB, and its frame adds a few hundred bytes around it.
const maxMessageBytes = 1 << 20

// errConnLost is what a request gets when its connection goes away before
// the reply arrives; the caller retries on the next connection.
var errConnLost = errors.New("connection lost")

// CloseError is how the gateway closed a connection: its websocket close
// code and reason, e.g. 4008 "slow consumer: …" or 1001 "the gateway is
// shutting down; reconnect". errors.Is(err, CloseSlowConsumer) holds for
// one with that code.
type CloseError = protocol.CloseError

// Close codes the gateway documents (package protocol has them all).
const (
	CloseNormal       = protocol.CloseNormal       // the client or gateway ended the session
	CloseGoingAway    = protocol.CloseGoingAway    // the gateway is shutting down, after a notice
	CloseTokenExpired = protocol.CloseTokenExpired // the token expired without a refresh, after a notice
	CloseSlowConsumer = protocol.CloseSlowConsumer // the client fell too far behind; resume with since
)

// reply is the answer to one request; every reply's data decodes as
// SubscriptionData, whose fields include an error reply's.
type reply struct {
	status protocol.Status
	data   protocol.SubscriptionData
}

// pending is a request waiting for its reply. onReply runs on the read loop
// before any later frame is read, so a subscription is in place before the
// first event of its replay is routed.
type pending struct {
	onReply func(reply)
	done    chan reply
}

// conn is one websocket connection to the gateway: a read loop that routes
// frames, and request/reply over it. It never reconnects; Client does.
type conn struct {
	nc net.Conn
	br *bufio.Reader

	wmu      sync.Mutex // one frame at a time on the wire
	wbuf     bytes.Buffer
	wtimeout time.Duration

	mu      sync.Mutex
	nextID  uint64
	pending map[string]*pending
	err     error         // why the connection ended
	closed  chan struct{} // closed when the read loop has returned

	// onClosed runs when the read loop ends, before closed is closed.
	onClosed func()
	// ended is set by onClosed, under the client's lock.
	ended bool
}

// dialConn opens a websocket to url. A refused upgrade returns the gateway's
// own explanation when it sent one.
func dialConn(ctx context.Context, url string, timeout time.Duration) (*conn, error) {
	var refusal string
	d := ws.Dialer{
		Timeout: timeout,
		OnStatusError: func(status int, reason []byte, resp io.Reader) {
			body, _ := io.ReadAll(io.LimitReader(resp, 4096))
			refusal = fmt.Sprintf("%d %s", status, reason)
			if msg := errorMessage(body); msg != "" {
				refusal += ": " + msg
			}
		},
	}
	nc, br, _, err := d.Dial(ctx, url)
	if err != nil {
		if refusal != "" {
			return nil, fmt.Errorf("connect to %s: gateway refused the websocket (%s)", url, refusal)
		}
		return nil, fmt.Errorf("connect to %s: %w", url, err)
	}
	if br == nil {
		br = bufio.NewReaderSize(nc, 32<<10)
	}
	return &conn{nc: nc, br: br, wtimeout: timeout, pending: make(map[string]*pending), closed: make(chan struct{})}, nil
}

// errorMessage pulls a person-readable message out of a body that may be
// a REST error envelope, or returns the trimmed text itself.
func errorMessage(body []byte) string {
	var env struct {
		Message string `json:"message"`
		Data    struct {
			Message string   `json:"message"`
			Errors  []string `json:"errors"`
		} `json:"data"`
	}
	if json.Unmarshal(body, &env) == nil {
		switch {
		case env.Message != "":
			return env.Message
		case env.Data.Message != "":
			return env.Data.Message
		case len(env.Data.Errors) > 0:
			return env.Data.Errors[0]
		}
	}
	return shorten.String(strings.TrimSpace(string(body)), 200)
}

// writeFrame sends one client frame (masked, as RFC 6455 requires) in a
// single write, so frames from different goroutines never interleave.
func (c *conn) writeFrame(op ws.OpCode, payload []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	c.wbuf.Reset()
	if err := wsutil.WriteClientMessage(&c.wbuf, op, payload); err != nil {
		return err
	}
	return c.flushLocked()
}

func (c *conn) flushLocked() error {
	if c.wtimeout > 0 {
		_ = c.nc.SetWriteDeadline(time.Now().Add(c.wtimeout))
	}
	_, err := c.nc.Write(c.wbuf.Bytes())
	return err
}

// controlWriter collects the control-frame replies (pong, close) the read
// loop writes, so they go out as one write under the frame lock.
type controlWriter struct{ c *conn }

func (w controlWriter) Write(p []byte) (int, error) {
	w.c.wbuf.Write(p)
	return len(p), nil
}

// request sends req (its request_id set here) and waits for the reply. A
// reply with status "error" is returned as a *ReplyError built by the caller
// from the reply; here it is just a reply.
func (c *conn) request(ctx context.Context, req protocol.Request, onReply func(reply)) (reply, error) {
	p := &pending{onReply: onReply, done: make(chan reply, 1)}
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return reply{}, errConnLost
	}
	c.nextID++
	id := "r" + strconv.FormatUint(c.nextID, 10)
	c.pending[id] = p
	c.mu.Unlock()
	req.RequestID = protocol.NewRequestID(id)

	data, err := json.Marshal(req)
	if err == nil {
		err = c.writeFrame(ws.OpText, data)
	}
	if err != nil {
		c.forget(id)
		c.close(err)
		return reply{}, errConnLost
	}
	select {
	case r := <-p.done:
		return r, nil
	case <-c.closed:
		// The reply may have raced the close.
		select {
		case r := <-p.done:
			return r, nil
		default:
		}
		return reply{}, errConnLost
	case <-ctx.Done():
		c.forget(id)
		return reply{}, ctx.Err()
	}
}

func (c *conn) forget(id string) {
	c.mu.Lock()
	delete(c.pending, id)
	c.mu.Unlock()
}

// close ends the connection with why, once; later calls keep the first
// reason. The read loop then returns.
func (c *conn) close(why error) {
	c.mu.Lock()
	if c.err == nil {
		c.err = why
	}
	c.mu.Unlock()
	_ = c.nc.Close()
}

// closeGracefully sends a normal close frame before closing, so the gateway
// logs a clean goodbye rather than a dropped connection.
func (c *conn) closeGracefully(why error) {
	_ = c.writeFrame(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
	c.close(why)
}

// reason returns why the connection ended, once closed is closed.
func (c *conn) reason() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// readLoop reads frames until the connection ends, passing each text
// message that is not a reply to route, with the error that decoding it
// met. It always closes c.closed.
func (c *conn) readLoop(route func(protocol.Message, error)) {
	err := c.read(route)
	c.close(err)
	if c.onClosed != nil {
		c.onClosed()
	}
	close(c.closed)
}

func (c *conn) read(route func(protocol.Message, error)) error {
	control := func(h ws.Header, r io.Reader) error {
		c.wmu.Lock()
		defer c.wmu.Unlock()
		c.wbuf.Reset()
		err := wsutil.ControlHandler{Src: r, Dst: controlWriter{c}, State: ws.StateClientSide, DisableSrcCiphering: true}.Handle(h)
		if c.wbuf.Len() > 0 {
			_ = c.flushLocked()
		}
		return err
	}
	rd := &wsutil.Reader{Source: c.br, State: ws.StateClientSide, MaxMessageSize: maxMessageBytes, OnIntermediate: control}
	var msg bytes.Buffer
	for {
		hdr, err := rd.NextFrame()
		if err != nil {
			return closeReason(err)
		}
		if hdr.OpCode.IsControl() {
			if err := control(hdr, rd); err != nil {
				return closeReason(err)
			}
			continue
		}
		msg.Reset()
		if _, err := msg.ReadFrom(rd); err != nil {
			return closeReason(err)
		}
		if hdr.OpCode != ws.OpText {
			continue // the protocol is JSON text; ignore anything else
		}
		// One malformed frame must not end the session: route drops it.
		var f protocol.Message
		err = json.Unmarshal(msg.Bytes(), &f)
		if err == nil && f.Action == protocol.ReplyAction {
			c.deliverReply(f)
			continue
		}
		route(f, err)
	}
}

func (c *conn) deliverReply(f protocol.Message) {
	id := f.RequestID.Text()
	c.mu.Lock()
	p := c.pending[id]
	delete(c.pending, id)
	c.mu.Unlock()
	if p == nil {
		return
	}
	r := reply{status: f.Status}
	_ = json.Unmarshal(f.Data, &r.data)
	if p.onReply != nil {
		p.onReply(r)
	}
	p.done <- r
}

// closeReason turns the read error into what a person should see.
func closeReason(err error) error {
	var ce wsutil.ClosedError
	if errors.As(err, &ce) {
		return &CloseError{Code: protocol.CloseCode(ce.Code), Reason: ce.Reason}
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return errors.New("gateway dropped the connection")
	}
	return err
}
