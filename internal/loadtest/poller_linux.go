package loadtest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ccevents/ccevents/internal/uring"
)

// A goroutine per connection costs the tool two read syscalls per event (the
// one that returns the event and the one that finds the socket empty and
// parks the goroutine) plus a park and a wake-up in the Go scheduler. At 100
// events/s on each of 1,000 connections that is most of the tool's CPU, and
// the tool shares the machine's two cores with the server it measures. So
// once a connection is set up its socket leaves Go's poller for one of the
// tool's own: a few goroutines that ask epoll which sockets have data, read
// each of those once, and nap between rounds, so every read finds data and
// each epoll call serves many sockets. A nap delays an event's receipt by
// pollNap, or up to a millisecond when nothing else in the tool runs (the
// runtime then waits in epoll with millisecond timeouts); either way it can
// only make the reported latency worse.

const (
	// pollNap is the pause between rounds that found fewer ready sockets
	// than one epoll call can return.
	pollNap = 200 * time.Microsecond
	// pollIdleWait is how long an idle poller blocks in epoll once a round
	// found nothing, so an idle tool does not spin.
	pollIdleWait = 5 // ms
	pollBatch    = 256
)

// With an io_uring, a poller reads all the sockets epoll found ready with
// one syscall per ringReads of them instead of one each: on a virtual
// machine a syscall's entry and exit cost more than reading an event off
// loopback (uring.BenchmarkRecv). Where the kernel refuses io_uring, each
// socket is read with its own raw read.

// ringReads is the most sockets one io_uring_enter reads; the poller yields
// to the publisher after each such batch.
const ringReads = 16

// poller reads the sockets of its connections.
type poller struct {
	epfd     int
	ring     *uring.Ring // nil: a read syscall per socket
	stop     chan struct{}
	stopOnce sync.Once
	done     chan struct{}

	mu    sync.Mutex
	conns map[int32]*conn // by descriptor
}

func newPoller() (*poller, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create epoll instance: %w", err)
	}
	p := &poller{epfd: epfd, stop: make(chan struct{}), done: make(chan struct{}), conns: make(map[int32]*conn)}
	if ring, err := uring.New(ringReads); err == nil {
		p.ring = ring
	}
	go p.run()
	return p, nil
}

// pollers is one poller per usable core, so reading can use all of them
// under heavy load.
type pollers []*poller

func newPollers() (pollers, error) {
	var ps pollers
	for range runtime.GOMAXPROCS(0) {
		p, err := newPoller()
		if err != nil {
			ps.close()
			return nil, err
		}
		ps = append(ps, p)
	}
	return ps, nil
}

// startReading hands a subscribed connection to a poller, which reads it
// from now on and owns its socket.
func (g *group) startReading(i int, c *conn) error {
	fdc, err := detach(c.nc) // closes c.nc
	if err != nil {
		c.nc.Close()
		return fmt.Errorf("read connection: %w", err)
	}
	c.fdc, c.fr.src = fdc, fdc
	g.readers.Add(1)
	if err := g.pollers[i%len(g.pollers)].add(c); err != nil {
		g.readers.Done()
		fdc.close()
		return fmt.Errorf("read connection: %w", err)
	}
	return nil
}

// close stops every poller and closes the sockets still open. A second
// call has nothing left to do.
func (ps pollers) close() {
	for _, p := range ps {
		p.stopOnce.Do(func() { close(p.stop) })
	}
	for _, p := range ps {
		<-p.done
	}
}

// fdConn is a connection's socket once it left Go's poller: non-blocking,
// read only by its poller, which also closes it. Writes and shutdown take
// the lock, so they never reach a descriptor number the poller has closed
// and the kernel may have given to another socket.
type fdConn struct {
	fd     int
	mu     sync.Mutex
	closed bool
}

