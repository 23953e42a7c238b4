package gateway

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/limit"
	"github.com/ccevents/ccevents/internal/netlimit"
	"github.com/ccevents/ccevents/internal/origin"
	"github.com/ccevents/ccevents/internal/tlsreload"
	"github.com/gobwas/ws"
)

// Source is the part of the bus the gateway reads events from; *bus.Bus
// satisfies it.
type Source interface {
	// Follow delivers, one at a time and in stream order, every event
	// matching filters stored after afterSeq. The gateway follows the
	// whole stream with one.
	Follow(ctx context.Context, filters []string, afterSeq uint64, fn func(bus.Message)) (*bus.Follower, error)
	// OpenReplay positions a reader on the stored events matching filter
	// with a sequence in (afterSeq, untilSeq]; it knows before reading
	// whether history still reaches back to afterSeq+1.
	OpenReplay(ctx context.Context, filter string, afterSeq, untilSeq uint64) (*bus.Reader, error)
	// Bounds returns the first and last stored sequence: where the
	// gateway starts following, and the end of history when a client's
	// cursor is ahead of what the gateway has seen.
	Bounds(ctx context.Context) (bus.Bounds, error)
	// Epoch names the stream's history; sequences of another epoch mean nothing.
	Epoch() string
}

// Snapshotter reads an account's current state, for subscribe with
// snapshot: true; the engine's router satisfies it through a small adapter.
type Snapshotter interface {
	// Snapshot returns the account's state as a JSON object and the stream
	// sequence and epoch it is consistent with: the state plus every event
	// after that sequence is exact.
	Snapshot(ctx context.Context, account string) (state json.RawMessage, sequence uint64, epoch string, err error)
}

// Authorizer decides who a token is and which accounts it may see;
// *auth.Service satisfies it. The gateway never decides this itself.
type Authorizer interface {
	// Verify checks a token's signature and expiry; errors are
	// auth.ErrTokenExpired or auth.ErrTokenInvalid.
	Verify(token string) (auth.Claims, error)
	// MayAccess reports whether a token of tokenAccount may see target.
	MayAccess(ctx context.Context, tokenAccount, target string) (bool, error)
}

// Server is the websocket gateway. Create it with New, run it with Serve or
// ListenAndServe, stop it with Shutdown.
type Server struct {
	cfg   Config
	src   Source
	authz Authorizer
	log   *slog.Logger
	m     *metrics
	epoch string
	// epochJSON is the epoch as a JSON string, ready for event frames.
	epochJSON string
	// Frames every connection may be sent; never modified.
	pingFrame      []byte
	shutdownNotice []byte
	upgrader       ws.HTTPUpgrader
	msgBufs        sync.Pool // *bytes.Buffer for reading client messages
	flushers       flushers  // write plain TCP connections (flush.go)
	// outLimits bounds every connection's outbox.
	outLimits outLimits

	// Abuse limits; each is safe for concurrent use.
	origins    *origin.List
	authFails  *limit.Backoff
	perIP      *limit.Counter
	perAccount *limit.Counter
	// certs serves wss:// when TLS files are configured; nil otherwise.
	certs      *tlsreload.Certificate
	watchCerts sync.Once

	// handshakes follows each accepted TCP connection until it is upgraded
	// or closed, to count the ones that never got a request through.
	hsMu       sync.Mutex
	handshakes map[net.Conn]*handshake

	// ctx lives until Shutdown has finished; connections and the follower derive
	// from it.
	ctx    context.Context
	cancel context.CancelFunc

	mu       sync.Mutex
	addr     net.Addr
	https    []*http.Server
	conns    map[*conn]struct{}
	shutting bool
	gone     chan struct{} // closed when the last connection is gone during Shutdown

	// live follows the stream and fans events out to the connections.
	live *live

	// replayTurns holds a token per resume reading history; its capacity
	// is ReplayConcurrency.
	replayTurns chan struct{}

	// Socket ids (sockets.go): the last connect time given out, so that no
	// two connections share one, and this gateway's random tag, so that ids
	// of different gateways never meet.
	lastConnect atomic.Int64
	socketTag   uint64
}

