package netlimit

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/limit"
	"github.com/ccevents/ccevents/internal/promutil"
)

// Reason says why a connection was refused.
type Reason string

// Refusal reasons; each has its own metric label.
const (
	// MaxConns: the listener holds its share of connections already.
	MaxConns Reason = "max_conns"
	// ConnsPerIP: the client's address holds its limit already.
	ConnsPerIP Reason = "conns_per_ip"
)

// Config is what one listener may hold and how it reports refusals.
type Config struct {
	// Name is the listener in logs ("api", "ws").
	Name string
	// MaxConns bounds the connections open at once; 0 or less: no bound.
	MaxConns int
	// MaxConnsPerIP bounds the connections open at once from one client
	// address (an IPv6 client by its /64, see limit.ClientKey); 0 or less:
	// no bound.
	MaxConnsPerIP int
	// Refusal returns what a refused connection is sent before it is
	// closed: a complete HTTP response naming the limit. Nil sends nothing.
	Refusal func(r Reason, limit int) []byte
	// OnRefuse is called once per refused connection, for metrics.
	OnRefuse func(Reason)
	// Exhausted counts accepts that failed because the process or the
	// system ran out of file descriptors; nil counts nothing.
	Exhausted prometheus.Counter
	// Logger receives a warning, at most once a second, while accepts fail
	// for want of descriptors. Nil discards it.
	Logger *slog.Logger
}

// maxRefusing bounds the refused connections being answered at once: each
// holds a descriptor for up to refusalLinger, and those come out of the
// process's reserve. Beyond it a refused connection is closed unanswered.
const maxRefusing = 16

// refusalLinger bounds how long a refused connection is kept to send its
// answer and read what the client sent, so closing it does not reset the
// connection before the client has read why.
const refusalLinger = time.Second

// Listener is a net.Listener that refuses connections beyond its limits.
// Connections it returns give their place back when closed.
type Listener struct {
	net.Listener
	cfg      Config
	log      *slog.Logger
	open     atomic.Int64
	perIP    *limit.Counter // nil without a per-address bound
	refusing atomic.Int64
	lastWarn atomic.Int64 // unix nanoseconds of the last descriptor warning
	failed   atomic.Int64 // descriptor failures since that warning
}

// Wrap applies cfg to ln.
func Wrap(ln net.Listener, cfg Config) *Listener {
	l := &Listener{Listener: ln, cfg: cfg, log: cfg.Logger}
	if l.log == nil {
		l.log = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxConnsPerIP > 0 {
		l.perIP = limit.NewCounter(cfg.MaxConnsPerIP, 0)
	}
	return l
}

// Open is the number of connections open now.
func (l *Listener) Open() int { return int(l.open.Load()) }

// Accept waits for a connection within the limits. Refused connections are
// answered and closed here; Accept goes on waiting. Its errors are the
// underlying listener's, so an HTTP server retries temporary ones as usual.
func (l *Listener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			if errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				l.outOfDescriptors(err)
			}
			return nil, err
		}
		key := limit.ClientKey(c.RemoteAddr().String())
		if n := l.open.Add(1); l.cfg.MaxConns > 0 && n > int64(l.cfg.MaxConns) {
			l.open.Add(-1)
			l.refuse(c, MaxConns, l.cfg.MaxConns)
			continue
		}
		if l.perIP != nil && !l.perIP.TryAcquire(key) {
			l.open.Add(-1)
			l.refuse(c, ConnsPerIP, l.cfg.MaxConnsPerIP)
			continue
		}
		return l.track(c, key), nil
	}
}

func (l *Listener) outOfDescriptors(err error) {
	if l.cfg.Exhausted != nil {
		l.cfg.Exhausted.Inc()
	}
	n := l.failed.Add(1)
	now := time.Now().UnixNano()
	last := l.lastWarn.Load()
	if now-last < int64(time.Second) || !l.lastWarn.CompareAndSwap(last, now) {
		return
	}
	l.failed.Add(-n)
	l.log.Warn("too many open files: new connections wait in the kernel's queue until descriptors free up; raise LimitNOFILE or lower the listeners' connection limits",
		"listener", l.cfg.Name, "err", err, "failed_accepts", n, "open", l.Open())
}

// refuse answers c with the refusal for r and closes it, or just closes it
// when too many refusals are being answered already.
func (l *Listener) refuse(c net.Conn, r Reason, lim int) {
	if l.cfg.OnRefuse != nil {
		l.cfg.OnRefuse(r)
	}
	if l.cfg.Refusal == nil || l.refusing.Add(1) > maxRefusing {
		if l.cfg.Refusal != nil {
			l.refusing.Add(-1)
		}
		c.Close()
		return
	}
	msg := l.cfg.Refusal(r, lim)
	go func() {
		defer l.refusing.Add(-1)
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(refusalLinger))
		if _, err := c.Write(msg); err != nil {
			return
		}
		// Closing with the client's request unread would reset the
		// connection and could destroy the answer before it is read.
		if cw, ok := c.(interface{ CloseWrite() error }); ok {
			_ = cw.CloseWrite()
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}

// track returns c as a connection that gives its place back when closed.
// A TCP connection stays a *net.TCPConn inside, so the methods callers look
// for (SyscallConn for raw writes, ReadFrom, writev through net.Buffers,
// CloseWrite) keep working.
func (l *Listener) track(c net.Conn, key string) net.Conn {
	p := &place{l: l, key: key}
	if tc, ok := c.(*net.TCPConn); ok {
		return &tcpConn{TCPConn: tc, place: p}
	}
	return &conn{Conn: c, place: p}
}

// place is one connection's hold on the listener's limits.
type place struct {
	l    *Listener
	key  string
	once sync.Once
}

func (p *place) release() {
	p.once.Do(func() {
		p.l.open.Add(-1)
		if p.l.perIP != nil {
			p.l.perIP.Release(p.key)
		}
	})
}

type tcpConn struct {
	*net.TCPConn
	place *place
}

func (c *tcpConn) Close() error {
	err := c.TCPConn.Close()
	c.place.release()
	return err
}

type conn struct {
	net.Conn
	place *place
}

func (c *conn) Close() error {
	err := c.Conn.Close()
	c.place.release()
	return err
}

// ExhaustedCounter is the counter of accepts that failed for want of file
// descriptors on the listener named name, registered in reg once however
// many listeners ask (nil reg: a counter nobody scrapes).
func ExhaustedCounter(reg prometheus.Registerer, name string) (prometheus.Counter, error) {
	vec, err := promutil.Register(reg, promutil.CounterVec[string]("ccevents_too_many_open_files_total",
		"Accepts that failed because the process (or the system) had no file descriptor left, by listener; the connections wait in the kernel's queue meanwhile.",
		"listener"))
	if err != nil {
		return nil, err
	}
	return vec.WithLabelValues(name), nil
}

// HTTPResponse is a complete HTTP/1.1 response that closes the connection,
// for Config.Refusal on listeners that speak HTTP (a websocket handshake is
// HTTP too): browsers, SDKs and curl show its status and body.
func HTTPResponse(status int, body string) []byte {
	return []byte("HTTP/1.1 " + strconv.Itoa(status) + " " + http.StatusText(status) + "\r\n" +
		"Content-Type: application/json\r\nConnection: close\r\nRetry-After: 1\r\n" +
		"Content-Length: " + strconv.Itoa(len(body)) + "\r\n\r\n" + body)
}