// detach moves the socket of c out of Go's runtime poller: a duplicate of
// the descriptor is kept and the net.Conn closed, which removes it from the
// runtime's epoll set.
func detach(nc net.Conn) (*fdConn, error) {
	sc, ok := nc.(syscall.Conn)
	if !ok {
		return nil, fmt.Errorf("connection %T has no socket", nc)
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil, err
	}
	// F_DUPFD_CLOEXEC: the duplicate in one call. It shares the open file,
	// so it is non-blocking like the runtime's socket.
	fd := -1
	var derr error
	if err := rc.Control(func(s uintptr) { fd, derr = unix.FcntlInt(s, unix.F_DUPFD_CLOEXEC, 0) }); err != nil {
		return nil, err
	}
	if derr != nil {
		return nil, fmt.Errorf("duplicate socket: %w", derr)
	}
	nc.Close()
	return &fdConn{fd: fd}, nil
}

// Read reads what the socket holds; unix.EAGAIN when it holds nothing.
// The socket never blocks, so the read is a raw syscall: the runtime does
// not count the poller as in a syscall, and its monitor thread does not
// keep waking to take the poller's core away (a tenth of the tool's CPU).
func (f *fdConn) Read(p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, errno := unix.RawSyscall(unix.SYS_READ, uintptr(f.fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	switch {
	case errno != 0:
		return 0, errno
	case n == 0:
		return 0, io.EOF
	}
	return int(n), nil
}

// epollReady returns the ready events without waiting, as a raw syscall
// (see Read). epoll_pwait with no signal mask is epoll_wait, and exists on
// every architecture (arm64 has no epoll_wait).
func epollReady(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, errno := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(n), nil
}

// Write writes all of p, waiting up to five seconds for room in the socket.
func (f *fdConn) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.closed {
		return 0, net.ErrClosed
	}
	deadline := time.Now().Add(5 * time.Second)
	written := 0
	for written < len(p) {
		n, err := unix.Write(f.fd, p[written:])
		if n > 0 {
			written += n
		}
		switch {
		case errors.Is(err, unix.EINTR):
		case errors.Is(err, unix.EAGAIN):
			wait := time.Until(deadline)
			if wait <= 0 {
				return written, fmt.Errorf("write: %w", syscall.ETIMEDOUT)
			}
			fds := []unix.PollFd{{Fd: int32(f.fd), Events: unix.POLLOUT}}
			if _, err := unix.Poll(fds, int(wait.Milliseconds())+1); err != nil && !errors.Is(err, unix.EINTR) {
				return written, fmt.Errorf("wait to write: %w", err)
			}
		case err != nil:
			return written, err
		}
	}
	return written, nil
}

// shutdown ends the TCP connection towards the server; the socket itself
// stays open until its poller closes it.
func (f *fdConn) shutdown() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		_ = unix.Shutdown(f.fd, unix.SHUT_RDWR)
	}
}

func (p *poller) add(c *conn) error {
	fd := int32(c.fdc.fd)
	p.mu.Lock()
	p.conns[fd] = c
	p.mu.Unlock()
	ev := unix.EpollEvent{Events: unix.EPOLLIN | unix.EPOLLRDHUP, Fd: fd}
	if err := unix.EpollCtl(p.epfd, unix.EPOLL_CTL_ADD, int(fd), &ev); err != nil {
		p.mu.Lock()
		delete(p.conns, fd)
		p.mu.Unlock()
		return fmt.Errorf("watch socket: %w", err)
	}
	return nil
}

// remove stops reading c and closes its socket.
func (p *poller) remove(c *conn) {
	fd := c.fdc.fd
	_ = unix.EpollCtl(p.epfd, unix.EPOLL_CTL_DEL, fd, nil)
	p.mu.Lock()
	delete(p.conns, int32(fd))
	p.mu.Unlock()
	c.fdc.close()
	c.g.readers.Done()
}

