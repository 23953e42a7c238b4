package loadtest

import (
	"errors"
	"fmt"
	"sync"
	"syscall"
)

// poller reads many connections from one goroutine with its own
// level-triggered epoll set. Go's netpoller would cost each delivered event
// a wake-up of the connection's goroutine and a second read that returns
// EAGAIN; at 100 events/s on each of 1,000 connections that halved what the
// tool could read per CPU-second, and on two shared cores every CPU-second
// the tool spends is taken from the server it measures. With level
// triggering one read per readiness is enough: data left in the socket
// makes the next wait return at once.
type poller struct {
	epfd  int
	wake  [2]int // a pipe whose read end in the set ends run
	mu    sync.Mutex
	conns map[int32]*conn
	done  chan struct{}
}

func newPoller() (*poller, error) {
	epfd, err := syscall.EpollCreate1(syscall.EPOLL_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("create epoll set: %w", err)
	}
	p := &poller{epfd: epfd, conns: map[int32]*conn{}, done: make(chan struct{})}
	if err := syscall.Pipe2(p.wake[:], syscall.O_CLOEXEC|syscall.O_NONBLOCK); err != nil {
		syscall.Close(epfd)
		return nil, fmt.Errorf("create wake pipe: %w", err)
	}
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN, Fd: int32(p.wake[0])}
	if err := syscall.EpollCtl(epfd, syscall.EPOLL_CTL_ADD, p.wake[0], &ev); err != nil {
		p.release()
		return nil, fmt.Errorf("watch wake pipe: %w", err)
	}
	return p, nil
}

// add hands a subscribed connection to the poller. Frames that arrived
// during set-up and are still buffered are handled when it first becomes
// readable or, if none follow, right away.
func (p *poller) add(c *conn) error {
	p.mu.Lock()
	p.conns[int32(c.fd)] = c
	p.mu.Unlock()
	ev := syscall.EpollEvent{Events: syscall.EPOLLIN | syscall.EPOLLRDHUP, Fd: int32(c.fd)}
	if err := syscall.EpollCtl(p.epfd, syscall.EPOLL_CTL_ADD, c.fd, &ev); err != nil {
		p.mu.Lock()
		delete(p.conns, int32(c.fd))
		p.mu.Unlock()
		return fmt.Errorf("watch connection: %w", err)
	}
	return nil
}

// run waits for readable connections until stop is called.
func (p *poller) run() {
	defer close(p.done)
	events := make([]syscall.EpollEvent, 256)
	var pending []*conn
	for {
		n, err := syscall.EpollWait(p.epfd, events, -1)
		if err != nil {
			if errors.Is(err, syscall.EINTR) {
				continue
			}
			return
		}
		pending = pending[:0]
		p.mu.Lock()
		for _, ev := range events[:n] {
			if ev.Fd == int32(p.wake[0]) {
				p.mu.Unlock()
				return
			}
			if c := p.conns[ev.Fd]; c != nil {
				pending = append(pending, c)
			}
		}
		p.mu.Unlock()
		for _, c := range pending {
			if !c.readable() {
				p.forget(c)
			}
		}
	}
}

// forget drops an ended connection; closing its socket already removed it
// from the epoll set.
func (p *poller) forget(c *conn) {
	p.mu.Lock()
	if p.conns[int32(c.fd)] == c {
		delete(p.conns, int32(c.fd))
	}
	p.mu.Unlock()
}

// stop ends run and waits for it, so no read races the closing of sockets.
func (p *poller) stop() {
	_, _ = syscall.Write(p.wake[1], []byte{1})
	<-p.done
	p.release()
}

func (p *poller) release() {
	syscall.Close(p.wake[0])
	syscall.Close(p.wake[1])
	syscall.Close(p.epfd)
}
