package gateway

import (
	"fmt"
	"log/slog"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ccevents/ccevents/internal/uring"
)

// When events are sparse, every delivery is a send of its own, and on a
// virtual machine a syscall's entry and exit cost as much as the send's
// work on loopback. So a flusher with an io_uring takes every connection
// waiting in line, up to ringConns, and sends to all of them with one
// io_uring_enter. The sends carry MSG_DONTWAIT and so are done, or fail
// with EAGAIN on a full socket, during that call: the results are read
// right after it and handled exactly as a writev's. BenchmarkFlushRound
// compares the two.

// ringConns is the most connections one io_uring_enter writes.
const ringConns = 32

// ringWriter is a flusher's io_uring and the round being written.
type ringWriter struct {
	ring    *uring.Ring
	log     *slog.Logger
	entries []ringEntry
	msgs    [ringConns]unix.Msghdr
	iovs    [ringConns][maxWritev]unix.Iovec
	done    [ringConns]uring.Completion

	// While a round is submitted: how many entries hold their descriptor
	// (see holdNext), the order their sends were prepared in, and how
	// many of those the kernel took.
	depth    int
	order    []int
	took     int
	failed   error
	holdFn   func(fd uintptr)
	stranded [][][]byte // frames of sends that never completed (see fail)
}

// ringEntry is one connection in a round.
type ringEntry struct {
	c     *conn
	batch [][]byte
	sent  int // frames handed to this round's send
	want  int // their bytes
	state entryState
}

type entryState uint8

const (
	notHeld   entryState = iota // being closed: not sent
	prepared                    // its send is in the ring
	submitted                   // the kernel took its send
	completed                   // and its result is handled
)

// newRingWriter sets up an io_uring for one flusher; nil (and why) when
// the configuration or the kernel rules it out.
func (s *Server) newRingWriter() (*ringWriter, error) {
	if s.cfg.NoIOUring {
		return nil, nil
	}
	ring, err := uring.New(ringConns)
	if err != nil {
		return nil, fmt.Errorf("set up io_uring: %w", err)
	}
	w := &ringWriter{ring: ring, log: s.log, entries: make([]ringEntry, 0, ringConns), order: make([]int, 0, ringConns)}
	w.holdFn = w.hold
	return w, nil
}

func (w *ringWriter) close() {
	if w.ring.InFlight() == 0 { // otherwise the kernel may still use the frames
		_ = w.ring.Close()
	}
}

// flushRound writes first and the connections waiting behind it.
func (f *flusher) flushRound(first *conn) {
	w := f.ring
	w.add(first)
more:
	for len(w.entries) < ringConns {
		select {
		case c := <-f.ready:
			w.add(c)
		default:
			break more
		}
	}
	if len(w.entries) == 0 {
		return
	}
	w.depth, w.took, w.failed = 0, 0, nil
	f.clock.reset()
	w.holdNext()
	for _, i := range w.order[:w.took] {
		w.entries[i].state = submitted
	}
	w.reap(f) // what the kernel took, even if it did not take all
	for i := range w.entries {
		e := &w.entries[i]
		clear(w.iovs[i][:e.sent]) // keep no frame reachable from here
		switch e.state {
		case notHeld:
			// Being closed: the writer loop finds out.
			f.finish(e.c, e.batch, e.batch, false, nil)
		case prepared:
			// The kernel did not take it: a writev instead.
			rest, full, err := f.write(e.c, e.batch)
			f.finish(e.c, e.batch, rest, full, err)
		case submitted:
			// Its completion could not be read (see reap).
			w.stranded = append(w.stranded, e.batch)
			e.c.writeFailed(w.failed)
		}
	}
	clear(w.entries)
	w.entries, w.order = w.entries[:0], w.order[:0]
	if w.failed != nil {
		// io_uring failing is unforeseen: from now on, a writev each.
		w.log.Warn("io_uring failed; writing websocket frames with one writev per connection from now on", "err", w.failed)
		w.close()
		f.ring = nil
	}
}

func (w *ringWriter) add(c *conn) {
	if batch, ok := take(c); ok {
		w.entries = append(w.entries, ringEntry{c: c, batch: batch})
	}
}

// holdNext holds the descriptor of the round's next connection open and
// prepares its send, or submits the round once every connection is held.
// RawConn.Control keeps a descriptor from being closed only while its
// callback runs, and a descriptor closed before the submit could be
// reused by another client's connection, which would then receive these
// frames: so each callback holds the next one, and the submit happens
// innermost, with all of them held.
func (w *ringWriter) holdNext() {
	for w.depth < len(w.entries) {
		if w.entries[w.depth].c.raw.Control(w.holdFn) == nil {
			return // hold went on from there
		}
		w.depth++ // being closed
	}
	w.took, w.failed = w.ring.Submit()
}

func (w *ringWriter) hold(fd uintptr) {
	i := w.depth
	e := &w.entries[i]
	e.sent = min(len(e.batch), maxWritev)
	const flags = unix.MSG_DONTWAIT | unix.MSG_NOSIGNAL
	var ok bool
	if e.sent == 1 {
		// The usual case when events are sparse: a plain send.
		e.want = len(e.batch[0])
		ok = w.ring.PrepareSend(int(fd), e.batch[0], flags, uint64(i))
	} else {
		for j, b := range e.batch[:e.sent] {
			w.iovs[i][j].Base = unsafe.SliceData(b)
			w.iovs[i][j].SetLen(len(b))
			e.want += len(b)
		}
		w.msgs[i].Iov = &w.iovs[i][0]
		w.msgs[i].SetIovlen(e.sent)
		ok = w.ring.PrepareSendmsg(int(fd), &w.msgs[i], flags, uint64(i))
	}
	if ok {
		e.state = prepared
		w.order = append(w.order, i)
	}
	w.depth++
	w.holdNext()
}

// reap reads the round's results and acts on each, as flush does for one
// writev.
func (w *ringWriter) reap(f *flusher) {
	for w.ring.InFlight() > 0 {
		// MSG_DONTWAIT sends complete within the submit; waiting here
		// would be a kernel that deferred one anyway.
		done, err := w.ring.Reap(w.done[:], true)
		if err != nil {
			// The sends not reaped may still be read by the kernel: their
			// frames are kept (stranded) and their connections closed.
			if w.failed == nil {
				w.failed = err
			}
			return
		}
		for _, d := range done {
			e := &w.entries[d.UserData]
			e.state = completed
			w.result(f, e, d)
		}
	}
}

func (w *ringWriter) result(f *flusher, e *ringEntry, d uring.Completion) {
	n, errno := int(d.Res), syscall.Errno(0)
	if d.Res < 0 {
		n, errno = 0, syscall.Errno(-d.Res)
	}
	if wrote, rest, full, err := sendOutcome(e.batch, e.want, n, errno); !wrote {
		f.finish(e.c, e.batch, rest, full, err)
		return
	}
	var rest [][]byte
	var full bool
	var err error
	if e.sent < len(e.batch) {
		// More frames than one send takes: the rest with writev.
		rest, full, err = f.write(e.c, e.batch[e.sent:])
	}
	f.finish(e.c, e.batch, rest, full, err)
}
