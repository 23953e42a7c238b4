package gateway

import (
	"bytes"
	"context"
	"errors"
	"fmt"
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
)

// Close codes the gateway sends besides the RFC 6455 ones.
const (
	// CloseKeepaliveTimeout: nothing, not even a pong, arrived for
	// PingInterval+PongTimeout; the peer is taken for dead.
	CloseKeepaliveTimeout ws.StatusCode = 4000
	// CloseTokenExpired: the token the connection subscribed with expired
	// and no refresh brought a new one. Get a new token, reconnect and
	// resume with since.
	CloseTokenExpired ws.StatusCode = 4001
	// CloseSlowConsumer: the connection's outbound queue overflowed because
	// the client did not read fast enough. Reconnect and resume with since.
	CloseSlowConsumer ws.StatusCode = 4008
)

// keepQueueCap is the largest outbound queue capacity a quiet connection
// keeps; arrays grown by a burst are let go at the next ping, so idle
// connections stay small.
const keepQueueCap = 16

// conn is one websocket connection. Its reader goroutine lives as long as the
// connection, reads client messages and handles them one at a time, and is
// the only one to touch the subscription state (accounts, nbindings,
// nextOrder). Frames for the client go through the outbound queue, written
// by a writer goroutine that exists only while the queue is non-empty.
type conn struct {
	srv    *Server
	nc     net.Conn
	src    io.Reader // nc, preceded by any bytes read with the handshake
	ip     string
	ctx    context.Context // cancelled when the connection ends
	cancel context.CancelFunc

	// Owned by the reader goroutine.
	accounts  []*connAccount
	nbindings int
	nextOrder uint64
	requests  limit.Bucket // subscribe, unsubscribe and refresh requests
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

	mu         sync.Mutex
	queue      [][]byte // complete frames waiting to be written
	storedAt   []int64  // per frame in queue: when its live event was stored (Unix ns), 0 for other frames
	spare      [][]byte // the other queue array, while not being written
	spareAt    []int64  // the other storedAt array
	queued     int      // bytes in queue
	writing    bool     // a writer goroutine is running (or the close frame is out)
	closing    bool     // no more frames are accepted
	killed     bool     // the TCP connection is closed
	closeFired bool     // closeDone is closed
	closeMsg   []byte   // close frame to write once the queue is drained
	closeDone  chan struct{}
	room       chan struct{} // closed when the writer takes the queue, for replays waiting for room
	pinger     *time.Timer
	bufs       net.Buffers // owned by the writer; a field so writev does not allocate
	// The storedAt of the batch being written, and how many of its frames
	// were reported written (see wrote); owned by the writer.
	writingAt []int64
	wroteN    int
	// writeDeadline is the write deadline last set; owned by the writer.
	writeDeadline time.Time

	// Token expiry of the subscriptions (see tokens.go).
	tokenTimer   *time.Timer
	tokenExpires time.Time // earliest expiry over the subscribed accounts; zero: none
	tokenAccount string    // the account of that token
	noticeAt     time.Time
	noticeSent   bool
}

func newConn(s *Server, nc net.Conn, ip string, early []byte) *conn {
	c := &conn{srv: s, nc: nc, src: nc, ip: ip, requests: limit.NewBucket(s.cfg.SubscribeRate, s.cfg.SubscribeBurst),
		connected: s.connectTime()}
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
			c.failProtocol(ws.StatusUnsupportedData, "binary messages are not supported: send JSON as text", refuseBinary)
			continue
		}
		buf := c.srv.msgBufs.Get().(*bytes.Buffer)
		buf.Reset()
		_, err = buf.ReadFrom(rd)
		if err == nil && !c.isClosing() {
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
	c.mu.Lock()
	if !c.closing {
		_ = c.nc.SetReadDeadline(time.Now().Add(cfg.PingInterval + cfg.PongTimeout))
	}
	c.mu.Unlock()
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

// peerClosed completes the closing handshake on the client's close frame:
// it answers (unless our close frame already went or is queued) and waits
// until that is written; the connection is then done.
func (c *conn) peerClosed(p []byte) {
	code, reason := ws.ParseCloseFrameData(p)
	switch {
	case len(p) == 0:
		code = ws.StatusNormalClosure
	case len(p) == 1 || ws.CheckCloseFrameData(code, reason) != nil:
		code = ws.StatusProtocolError
	}
	c.closeWith(code, "", true)
	c.waitCloseWritten()
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
		c.failProtocol(ws.StatusMessageTooBig, fmt.Sprintf("message larger than the limit of %d bytes", c.srv.cfg.MaxFrameBytes), refuseFrameSize)
		c.linger()
	case errors.Is(err, wsutil.ErrInvalidUTF8):
		c.failProtocol(ws.StatusInvalidFramePayloadData, "text message is not valid UTF-8", refuseUTF8)
		return true
	case errors.As(err, &perr), errors.Is(err, ws.ErrHeaderLengthMSB), errors.Is(err, ws.ErrHeaderLengthUnexpected):
		c.failProtocol(ws.StatusProtocolError, err.Error(), "")
		c.linger()
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.isClosing() {
			return false // the client did not answer our close frame in time
		}
		cfg := &c.srv.cfg
		c.srv.log.Debug("closing dead connection", "remote", c.nc.RemoteAddr().String())
		c.closeWith(CloseKeepaliveTimeout, fmt.Sprintf("nothing received for %s, not even a pong", cfg.PingInterval+cfg.PongTimeout), true)
		c.waitCloseWritten()
	default:
		// EOF, reset, or closed by us: there is nobody left to tell.
	}
	return false
}

