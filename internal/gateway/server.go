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
	"sync"
	"sync/atomic"

	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/limit"
	"github.com/ccevents/ccevents/internal/netlimit"
	"github.com/ccevents/ccevents/internal/origin"
	"github.com/ccevents/ccevents/internal/tlsreload"
	"github.com/ccevents/ccevents/protocol"
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
	s.shutdownNotice = jsonFrame(protocol.ShutdownNotice())
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
			s.m.error(protocol.ErrLimit)
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

// reserveAccount counts a connection against an account's limit.
func (s *Server) reserveAccount(account string) bool { return s.perAccount.TryAcquire(account) }

func (s *Server) releaseAccount(account string) { s.perAccount.Release(account) }

// Shutdown stops accepting connections, tells every client to reconnect
// (a notice, then close 1001), waits until they are gone or ctx ends, then
// closes whatever remains. It returns ctx's error if it had to force
// connections closed.
func (s *Server) Shutdown(ctx context.Context) error {
	s.mu.Lock()
	s.shutting = true
	https := s.https
	s.https = nil
	conns := s.connsLocked()
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
			left := s.connections()
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