// New returns a gateway reading events from src and asking authz who may
// see what. It does not listen yet.
func New(cfg Config, src Source, authz Authorizer) (*Server, error) {
	if src == nil || authz == nil {
		return nil, errors.New("gateway: a Source and an Authorizer are required")
	}
	cfg = cfg.withDefaults()
	origins, err := origin.Parse(cfg.AllowedOrigins)
	if err != nil {
		return nil, fmt.Errorf("gateway: %w", err)
	}
	var certs *tlsreload.Certificate
	switch {
	case cfg.TLSCertFile != "" && cfg.TLSKeyFile != "":
		certs, err = tlsreload.Load(cfg.TLSCertFile, cfg.TLSKeyFile, cfg.Logger.With("component", "tls"))
		if err != nil {
			return nil, fmt.Errorf("gateway: %w", err)
		}
	case cfg.TLSCertFile != "" || cfg.TLSKeyFile != "":
		return nil, errors.New("gateway: wss needs both a certificate file and a key file")
	}
	replayTurns := make(chan struct{}, cfg.ReplayConcurrency)
	perAccount := limit.NewCounter(cfg.MaxConnsPerAccount, 0)
	m, err := newMetrics(cfg.Registerer, replayTurns, perAccount)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{
		cfg:         cfg,
		src:         src,
		authz:       authz,
		log:         cfg.Logger,
		m:           m,
		epoch:       src.Epoch(),
		upgrader:    ws.HTTPUpgrader{Timeout: cfg.HandshakeTimeout},
		ctx:         ctx,
		cancel:      cancel,
		conns:       make(map[*conn]struct{}),
		origins:     origins,
		authFails:   limit.NewBackoff(cfg.AuthBackoff),
		perIP:       limit.NewCounter(cfg.MaxConnsPerIP, 0),
		perAccount:  perAccount,
		certs:       certs,
		handshakes:  make(map[net.Conn]*handshake),
		replayTurns: replayTurns,
	}
	s.outLimits = outLimits{frames: cfg.OutboundMaxMessages, bytes: cfg.OutboundMaxBytes}
	s.live = newLive(s)
	s.socketTag = rand.Uint64()
	epochJSON, _ := json.Marshal(s.epoch)
	s.epochJSON = string(epochJSON)
	s.pingFrame = controlFrame(ws.OpPing, nil)
	s.shutdownNotice = jsonFrame(notice{Action: "notice", Data: noticeData{
		Reason:  "shutdown",
		Message: "the gateway is shutting down: reconnect, and resume with since to miss nothing",
	}})
	s.msgBufs.New = func() any { return new(bytes.Buffer) }
	return s, nil
}

// ListenAndServe listens on Config.Addr and serves until Shutdown or until
// ctx is cancelled.
func (s *Server) ListenAndServe(ctx context.Context) error {
	var lc net.ListenConfig
	ln, err := lc.Listen(ctx, "tcp", s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("gateway listen on %s: %w", s.cfg.Addr, err)
	}
	return s.Serve(ctx, ln)
}

