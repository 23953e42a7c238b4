package gateway

import (
	"time"

	"github.com/ccevents/ccevents/protocol"
)

// How a connection's frames reach its socket: enqueue puts them in the
// outbox (outbox.go) and, when the outbox was idle, hands the connection
// to a flusher (flush.go); a frame that does not fit closes the
// connection as a slow consumer. A connection whose socket is full, that
// speaks TLS, or whose close frame is due is written by a writer
// goroutine of its own (writeLoop) while that lasts: the writer fallback.

// enqueue queues one complete frame for the client and makes sure a writer
// runs. It never blocks: a full queue closes the connection as a slow
// consumer. It reports whether the frame was queued.
func (c *conn) enqueue(frame []byte) bool { return c.enqueueLive(frame, 0) }

// enqueueLive is enqueue for the frame of a live event stored at stored
// (Unix ns), whose delivery latency is counted once the frame is written;
// 0 counts nothing.
func (c *conn) enqueueLive(frame []byte, stored int64) bool {
	switch c.out.enqueue(frame, stored) {
	case enqueuedWriting:
		return true
	case enqueuedIdle:
		c.srv.schedule(c)
		return true
	case enqueueFull:
		c.overflow()
	}
	return false
}

// overflow closes a slow consumer: a connection whose outbound queue (or
// the live events held during its catch-up) would go beyond
// OutboundMaxMessages or OutboundMaxBytes. What is queued is dropped, and
// the client is told to resume with since (4008).
func (c *conn) overflow() {
	cfg := &c.srv.cfg
	dropped := c.closeWith(protocol.CloseSlowConsumer, protocol.ReasonSlowConsumer, true)
	if dropped < 0 {
		return
	}
	c.srv.m.dropped.WithLabelValues(dropSlowConsumer).Add(float64(dropped))
	// Logged from its own goroutine: overflow runs inside the fan-out, under
	// its locks, where no I/O belongs.
	go c.srv.log.Warn("closing slow consumer", "remote", c.nc.RemoteAddr().String(), "dropped", dropped,
		"max_messages", cfg.OutboundMaxMessages, "max_bytes", cfg.OutboundMaxBytes)
}

// startWriter gives the connection a writer goroutine of its own, which
// may wait under the write deadline: the writer fallback. It first
// finishes rest, the unwritten end of batch, when a flusher left one. The
// caller owns the outbox (see outbox) and hands it over.
func (c *conn) startWriter(batch, rest [][]byte) { go c.writeLoop(batch, rest) }

// maxWritev bounds the frames given to one writev; the runtime keeps the
// largest iovec array a connection used, so this also bounds that memory.
const maxWritev = 64

// writeLoop writes queued frames until the queue is empty, taking the whole
// queue at once so frames that piled up go out in as few syscalls as
// possible, then the close frame if one is due. The queue and the batch
// being written trade places, so steady traffic allocates no slices. It
// first finishes rest, the unwritten end of batch, when a flusher left it
// one.
func (c *conn) writeLoop(batch, rest [][]byte) {
	for frames := rest; ; frames = batch {
		if frames != nil {
			err := c.write(frames)
			clear(batch)
			if err != nil {
				c.writeFailed(err)
				return
			}
			c.wrote(len(frames), &writeClock{})
		}
		var closeMsg []byte
		batch, closeMsg = c.out.next(batch)
		switch {
		case closeMsg != nil:
			c.writeClose(closeMsg)
			return
		case batch == nil:
			return // idle again, or the connection is dead
		}
	}
}

// write sends frames with writev, under the write deadline. The deadline
// is moved only once half of WriteTimeout has passed, since moving it on
// every write costs a timer update per delivery: a write still gets
// between half and all of WriteTimeout.
func (c *conn) write(batch [][]byte) error {
	timeout := c.srv.cfg.WriteTimeout
	if now := time.Now(); c.writeDeadline.Sub(now) < timeout/2 {
		c.writeDeadline = now.Add(timeout)
		if err := c.nc.SetWriteDeadline(c.writeDeadline); err != nil {
			return err
		}
	}
	for len(batch) > 0 {
		n := min(len(batch), maxWritev)
		c.bufs = batch[:n]
		if _, err := c.bufs.WriteTo(c.nc); err != nil {
			c.bufs = nil
			return err
		}
		batch = batch[n:]
	}
	c.bufs = nil
	return nil
}

// writeFailed ends a connection that could not be written to.
func (c *conn) writeFailed(err error) {
	was := c.out.kill()
	c.nc.Close()
	if !was.closing() {
		c.srv.m.error(errWrite)
		c.srv.log.Debug("closing connection: write failed", "remote", c.nc.RemoteAddr().String(), "err", err)
	}
}

// wrote reports the next n frames of the batch being written as on the
// socket at clock: each live event among them is one delivery latency
// sample.
func (c *conn) wrote(n int, clock *writeClock) {
	h := c.srv.m.latency
	for _, stored := range c.out.written(n) {
		if stored != 0 {
			h.shardOf(c).observe(&h.boundsNS, clock.read()-stored)
		}
	}
}

// writeClock reads the wall clock once per write (or flusher round), and
// only when a live event was written: on a virtual machine a clock read
// costs as much as a tenth of a delivery.
type writeClock struct{ now int64 }

func (w *writeClock) reset() { w.now = 0 }

func (w *writeClock) read() int64 {
	if w.now == 0 {
		w.now = time.Now().UnixNano()
	}
	return w.now
}
