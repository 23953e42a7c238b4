//go:build unix

package gateway

import (
	"runtime"
	"sync"
	"syscall"
	"unsafe"
)

// Writing every connection's frames from a goroutine started for the
// purpose costs a goroutine start, a park and a wake-up per delivery when
// each event finds the connection's queue empty, which is the usual case at
// tens of events per second per connection. And the runtime runs those
// goroutines in no particular order, so under load some connections wait
// much longer than others. Instead, plain TCP connections are written by a
// few flushers, one per core, that take ready connections first come first
// served and write each one's queue with one non-blocking writev (on
// Linux, the queues of up to 32 connections with one io_uring_enter:
// flush_ring_linux.go). Only a connection whose socket is full gets a
// writer goroutine of its own, which waits for room under the write
// deadline; TLS connections always do.

// flushQueueLen bounds the connections waiting for a flusher; beyond it a
// connection gets its own writer goroutine, so enqueue never blocks.
const flushQueueLen = 1 << 16

// flushers is the server's pool of flushers, started by Serve (or on
// first use).
type flushers struct {
	once  sync.Once
	ready chan *conn
}

// (flush_other.go: without writev, every connection has its own writer.)

// startFlushers starts the flushers, once. Serve calls it, so the log
// says at start which way frames are written.
func (s *Server) startFlushers() {
	fl := &s.flushers
	fl.once.Do(func() {
		fl.ready = make(chan *conn, flushQueueLen)
		var ringErr error
		rings := 0
		for range runtime.GOMAXPROCS(0) {
			ring, err := s.newRingWriter()
			if err != nil {
				ringErr = err
			}
			if ring != nil {
				rings++
			}
			go newFlusher(fl.ready, ring).run(s.ctx.Done())
		}
		switch {
		case s.cfg.NoIOUring:
			s.log.Info("writing websocket frames with one writev per connection", "reason", "io_uring turned off")
		case ringErr != nil:
			s.log.Info("writing websocket frames with one writev per connection", "reason", ringErr)
		case rings > 0:
			s.log.Info("writing websocket frames with io_uring", "flushers", rings)
		}
	})
}

// schedule hands a connection with frames to write to a flusher. The
// caller owns the connection's outbox and hands it over.
func (s *Server) schedule(c *conn) {
	if c.raw == nil {
		c.startWriter(nil, nil)
		return
	}
	s.startFlushers()
	select {
	case s.flushers.ready <- c:
	default:
		c.startWriter(nil, nil)
	}
}

// flusher writes ready connections one after another.
type flusher struct {
	ready chan *conn
	// ring, where the kernel allows io_uring, writes the connections
	// waiting in line together, one send each, with a single syscall
	// (flush_ring_linux.go); nil writes each with its own writev.
	ring *ringWriter
	iov  [maxWritev]syscall.Iovec
	// The writev in progress: its iovec count in, its result out. writevFn
	// is f.writev bound once, so passing it to RawConn.Write allocates
	// nothing.
	cnt      int
	n        int
	errno    syscall.Errno
	writevFn func(fd uintptr) bool
	// clock is when this flush or round wrote, for the delivery latency.
	clock writeClock
}

// newFlusher makes a flusher taking connections from ready; with ring
// nil it writes each connection with its own writev.
func newFlusher(ready chan *conn, ring *ringWriter) *flusher {
	f := &flusher{ready: ready, ring: ring}
	f.writevFn = f.writev
	return f
}

func (f *flusher) run(done <-chan struct{}) {
	for {
		select {
		case c := <-f.ready:
			if f.ring != nil {
				f.flushRound(c)
			} else {
				f.flush(c)
			}
			// Raw syscalls (writev, io_uring_enter) never give the core
			// back to the scheduler: yield, so the fan-out that fills the
			// queues is not kept waiting behind the flushers.
			runtime.Gosched()
		case <-done:
			if f.ring != nil {
				f.ring.close()
			}
			// The server has shut down and its connections are gone; any
			// still queued here get writers of their own.
			for {
				select {
				case c := <-f.ready:
					c.startWriter(nil, nil)
				default:
					return
				}
			}
		}
	}
}