// Serve accepts websocket connections (and plain HTTP for Config.Fallback)
// on ln until Shutdown, which makes it return nil, or until ctx is
// cancelled, which shuts the gateway down as Shutdown does, giving clients
// Config.WriteTimeout to receive their close frames. With TLS files
// configured it speaks TLS (wss://) on ln.
func (s *Server) Serve(ctx context.Context, ln net.Listener) error {
	hs := &http.Server{
		Handler: s,
		// Also bounds the TLS handshake (net/http applies the smallest
		// of its timeouts to it).
		ReadHeaderTimeout: s.cfg.HandshakeTimeout,
		IdleTimeout:       s.cfg.HandshakeTimeout,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
		BaseContext:       func(net.Listener) context.Context { return s.ctx },
		ConnContext:       s.trackHandshake,
		ConnState:         s.handshakeState,
	}
	ln = netlimit.Wrap(ln, netlimit.Config{
		Name:     "ws",
		MaxConns: s.cfg.MaxConns,
		Refusal: func(_ netlimit.Reason, limit int) []byte {
			return netlimit.HTTPResponse(http.StatusServiceUnavailable,
				fmt.Sprintf(`{"status":"error","message":"this gateway holds its limit of %d connections; connect to another gateway or try again shortly"}`, limit))
		},
		OnRefuse: func(netlimit.Reason) {
			s.m.error(errLimit)
			s.m.refuse(refuseMaxConns)
		},
		Exhausted: s.m.exhausted,
		Logger:    s.log,
	})
	if s.certs != nil {
		tc := s.certs.TLSConfig()
		tc.NextProtos = []string{"http/1.1"} // websockets upgrade HTTP/1.1 only
		ln = tls.NewListener(ln, tc)
		s.watchCerts.Do(func() { go s.certs.Watch(s.ctx, s.cfg.TLSReloadInterval) })
	}
	s.mu.Lock()
	if s.shutting {
		s.mu.Unlock()
		ln.Close()
		return nil
	}
	s.https = append(s.https, hs)
	if s.addr == nil {
		s.addr = ln.Addr()
	}
	s.mu.Unlock()
	s.log.Info("websocket gateway listening", "addr", ln.Addr().String())
	s.startFlushers()

	shutDown := make(chan struct{})
	stop := context.AfterFunc(ctx, func() {
		defer close(shutDown)
		sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.cfg.WriteTimeout)
		defer cancel()
		_ = s.Shutdown(sctx)
	})
	err := hs.Serve(ln)
	if !stop() {
		// ctx ended: return once the shutdown it started is complete, so
		// the caller may close the bus.
		<-shutDown
	}
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return fmt.Errorf("gateway serve on %s: %w", ln.Addr(), err)
}

// Addr returns the address of the first listener Serve was given, or nil
// before that.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// ServeHTTP upgrades websocket requests and hands anything else to
// Config.Fallback.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := r.Context().Value(handshakeKey{}).(*handshake); ok {
		h.served.Store(true)
	}
	if !headerHasToken(r.Header, "Upgrade", "websocket") {
		if s.cfg.Fallback != nil {
			s.cfg.Fallback.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "this is the ccevents websocket gateway: connect with a websocket client", http.StatusUpgradeRequired)
		return
	}
	if origins := r.Header.Values("Origin"); len(origins) > 1 || (len(origins) == 1 && !s.origins.Allowed(origins[0])) {
		s.m.refuse(refuseOrigin)
		s.log.Debug("websocket refused: origin not allowed", "remote", r.RemoteAddr, "origin", origins)
		http.Error(w, "this page's origin may not open a websocket to this gateway", http.StatusForbidden)
		return
	}
	// The per-address cap is answered before the upgrade, with 429 as
	// Kazoo's blackhole does; the slot is the connection's from here on.
	ip := limit.ClientKey(r.RemoteAddr)
	if !s.perIP.TryAcquire(ip) {
		s.m.error(errLimit)
		s.m.refuse(refuseConnsPerIP)
		s.log.Info("connection refused: too many from one address", "ip", ip, "limit", s.cfg.MaxConnsPerIP)
		http.Error(w, fmt.Sprintf("too many connections from your address (limit %d); close some before opening more", s.cfg.MaxConnsPerIP), http.StatusTooManyRequests)
		return
	}
	nc, rw, _, err := s.upgrader.Upgrade(r, w)
	if err != nil {
		s.perIP.Release(ip)
		s.m.error(errHandshake)
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		if nc != nil {
			nc.Close()
		}
		return
	}
	// Bytes the client sent right after its request are already in the
	// HTTP server's buffer; keep them and let the buffers go, so an idle
	// connection holds no read or write buffer.
	var early []byte
	if n := rw.Reader.Buffered(); n > 0 {
		p, _ := rw.Reader.Peek(n)
		early = bytes.Clone(p)
	}
	c, code, reason := s.admit(nc, ip, early)
	if c == nil {
		s.perIP.Release(ip)
		s.refuse(nc, code, reason)
		return
	}
	// A fresh goroutine starts with a small stack, unlike this handler's.
	go c.readLoop()
}