func (p *poller) run() {
	defer close(p.done)
	events := make([]unix.EpollEvent, pollBatch)
	ready := make([]*conn, 0, pollBatch)
	completions := make([]uring.Completion, ringReads)
	wait := 0
	for {
		select {
		case <-p.stop:
			p.closeAll()
			return
		default:
		}
		var n int
		var err error
		if wait == 0 {
			n, err = epollReady(p.epfd, events)
		} else {
			n, err = unix.EpollWait(p.epfd, events, wait)
		}
		if err != nil && !errors.Is(err, unix.EINTR) {
			panic(fmt.Sprintf("loadtest: epoll_wait: %v", err)) // a bad descriptor is a bug here
		}
		ready = ready[:0]
		p.mu.Lock()
		for _, ev := range events[:max(n, 0)] {
			if c := p.conns[ev.Fd]; c != nil {
				ready = append(ready, c)
			}
		}
		p.mu.Unlock()
		for rest := ready; len(rest) > 0; {
			chunk := rest[:min(len(rest), ringReads)]
			rest = rest[len(chunk):]
			if p.ring != nil {
				p.readRing(chunk, completions)
			} else {
				for _, c := range chunk {
					if err := c.readReady(); err != nil {
						p.lose(c, err)
					}
				}
			}
			clear(chunk)
			// Raw reads never give the core back to the scheduler: let
			// the publisher run (see the Gosched below).
			runtime.Gosched()
		}
		switch {
		case n == len(events):
			// More may be ready at once. Let the tool's other goroutines
			// run first: the publisher stamps an event before handing it
			// to nats.go's flusher, so a flusher kept waiting for a core
			// would add to the latency measured.
			wait = 0
			runtime.Gosched()
		case n > 0:
			wait = 0
			time.Sleep(pollNap)
		default:
			wait = pollIdleWait
		}
	}
}

// readRing reads every connection of chunk, whose sockets epoll found
// ready, with one io_uring_enter, then handles what each one received.
// Should io_uring fail, the poller goes on with a read syscall per
// socket; connections whose reads it cannot account for are ended.
func (p *poller) readRing(chunk []*conn, completions []uring.Completion) {
	for i, c := range chunk {
		c.fr.makeRoom(c.fr.want)
		p.ring.PrepareRecv(c.fdc.fd, c.fr.buf[c.fr.w:], unix.MSG_DONTWAIT, uint64(i))
	}
	took, failed := p.ring.Submit()
	var pending [ringReads]bool // taken, not yet completed
	for i := range took {
		pending[i] = true
	}
	for p.ring.InFlight() > 0 {
		done, err := p.ring.Reap(completions, true)
		if err != nil {
			failed = err
			break
		}
		for _, d := range done {
			c := chunk[d.UserData]
			pending[d.UserData] = false
			if err := c.gotRead(d); err != nil {
				p.lose(c, err)
			}
		}
	}
	if failed == nil {
		return
	}
	for i, c := range chunk {
		switch {
		case i >= took:
			if err := c.readReady(); err != nil { // not taken: read it now
				p.lose(c, err)
			}
		case pending[i]:
			// The kernel may still fill its buffer: it is not read
			// again, and the connection counts as lost.
			p.lose(c, fmt.Errorf("read through io_uring: %w", failed))
		}
	}
	if p.ring.InFlight() == 0 {
		p.ring.Close()
	}
	p.ring = nil
}

// gotRead handles the outcome of one read of c's socket through the ring,
// as readReady does for a read syscall.
func (c *conn) gotRead(d uring.Completion) error {
	n, err := int(d.Res), d.Err()
	if n == 0 {
		err = io.EOF
	}
	return c.afterRead(c.fr.took(n, err))
}

// lose stops reading c, which failed with err.
func (p *poller) lose(c *conn, err error) {
	c.ended(err)
	p.remove(c)
}

func (p *poller) closeAll() {
	p.mu.Lock()
	left := make([]*conn, 0, len(p.conns))
	for _, c := range p.conns {
		left = append(left, c)
	}
	p.mu.Unlock()
	for _, c := range left {
		p.remove(c)
	}
	unix.Close(p.epfd)
	if p.ring != nil {
		p.ring.Close()
	}
}

// close closes the socket, once.
func (f *fdConn) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.closed {
		f.closed = true
		unix.Close(f.fd)
	}
}