// failProtocol starts closing because the client broke the protocol;
// refusal, when set, is the abuse limit that caught it.
func (c *conn) failProtocol(code ws.StatusCode, reason, refusal string) {
	if c.closeWith(code, reason, false) < 0 {
		return // already closing: this is just more of the same
	}
	c.srv.m.error(errProtocol)
	if refusal != "" {
		c.srv.m.refuse(refusal)
	}
	c.srv.log.Debug("closing connection: protocol violation", "remote", c.nc.RemoteAddr().String(), "code", int(code), "reason", reason)
}

// waitCloseWritten waits until our close frame is written (or cannot be).
// The writer always gets there: its writes have a deadline.
func (c *conn) waitCloseWritten() {
	c.mu.Lock()
	done := c.closeDone
	c.mu.Unlock()
	if done != nil {
		<-done
	}
}

// linger lets the client read our close frame when we can no longer find
// frames in what it sends: it discards input until the client ends the
// connection or the deadline the writer set passes.
func (c *conn) linger() {
	c.waitCloseWritten()
	var buf [512]byte
	for {
		if _, err := c.src.Read(buf[:]); err != nil {
			return
		}
	}
}

func (c *conn) isClosing() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closing
}

// closeWith starts the closing handshake: nothing more is accepted, what is
// queued is written (or dropped, when drop is set), then the close frame.
// It returns how many queued frames were dropped, or -1 when the connection
// was already closing.
func (c *conn) closeWith(code ws.StatusCode, reason string, drop bool) int {
	return c.closeWhen(code, reason, drop, nil)
}

// closeWhen is closeWith that first checks, under the connection's lock,
// that the reason to close still holds (when still is set); it returns -1
// without closing when it does not.
func (c *conn) closeWhen(code ws.StatusCode, reason string, drop bool, still func() bool) int {
	frame := closeFrame(code, reason)
	c.mu.Lock()
	if c.closing || (still != nil && !still()) {
		c.mu.Unlock()
		return -1
	}
	c.closing = true
	dropped := 0
	if drop {
		dropped = len(c.queue)
		clear(c.queue)
		c.queue, c.storedAt, c.queued = c.queue[:0], c.storedAt[:0], 0
	}
	c.closeMsg = frame
	c.closeDone = make(chan struct{})
	c.wakeLocked()
	start := !c.writing
	c.writing = true
	c.stopTimersLocked()
	c.mu.Unlock()
	c.srv.m.closedWith(int(code))
	if start {
		go c.writeLoop(nil, nil)
	}
	return dropped
}

// overflow closes a connection whose outbound queue is full.
func (c *conn) overflow() {
	cfg := &c.srv.cfg
	dropped := c.closeWith(CloseSlowConsumer, "slow consumer: reconnect and resume with since", true)
	if dropped < 0 {
		return
	}
	c.srv.m.dropped.WithLabelValues(dropSlowConsumer).Add(float64(dropped))
	// Logged from its own goroutine: overflow runs inside the fan-out, under
	// its locks, where no I/O belongs.
	go c.srv.log.Warn("closing slow consumer", "remote", c.nc.RemoteAddr().String(), "dropped", dropped,
		"max_messages", cfg.OutboundMaxMessages, "max_bytes", cfg.OutboundMaxBytes)
}

// goAway tells the client the gateway is going away, then closes with 1001.
func (c *conn) goAway() {
	c.enqueue(c.srv.shutdownNotice)
	c.closeWith(ws.StatusGoingAway, "the gateway is shutting down; reconnect", false)
}

// ping sends a websocket ping and schedules the next one. It also lets go
// of queue arrays a burst made large, once the connection is quiet: doing
// that on every idle moment instead would reallocate them for every burst.
func (c *conn) ping() {
	c.mu.Lock()
	if !c.writing {
		if cap(c.queue) > keepQueueCap {
			c.queue, c.storedAt = nil, nil
		}
		if cap(c.spare) > keepQueueCap {
			c.spare, c.spareAt = nil, nil
		}
	}
	c.mu.Unlock()
	if !c.enqueue(c.srv.pingFrame) {
		return
	}
	c.mu.Lock()
	if !c.closing {
		c.pinger.Reset(c.srv.cfg.PingInterval)
	}
	c.mu.Unlock()
}

// stopTimersLocked stops the pings and the token expiry of a connection
// that is closing.
func (c *conn) stopTimersLocked() {
	if c.pinger != nil {
		c.pinger.Stop()
	}
	if c.tokenTimer != nil {
		c.tokenTimer.Stop()
	}
}

// wakeLocked releases replays waiting for room in the queue.
func (c *conn) wakeLocked() {
	if c.room != nil {
		close(c.room)
		c.room = nil
	}
}

// fireCloseDoneLocked tells waitCloseWritten that the close frame is out (or
// will never be).
func (c *conn) fireCloseDoneLocked() {
	if c.closeDone != nil && !c.closeFired {
		close(c.closeDone)
		c.closeFired = true
	}
}

// kill closes the TCP connection at once.
func (c *conn) kill() {
	c.mu.Lock()
	c.closing = true
	c.killed = true
	c.wakeLocked()
	c.stopTimersLocked()
	c.mu.Unlock()
	c.nc.Close()
	c.cancel()
}

// finish runs when the reader ends: it closes the connection and gives back
// everything it held.
func (c *conn) finish() {
	c.kill()
	for _, ca := range c.accounts {
		c.dropAccount(ca)
	}
	c.accounts = nil
	c.srv.forget(c)
}
