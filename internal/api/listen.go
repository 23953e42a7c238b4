package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/netlimit"
	"github.com/ccevents/ccevents/internal/promutil"
)

// Defaults of Limits.
const (
	DefaultReadHeaderTimeout = 10 * time.Second
	DefaultReadTimeout       = 30 * time.Second
	DefaultWriteTimeout      = 60 * time.Second
	DefaultIdleTimeout       = 60 * time.Second
	DefaultMaxConnsPerIP     = 256
)

// Limits bound what REST clients may hold: every connection is on a clock,
// and the listener holds only its share of the process's file descriptors,
// so idle or slow clients cannot starve the websocket gateway or each
// other. Zero durations take the defaults above.
type Limits struct {
	// ReadHeaderTimeout bounds the wait for a request's headers.
	ReadHeaderTimeout time.Duration
	// ReadTimeout bounds reading a whole request, body included; a body
	// not received in time is answered 408.
	ReadTimeout time.Duration
	// WriteTimeout bounds a request from its headers to the end of its
	// response; a response not written by then is lost.
	WriteTimeout time.Duration
	// IdleTimeout closes a keep-alive connection with no request for that long.
	IdleTimeout time.Duration
	// MaxConns bounds the connections open at once (this listener's share
	// of file descriptors); beyond it new connections are answered 503. 0:
	// no bound.
	MaxConns int
	// MaxConnsPerIP bounds the connections open at once from one address
	// (an IPv6 client by its /64); beyond it they are answered 429. 0 means
	// DefaultMaxConnsPerIP, negative no bound.
	MaxConnsPerIP int
}

func (l Limits) withDefaults() Limits {
	for _, d := range []struct {
		v   *time.Duration
		def time.Duration
	}{{&l.ReadHeaderTimeout, DefaultReadHeaderTimeout}, {&l.ReadTimeout, DefaultReadTimeout}, {&l.WriteTimeout, DefaultWriteTimeout}, {&l.IdleTimeout, DefaultIdleTimeout}} {
		if *d.v <= 0 {
			*d.v = d.def
		}
	}
	if l.MaxConnsPerIP == 0 {
		l.MaxConnsPerIP = DefaultMaxConnsPerIP
	}
	return l
}

// Timeouts counted in ccevents_api_timeouts_total.
const (
	timeoutHeader = "header" // a connection's first request was not complete within ReadHeaderTimeout
	timeoutRead   = "read"   // a request body did not arrive within ReadTimeout (408)
	timeoutWrite  = "write"  // a handler ran past WriteTimeout, so its response was lost
	timeoutIdle   = "idle"   // a keep-alive connection sent no request within IdleTimeout
)

type listenMetrics struct {
	conns     prometheus.GaugeFunc
	refused   *prometheus.CounterVec
	timeouts  *prometheus.CounterVec
	exhausted prometheus.Counter
}

func newListenMetrics(reg prometheus.Registerer, open func() int) (*listenMetrics, error) {
	m := &listenMetrics{
		conns: promutil.GaugeFunc("ccevents_api_connections",
			"REST API connections open now.",
			func() float64 { return float64(open()) }),
		refused: promutil.CounterVec("ccevents_api_refused_total",
			"REST API connections refused: max_conns (the listener's share of file descriptors is in use, 503), conns_per_ip (too many from one address, 429).",
			"reason", netlimit.MaxConns, netlimit.ConnsPerIP),
		timeouts: promutil.CounterVec("ccevents_api_timeouts_total",
			"REST API timeouts: header (no complete first request in time), read (body not received in time, 408), write (response not written in time), idle (keep-alive connection closed unused).",
			"timeout", timeoutHeader, timeoutRead, timeoutWrite, timeoutIdle),
	}
	if err := promutil.RegisterAll(reg, m.conns, m.refused, m.timeouts); err != nil {
		return nil, fmt.Errorf("register REST API metrics: %w", err)
	}
	var err error
	if m.exhausted, err = netlimit.ExhaustedCounter(reg, "api"); err != nil {
		return nil, err
	}
	return m, nil
}

// connInfo is what the server follows of one connection to tell which
// timeout, if any, ended it.
type connInfo struct {
	mu          sync.Mutex
	opened      time.Time
	state       http.ConnState
	since       time.Time // when state began
	requests    int       // handlers started on the connection
	bodyTimeout bool
}

type connInfoKey struct{}

// listening is the REST API's HTTP server state, set by Serve.
type listening struct {
	mu       sync.Mutex
	hs       *http.Server
	ln       *netlimit.Listener
	shutting bool // Shutdown was called: a later Serve returns at once
	conns    map[net.Conn]*connInfo
}

