package gateway

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/ccevents/ccevents/internal/limit"
	"github.com/ccevents/ccevents/protocol"
)

// conn is one websocket connection. Its reader goroutine lives as long as the
// connection, reads client messages and handles them one at a time, and is
// the only one to touch what it subscribed (subscribed). Frames for the client go through its outbox, written by a
// flusher or, while one is needed, a writer goroutine of its own (write.go).
//
// Lock order: connAccount.mu, then conn.mu, then outbox.mu.
type conn struct {
	srv    *Server
	nc     net.Conn
	src    io.Reader // nc, preceded by any bytes read with the handshake
	ip     string
	ctx    context.Context // cancelled when the connection ends
	cancel context.CancelFunc

	// Owned by the reader goroutine.
	subscribed subscriptions // account.go
	requests   limit.Bucket  // subscribe, unsubscribe and refresh requests
	// view holds the connection's token (session.go) and what the socket
	// listing shows of the above; the reader replaces it after each request
	// that changed either (sockets.go).
	view atomic.Pointer[connView]

	// connected is when the upgrade was done, in Unix nanoseconds, unique
	// on this gateway: the socket id is made of it (sockets.go).
	connected int64

	// raw is the TCP socket for the flushers' non-blocking writes; nil for
	// TLS, which is always written by the connection's own writer.
	raw syscall.RawConn

	// out holds the frames waiting for the client and where the
	// connection's output stands (outbox.go).
	out outbox
	// Owned by the writer (write.go): the writev array, a field so writev
	// does not allocate, and the write deadline last set.
	bufs          net.Buffers
	writeDeadline time.Time

	// mu guards the timers: the keepalive pings and the token expiry
	// (tokens.go). Closing stops both under mu, so a timer re-armed under
	// mu by a connection still open is stopped by the close. Taken before
	// out.mu.
	mu           sync.Mutex
	pinger       *time.Timer
	tokenTimer   Timer
	tokenExpires time.Time // earliest expiry over the subscribed accounts; zero: none
	tokenAccount string    // the account of that token
	noticeAt     time.Time
	noticeSent   bool
}

func newConn(s *Server, nc net.Conn, ip string, early []byte) *conn {
	c := &conn{srv: s, nc: nc, src: nc, ip: ip, requests: limit.NewBucket(s.cfg.SubscribeRate, s.cfg.SubscribeBurst),
		connected: s.connectTime()}
	c.out.limits = &s.outLimits
	if len(early) > 0 {
		c.src = io.MultiReader(bytes.NewReader(early), nc)
	}
	// A plain TCP connection (kept inside the listener's wrapper) offers
	// its socket; TLS connections do not, and are written by their writer.
	if sc, ok := nc.(syscall.Conn); ok {
		c.raw, _ = sc.SyscallConn()
	}
	c.ctx, c.cancel = context.WithCancel(s.ctx)
	if s.cfg.PingInterval > 0 {
		c.mu.Lock()
		c.pinger = time.AfterFunc(s.cfg.PingInterval, c.ping)
		c.mu.Unlock()
	}
	return c
}

// readLoop reads and handles client messages until the connection ends,
// then releases everything the connection held. Once a close is under way
// it keeps reading frames (ignoring requests) until the client's close
// frame, so the closing handshake completes and the TCP connection is
// closed by the server, as RFC 6455 asks.
func (c *conn) readLoop() {
	defer c.finish()
	rd := &wsutil.Reader{
		Source:         c.src,
		State:          ws.StateServerSide,
		CheckUTF8:      true,
		MaxMessageSize: c.srv.cfg.MaxFrameBytes,
		OnIntermediate: c.intermediate,
	}
	for {
		c.extendRead()
		hdr, err := rd.NextFrame()
		if err != nil {
			c.readFailed(err)
			return
		}
		if hdr.OpCode.IsControl() {
			if c.control(hdr, rd) {
				return
			}
			continue
		}
		if hdr.OpCode == ws.OpBinary {
			if err := rd.Discard(); err != nil {
				return
			}
			c.failProtocol(protocol.CloseUnsupportedData, protocol.ReasonBinary, refuseBinary)
			continue
		}
		buf := c.srv.msgBufs.Get().(*bytes.Buffer)
		buf.Reset()
		_, err = buf.ReadFrom(rd)
		if err == nil && !c.out.closing() {
			c.handleOffStack(buf.Bytes())
		}
		if int64(buf.Cap()) <= c.srv.cfg.MaxFrameBytes+bytes.MinRead {
			c.srv.msgBufs.Put(buf)
		}
		if err != nil && !c.readFailed(err) {
			return
		}
	}
}