// flush writes what c has queued without waiting, then either lets the
// connection go idle, puts it back in line when more frames came meanwhile,
// or hands what the socket could not take to a writer goroutine.
func (f *flusher) flush(c *conn) {
	batch, ok := take(c)
	if !ok {
		return
	}
	f.clock.reset()
	rest, full, err := f.write(c, batch)
	f.finish(c, batch, rest, full, err)
}

// take returns the frames c has queued. When it is closing (the close
// frame, or the TCP close, is due) or has nothing queued, it hands c to
// its writer goroutine, which knows how to finish either, and returns
// false.
func take(c *conn) ([][]byte, bool) {
	batch, ok := c.out.take()
	if !ok {
		c.startWriter(nil, nil)
	}
	return batch, ok
}

// finish acts on the outcome of writing batch to c: rest is what was not
// written (full when the socket had no room), err a broken connection.
func (f *flusher) finish(c *conn, batch, rest [][]byte, full bool, err error) {
	switch {
	case err != nil:
		clear(batch)
		c.writeFailed(err)
		return
	case rest != nil:
		// The socket is full (or the connection is being closed): the
		// rest goes out from a goroutine that can wait, or finds out.
		if full {
			c.srv.m.socketFull.Inc()
		}
		c.wrote(len(batch)-len(rest), &f.clock)
		c.startWriter(batch, rest)
		return
	}
	c.wrote(len(batch), &f.clock)
	clear(batch)
	if c.out.finish(batch) {
		// More arrived, or closing: back of the line.
		c.srv.schedule(c)
	}
}

// write writes batch with non-blocking writev calls of up to maxWritev
// frames. It returns the frames not written yet (the first one possibly
// cut) when the socket is full (full) or the descriptor is being closed,
// or an error when the connection is broken.
func (f *flusher) write(c *conn, batch [][]byte) (rest [][]byte, full bool, err error) {
	for len(batch) > 0 {
		cnt := min(len(batch), maxWritev)
		want := 0
		for i, b := range batch[:cnt] {
			f.iov[i].Base = unsafe.SliceData(b)
			f.iov[i].SetLen(len(b))
			want += len(b)
		}
		f.cnt = cnt
		err := c.raw.Write(f.writevFn)
		clear(f.iov[:cnt]) // keep no frame reachable from here
		if err != nil {
			// Not written at all: the connection is being closed, or a
			// write deadline its writer set has passed; the writer loop
			// finds the one or moves the other.
			return batch, false, nil
		}
		if wrote, rest, full, err := sendOutcome(batch, want, f.n, f.errno); !wrote {
			return rest, full, err
		}
		batch = batch[cnt:]
	}
	return nil, false, nil
}

// sendOutcome reads one non-blocking send of the first want bytes of
// batch, which wrote n bytes or failed with errno: wrote when all of them
// went out; otherwise what is left for the connection's writer (full when
// the socket had no room), or the error that broke the connection.
func sendOutcome(batch [][]byte, want, n int, errno syscall.Errno) (wrote bool, rest [][]byte, full bool, err error) {
	switch {
	case errno == syscall.EAGAIN || errno == syscall.EINTR:
		return false, batch, errno == syscall.EAGAIN, nil
	case errno != 0:
		return false, nil, false, errno
	case n < want:
		return false, cutWritten(batch, n), true, nil
	}
	return true, nil, false, nil
}

// writev is one non-blocking writev of f.iov[:f.cnt] on fd; it never asks
// to wait. The socket is non-blocking, so the raw form is safe: without it
// the runtime counts the flusher as in a syscall, and its monitor thread,
// seeing that on every tick, keeps waking every 20 µs to hand the flusher's
// core to another thread (a tenth of the gateway's CPU in profiles).
func (f *flusher) writev(fd uintptr) bool {
	n, _, errno := syscall.RawSyscall(syscall.SYS_WRITEV, fd, uintptr(unsafe.Pointer(&f.iov[0])), uintptr(f.cnt))
	f.n, f.errno = int(n), errno
	return true
}

// cutWritten drops the first n bytes from frames.
func cutWritten(frames [][]byte, n int) [][]byte {
	for n > 0 && n >= len(frames[0]) {
		n -= len(frames[0])
		frames = frames[1:]
	}
	if n > 0 {
		frames[0] = frames[0][n:]
	}
	return frames
}