// Serve answers REST requests on ln until Shutdown, within Config.Limits.
// It returns nil after Shutdown.
func (s *Server) Serve(ln net.Listener) error {
	lim := s.limits
	limited := netlimit.Wrap(ln, netlimit.Config{
		Name:          "api",
		MaxConns:      lim.MaxConns,
		MaxConnsPerIP: lim.MaxConnsPerIP,
		Refusal:       refusal,
		OnRefuse: func(r netlimit.Reason) {
			s.lm.refused.WithLabelValues(string(r)).Inc()
			s.log.Debug("REST connection refused", "reason", r)
		},
		Exhausted: s.lm.exhausted,
		Logger:    s.log,
	})
	hs := &http.Server{
		Handler:           s.handler,
		ReadHeaderTimeout: lim.ReadHeaderTimeout,
		ReadTimeout:       lim.ReadTimeout,
		WriteTimeout:      lim.WriteTimeout,
		IdleTimeout:       lim.IdleTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		ConnContext:       s.trackConn,
		ConnState:         s.connState,
	}
	s.listen.mu.Lock()
	if s.listen.shutting {
		s.listen.mu.Unlock()
		ln.Close()
		return nil
	}
	if s.listen.hs != nil {
		s.listen.mu.Unlock()
		return errors.New("api: Serve was called twice")
	}
	s.listen.hs, s.listen.ln = hs, limited
	s.listen.mu.Unlock()
	if err := hs.Serve(limited); !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("REST API on %s: %w", ln.Addr(), err)
	}
	return nil
}

// Shutdown stops accepting, waits for requests in flight until ctx ends,
// then closes what is left.
func (s *Server) Shutdown(ctx context.Context) error {
	s.listen.mu.Lock()
	hs := s.listen.hs
	s.listen.shutting = true
	s.listen.mu.Unlock()
	if hs == nil {
		return nil
	}
	if err := hs.Shutdown(ctx); err != nil {
		hs.Close()
		return fmt.Errorf("REST API shutdown: %w", err)
	}
	return nil
}

// openConns is the number of REST connections open now.
func (s *Server) openConns() int {
	s.listen.mu.Lock()
	ln := s.listen.ln
	s.listen.mu.Unlock()
	if ln == nil {
		return 0
	}
	return ln.Open()
}

// refusal is the answer of a connection refused by a limit.
func refusal(r netlimit.Reason, limit int) []byte {
	if r == netlimit.ConnsPerIP {
		return netlimit.HTTPResponse(http.StatusTooManyRequests,
			fmt.Sprintf(`{"status":"error","message":"too many connections from your address (limit %d): reuse keep-alive connections, or wait for some to close"}`, limit))
	}
	return netlimit.HTTPResponse(http.StatusServiceUnavailable,
		fmt.Sprintf(`{"status":"error","message":"the REST API holds its limit of %d connections; try again shortly"}`, limit))
}

func (s *Server) trackConn(ctx context.Context, c net.Conn) context.Context {
	now := time.Now()
	ci := &connInfo{opened: now, state: http.StateNew, since: now}
	s.listen.mu.Lock()
	s.listen.conns[c] = ci
	s.listen.mu.Unlock()
	return context.WithValue(ctx, connInfoKey{}, ci)
}

// connState notes each connection's state and, when it closes, which
// timeout ended it: only a server-side timeout lets a state last that long.
func (s *Server) connState(c net.Conn, state http.ConnState) {
	s.listen.mu.Lock()
	ci := s.listen.conns[c]
	if state == http.StateClosed || state == http.StateHijacked {
		delete(s.listen.conns, c)
	}
	s.listen.mu.Unlock()
	if ci == nil {
		return
	}
	now := time.Now()
	ci.mu.Lock()
	prev, since, opened, requests, bodyTimeout := ci.state, ci.since, ci.opened, ci.requests, ci.bodyTimeout
	ci.state, ci.since = state, now
	ci.mu.Unlock()
	if state != http.StateClosed {
		return
	}
	lim := s.limits
	switch {
	case bodyTimeout:
		s.lm.timeouts.WithLabelValues(timeoutRead).Inc()
	case requests == 0 && now.Sub(opened) >= lim.ReadHeaderTimeout:
		s.lm.timeouts.WithLabelValues(timeoutHeader).Inc()
	case prev == http.StateIdle && now.Sub(since) >= lim.IdleTimeout:
		s.lm.timeouts.WithLabelValues(timeoutIdle).Inc()
	}
}

// timed counts requests on their connection and the ones that ran past
// the write timeout, whose response net/http could no longer write.
func (s *Server) timed(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		if ci, ok := r.Context().Value(connInfoKey{}).(*connInfo); ok {
			ci.mu.Lock()
			ci.requests++
			ci.mu.Unlock()
		}
		next.ServeHTTP(w, r)
		if took := time.Since(start); took >= s.limits.WriteTimeout {
			s.lm.timeouts.WithLabelValues(timeoutWrite).Inc()
			s.log.Warn("REST response not written: the request took longer than the write timeout", "method", r.Method, "path", r.URL.Path, "took", took, "write_timeout", s.limits.WriteTimeout)
		}
	})
}

// bodyTimedOut marks the request's connection as ended by the read timeout.
func bodyTimedOut(r *http.Request) {
	if ci, ok := r.Context().Value(connInfoKey{}).(*connInfo); ok {
		ci.mu.Lock()
		ci.bodyTimeout = true
		ci.mu.Unlock()
	}
}