// handleOffStack handles one message on a goroutine of its own and waits
// for it. Decoding, token checks and replays need deep stacks; run on the
// reader, they would grow the stack that every idle connection then keeps
// while parked in Read. This way the reader stays at the minimum size.
func (c *conn) handleOffStack(msg []byte) {
	done := make(chan struct{})
	go func() {
		defer close(done)
		c.handle(msg)
	}()
	<-done
}

// extendRead moves the read deadline: a peer from which nothing arrives for
// a ping interval plus the pong timeout is dead. A closing connection keeps
// the deadline the writer set for the client's answer.
func (c *conn) extendRead() {
	cfg := &c.srv.cfg
	if cfg.PingInterval < 0 {
		return
	}
	c.out.whileOpen(func() {
		_ = c.nc.SetReadDeadline(time.Now().Add(cfg.PingInterval + cfg.PongTimeout))
	})
}

// control handles a ping, pong or close frame; it reports whether the
// connection is done.
func (c *conn) control(hdr ws.Header, rd io.Reader) bool {
	var buf [ws.MaxControlFramePayloadSize]byte
	p := buf[:hdr.Length]
	if _, err := io.ReadFull(rd, p); err != nil {
		c.readFailed(err)
		return true
	}
	switch hdr.OpCode {
	case ws.OpPing:
		c.enqueue(controlFrame(ws.OpPong, p))
	case ws.OpClose:
		c.peerClosed(p)
		return true
	}
	// A pong only proves the peer is alive, which extendRead has noted.
	return false
}

// peerCloseError carries a close frame met in the middle of a fragmented
// message out of the frame reader.
type peerCloseError struct{ payload []byte }

func (peerCloseError) Error() string { return "peer sent a close frame" }

// intermediate handles control frames between the fragments of a message.
func (c *conn) intermediate(hdr ws.Header, r io.Reader) error {
	var buf [ws.MaxControlFramePayloadSize]byte
	p := buf[:hdr.Length]
	if _, err := io.ReadFull(r, p); err != nil {
		return err
	}
	switch hdr.OpCode {
	case ws.OpPing:
		c.enqueue(controlFrame(ws.OpPong, p))
	case ws.OpClose:
		return peerCloseError{payload: bytes.Clone(p)}
	}
	return nil
}

// readFailed handles a read error, telling the client why when it broke the
// protocol. It reports whether frames can still be read: only a message
// that was read whole but was not UTF-8 leaves the stream intact.
func (c *conn) readFailed(err error) bool {
	var pce peerCloseError
	var perr ws.ProtocolError
	switch {
	case errors.As(err, &pce):
		c.peerClosed(pce.payload)
	case errors.Is(err, wsutil.ErrMessageTooLarge), errors.Is(err, wsutil.ErrFrameTooLarge):
		c.failProtocol(protocol.CloseMessageTooBig, protocol.ReasonTooBig(c.srv.cfg.MaxFrameBytes), refuseFrameSize)
		c.linger()
	case errors.Is(err, wsutil.ErrInvalidUTF8):
		c.failProtocol(protocol.CloseInvalidUTF8, protocol.ReasonInvalidUTF8, refuseUTF8)
		return true
	case errors.As(err, &perr), errors.Is(err, ws.ErrHeaderLengthMSB), errors.Is(err, ws.ErrHeaderLengthUnexpected):
		c.failProtocol(protocol.CloseProtocolError, err.Error(), "")
		c.linger()
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.out.closing() {
			return false // the client did not answer our close frame in time
		}
		cfg := &c.srv.cfg
		c.srv.log.Debug("closing dead connection", "remote", c.nc.RemoteAddr().String())
		c.closeWith(protocol.CloseKeepaliveTimeout, protocol.ReasonKeepaliveTimeout(cfg.PingInterval+cfg.PongTimeout), true)
		c.waitCloseWritten()
	default:
		// EOF, reset, or closed by us: there is nobody left to tell.
	}
	return false
}

// ping sends a websocket ping and schedules the next one. It also lets go
// of queue arrays a burst made large, once the connection is quiet.
func (c *conn) ping() {
	c.out.shrink()
	if !c.enqueue(c.srv.pingFrame) {
		return
	}
	c.mu.Lock()
	if !c.out.closing() { // c.mu, then out.mu
		c.pinger.Reset(c.srv.cfg.PingInterval)
	}
	c.mu.Unlock()
}

// stopTimersLocked stops the pings and the token expiry of a connection
// that is closing; the caller holds c.mu.
func (c *conn) stopTimersLocked() {
	if c.pinger != nil {
		c.pinger.Stop()
	}
	if c.tokenTimer != nil {
		c.tokenTimer.Stop()
	}
}

// finish runs when the reader ends: it closes the connection and gives back
// everything it held.
func (c *conn) finish() {
	c.kill()
	for _, ca := range c.subscribed.accounts {
		c.dropAccount(ca)
	}
	c.subscribed.accounts = nil
	c.srv.forget(c)
}