// admit registers a new connection, which holds its slot of the
// per-address limit, or says why it is refused.
func (s *Server) admit(nc net.Conn, ip string, early []byte) (*conn, ws.StatusCode, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting {
		return nil, ws.StatusGoingAway, "the gateway is shutting down; reconnect"
	}
	c := newConn(s, nc, ip, early)
	s.conns[c] = struct{}{}
	s.m.conns.Inc()
	return c, 0, ""
}

// refuse sends a close frame on a connection that was never admitted and
// closes it.
func (s *Server) refuse(nc net.Conn, code ws.StatusCode, reason string) {
	s.m.closedWith(int(code))
	_ = nc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	_, _ = nc.Write(closeFrame(code, reason))
	nc.Close()
}

// forget unregisters a connection that has finished.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	s.m.conns.Dec()
	s.perIP.Release(c.ip)
	if len(s.conns) == 0 && s.gone != nil {
		close(s.gone)
		s.gone = nil
	}
}

// reserveAccount counts a connection against an account's limit.
func (s *Server) reserveAccount(account string) bool { return s.perAccount.TryAcquire(account) }

func (s *Server) releaseAccount(account string) { s.perAccount.Release(account) }

// handshake is what the gateway knows of a TCP connection before its
// upgrade: whether a complete HTTP request arrived on it.
type handshake struct{ served atomic.Bool }

type handshakeKey struct{}

// trackHandshake starts following a new TCP connection (http.Server.ConnContext).
func (s *Server) trackHandshake(ctx context.Context, nc net.Conn) context.Context {
	h := new(handshake)
	s.hsMu.Lock()
	s.handshakes[nc] = h
	s.hsMu.Unlock()
	return context.WithValue(ctx, handshakeKey{}, h)
}

// handshakeState counts connections that closed before a complete request
// arrived: slow (slowloris) or abandoned handshakes, cut by
// HandshakeTimeout, and failed TLS handshakes (http.Server.ConnState).
func (s *Server) handshakeState(nc net.Conn, state http.ConnState) {
	if state != http.StateClosed && state != http.StateHijacked {
		return
	}
	s.hsMu.Lock()
	h := s.handshakes[nc]
	delete(s.handshakes, nc)
	s.hsMu.Unlock()
	if state == http.StateClosed && h != nil && !h.served.Load() {
		s.m.refuse(refuseHandshake)
	}
}

// Shutdown stops accepting connections, tells every client to reconnect
// (a notice, then close 1001), waits until they are gone or ctx ends, then
// closes whatever remains. It returns ctx's error if it had to force
// connections closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutting = true
	https := s.https
	s.https = nil
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	var gone chan struct{}
	if len(s.conns) > 0 {
		if s.gone == nil {
			s.gone = make(chan struct{})
		}
		gone = s.gone
	}
	s.mu.Unlock()

	var wg sync.WaitGroup
	for _, hs := range https {
		wg.Go(func() {
			// Only plain HTTP requests are left to it: upgraded
			// connections were hijacked.
			if err := hs.Shutdown(ctx); err != nil {
				hs.Close()
			}
		})
	}
	for _, c := range conns {
		c.goAway()
	}
	var err error
	if gone != nil {
		select {
		case <-gone:
		case <-ctx.Done():
			err = ctx.Err()
			s.mu.Lock()
			left := make([]*conn, 0, len(s.conns))
			for c := range s.conns {
				left = append(left, c)
			}
			s.mu.Unlock()
			s.log.Warn("shutdown: closing connections that did not finish in time", "connections", len(left))
			for _, c := range left {
				c.kill()
			}
			// Killed connections finish at once: their reads fail and
			// their replays see their context cancelled.
			<-gone
		}
	}
	wg.Wait()
	s.cancel()
	s.live.stop()
	return err
}

// headerHasToken reports whether a comma-separated header contains token,
// ignoring case.
func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}
