package gateway

import (
	"time"

	"github.com/gobwas/ws"

	"github.com/ccevents/ccevents/internal/shorten"
	"github.com/ccevents/ccevents/protocol"
)

// The closing handshake (RFC 6455 section 7), from either side, with the
// close codes and reasons of package protocol: starting a close (closeWith), writing the close
// frame after what is queued (writeClose, run by the writer), answering
// the client's close frame (peerClosed), and ending the TCP connection
// (kill). The outbox holds the close frame until the queue before it is
// written (outbox.go).

// closeWith starts the closing handshake: nothing more is accepted, what is
// queued is written (or dropped, when drop is set), then the close frame.
// It returns how many queued frames were dropped, or -1 when the connection
// was already closing.
func (c *conn) closeWith(code protocol.CloseCode, reason string, drop bool) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closeLocked(code, reason, drop)
}

// closeLocked is closeWith for a caller holding c.mu: tokenDue closes
// under it, so a refresh cannot move the expiry between its check and the
// close. Lock order: c.mu, then out.mu.
func (c *conn) closeLocked(code protocol.CloseCode, reason string, drop bool) int {
	dropped, start, ok := c.out.close(closeFrame(code, reason), drop)
	if !ok {
		return -1
	}
	c.stopTimersLocked()
	c.srv.m.closedWith(int(code))
	if start {
		c.startWriter(nil, nil)
	}
	return dropped
}

// goAway tells the client the gateway is going away, then closes with 1001.
func (c *conn) goAway() {
	c.enqueue(c.srv.shutdownNotice)
	c.closeWith(protocol.CloseGoingAway, protocol.ReasonGoingAway, false)
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
	c.closeWith(protocol.CloseCode(code), "", true)
	c.waitCloseWritten()
}

// failProtocol starts closing because the client broke the protocol;
// refusal, when set, is the abuse limit that caught it.
func (c *conn) failProtocol(code protocol.CloseCode, reason, refusal string) {
	if c.closeWith(code, reason, false) < 0 {
		return // already closing: this is just more of the same
	}
	c.srv.m.error(protocol.ErrProtocol)
	if refusal != "" {
		c.srv.m.refuse(refusal)
	}
	c.srv.log.Debug("closing connection: protocol violation", "remote", c.nc.RemoteAddr().String(), "code", int(code), "reason", reason)
}

// waitCloseWritten waits until our close frame is written (or cannot be).
// The writer always gets there: its writes have a deadline.
func (c *conn) waitCloseWritten() {
	if done := c.out.closeWritten(); done != nil {
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

// writeClose writes the close frame, half-closes the TCP connection and
// gives the client WriteTimeout to answer before the reader gives up.
func (c *conn) writeClose(msg []byte) {
	timeout := c.srv.cfg.WriteTimeout
	_ = c.nc.SetWriteDeadline(time.Now().Add(timeout))
	if _, err := c.nc.Write(msg); err != nil {
		c.nc.Close()
	} else {
		if cw, ok := c.nc.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_ = c.nc.SetReadDeadline(time.Now().Add(timeout))
	}
	c.out.markCloseWritten()
}

// kill closes the TCP connection at once.
func (c *conn) kill() {
	c.out.kill()
	c.mu.Lock()
	c.stopTimersLocked()
	c.mu.Unlock()
	c.nc.Close()
	c.cancel()
}

// closeFrame returns a close frame; the reason is cut, on a character
// boundary, to the 123 bytes a control frame leaves for it.
func closeFrame(code protocol.CloseCode, reason string) []byte {
	const maxReason = ws.MaxControlFramePayloadSize - 2
	reason = shorten.Prefix(reason, maxReason)
	return controlFrame(ws.OpClose, ws.NewCloseFrameBody(ws.StatusCode(code), reason))
}
