package sipfront

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/diago/media"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/limit"
	"github.com/ccevents/ccevents/internal/sipfront/sounds"
	"github.com/ccevents/ccevents/internal/sipstore"
)

// Defaults and limits of Config.
const (
	DefaultMaxCalls         = 1000
	DefaultMaxRegistrations = 10000
	DefaultRequestRate      = 50 // SIP requests per second from one address
	DefaultRequestBurst     = 200
	DefaultRingTimeout      = 2 * time.Minute
	DefaultMediaTimeout     = time.Minute
	DefaultMinExpires       = 60
	DefaultMaxExpires       = 3600
	// WiretapPrefix is the feature code a supervisor dials before a
	// recipient's id (or SIP user) to listen in on their call: *44alice.
	WiretapPrefix = "*44"
	// engineTimeout bounds one request to the engine.
	engineTimeout = 10 * time.Second
	// maxTracked bounds the addresses the request-rate limiter remembers.
	maxTracked = 65536
)

// Config wires a Server. Addr, Engine, Store and Conn are required.
type Config struct {
	// Addr is where SIP is served, UDP and TCP (127.0.0.1:5060); port 0
	// picks a free one (see Server.Addr).
	Addr string
	// AdvertiseHost is the host phones are told to reach (Contact, SDP)
	// when it differs from Addr's (behind NAT); empty uses Addr's host.
	AdvertiseHost string
	// RTPPortMin and RTPPortMax bound the UDP ports media uses; zero picks
	// any free port. The range is process-wide (a diago setting).
	RTPPortMin, RTPPortMax int
	// Trunk is host:port where calls to numbers that are not ccevents'
	// own go (a SIP trunk or PBX); empty lets agents call only each other.
	Trunk string
	// TrustedNets may call queue numbers; empty lets anyone who reaches
	// Addr call them, as anyone may dial a public number.
	TrustedNets []netip.Prefix
	// MaxCalls bounds legs in progress; more are refused with 503.
	MaxCalls int
	// MaxRegistrations bounds registered phones; more get 503.
	MaxRegistrations int
	// RequestRate and RequestBurst bound the SIP messages one address may
	// send (per second, and at once); the rest are dropped unread.
	RequestRate  float64
	RequestBurst int
	// AuthBackoff makes an address that keeps failing digest auth wait.
	AuthBackoff limit.BackoffConfig
	// RingTimeout bounds ringing a phone when the engine's offer timeout
	// did not end it first.
	RingTimeout time.Duration
	// MediaTimeout ends a connected call whose caller sent no audio for
	// this long (MEDIA_TIMEOUT); negative never.
	MediaTimeout time.Duration
	// MinExpires and MaxExpires bound a registration's lifetime in seconds.
	MinExpires, MaxExpires int
	// IgnoreUnregistered leaves an offer to a recipient whose phone is not
	// registered to whoever else answers for them, instead of rejecting it
	// as unreachable (which sends the recipient away). The demo sets it:
	// its simulator answers for recipients without a registered phone. A
	// real contact center leaves it false, so an agent whose phone dropped
	// its registration stops being offered calls.
	IgnoreUnregistered bool

	Engine engine.Service
	Store  *sipstore.Store
	Conn   *nats.Conn
	// Registerer receives the SIP metrics (metrics.go); with nil they are
	// registered nowhere (they count on, unexported).
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

func (c *Config) defaults() error {
	if c.Engine == nil || c.Store == nil || c.Conn == nil {
		return errors.New("sipfront: Engine, Store and Conn are required")
	}
	if c.MaxCalls <= 0 {
		c.MaxCalls = DefaultMaxCalls
	}
	if c.MaxRegistrations <= 0 {
		c.MaxRegistrations = DefaultMaxRegistrations
	}
	if c.RequestRate == 0 {
		c.RequestRate = DefaultRequestRate
	}
	if c.RequestBurst <= 0 {
		c.RequestBurst = DefaultRequestBurst
	}
	if c.RingTimeout <= 0 {
		c.RingTimeout = DefaultRingTimeout
	}
	if c.MediaTimeout == 0 {
		c.MediaTimeout = DefaultMediaTimeout
	}
	if c.MinExpires <= 0 {
		c.MinExpires = DefaultMinExpires
	}
	if c.MaxExpires < c.MinExpires {
		c.MaxExpires = max(DefaultMaxExpires, c.MinExpires)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if (c.RTPPortMin == 0) != (c.RTPPortMax == 0) || c.RTPPortMin < 0 || c.RTPPortMax > 65535 || (c.RTPPortMin > 0 && c.RTPPortMin > c.RTPPortMax-2) {
		return fmt.Errorf("sipfront: RTP port range %d-%d: give both ends, at least 2 ports apart, within 1-65535", c.RTPPortMin, c.RTPPortMax)
	}
	return nil
}

// Server is the SIP front end.
type Server struct {
	cfg    Config
	log    *slog.Logger
	ua     *sipgo.UserAgent
	srv    *sipgo.Server
	dg     *diago.Diago
	udp    net.PacketConn
	tcp    net.Listener
	host   string // advertised host
	port   int
	m      *metrics
	sounds map[string][]byte
	reg    *registrar
	auth   *authenticator
	flood  *floodGuard
	nonces []byte
	calls  *callTable
	legs   running  // goroutines carrying legs, which Close waits for
	byes   sync.Map // SIP Call-ID -> event.Cause from a BYE's Reason header
	// ownTaps are wiretaps a supervisor's phone asked for with the feature
	// code whose wiretap_start has not been seen yet (tapKey).
	ownTaps sync.Map
	ctx     context.Context
	stop    context.CancelFunc
	wg      sync.WaitGroup
	sub     []*nats.Subscription
	events  chan *nats.Msg
	started bool
	closed  atomic.Bool
}

// New builds a Server; Start serves.
func New(cfg Config) (*Server, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, sounds: map[string][]byte{}, calls: newCallTable()}
	for _, name := range []string{sounds.Welcome, sounds.Hold, sounds.Full, sounds.NoAgents, sounds.Monitor, sounds.PositionMany} {
		if err := s.loadSound(name); err != nil {
			return nil, err
		}
	}
	for i := 1; i <= 10; i++ {
		if err := s.loadSound(sounds.Position(i)); err != nil {
			return nil, err
		}
	}
	m, err := newMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	s.m = m
	s.nonces = make([]byte, 32)
	_, _ = rand.Read(s.nonces)
	s.reg = newRegistrar(cfg.MaxRegistrations)
	if err := m.registerGauge(cfg.Registerer, s.reg.len); err != nil {
		return nil, err
	}
	s.auth = &authenticator{key: s.nonces, backoff: limit.NewBackoff(cfg.AuthBackoff)}
	s.flood = newFloodGuard(cfg.RequestRate, cfg.RequestBurst, maxTracked, s.trustedAddr)
	return s, nil
}

func (s *Server) loadSound(name string) error {
	b, err := sounds.Ulaw(name)
	if err != nil {
		return err
	}
	s.sounds[name] = b
	return nil
}

// Start listens on Addr (UDP and TCP), follows the engine's events and
// serves until Close.
func (s *Server) Start(ctx context.Context) error {
	host, portStr, err := net.SplitHostPort(s.cfg.Addr)
	if err != nil {
		return fmt.Errorf("--sip-addr %q: %w", s.cfg.Addr, err)
	}
	port, _ := strconv.Atoi(portStr)
	if err := s.listen(host, port); err != nil {
		return err
	}
	s.host = host
	if s.cfg.AdvertiseHost != "" {
		s.host = s.cfg.AdvertiseHost
	} else if ip := net.ParseIP(host); host == "" || (ip != nil && ip.IsUnspecified()) {
		s.host = "127.0.0.1"
	}
	if s.cfg.RTPPortMin > 0 {
		media.RTPPortStart, media.RTPPortEnd = s.cfg.RTPPortMin, s.cfg.RTPPortMax
	}
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("ccevents"), sipgo.WithUserAgentTransportLayerOptions(
		sip.WithTransportLayerReadFilter(s.flood.filter(s.m)),
	))
	if err != nil {
		return fmt.Errorf("start the SIP user agent: %w", err)
	}
	s.ua = ua
	if s.srv, err = sipgo.NewServer(ua); err != nil {
		return fmt.Errorf("start the SIP server: %w", err)
	}
	s.srv.OnRegister(s.handleRegister)
	bindHost := host
	if bindHost == "" {
		bindHost = "0.0.0.0"
	}
	opts := []diago.DiagoOption{diago.WithServer(s.srv), diago.WithLogger(s.log.With("component", "diago")),
		diago.WithServerRequestMiddleware(s.middleware),
		diago.WithMediaConfig(diago.MediaConfig{Codecs: []media.Codec{media.CodecAudioUlaw, media.CodecAudioAlaw, media.CodecTelephoneEvent8000}}),
	}
	for _, network := range []string{"udp", "tcp"} {
		t := diago.Transport{Transport: network, BindHost: bindHost, BindPort: s.port, ExternalHost: s.host, ExternalPort: s.port}
		if ip := net.ParseIP(s.host); ip != nil {
			t.MediaExternalIP = ip
		}
		opts = append(opts, diago.WithTransport(t))
	}
	s.dg = diago.NewDiago(ua, opts...)
	s.dg.HandleFunc(s.handleInvite)
	s.ctx, s.stop = context.WithCancel(context.WithoutCancel(ctx))
	if err := s.follow(); err != nil {
		s.stop()
		return err
	}
	s.wg.Add(2)
	go func() { defer s.wg.Done(); _ = s.srv.ServeUDP(s.udp) }()
	go func() { defer s.wg.Done(); _ = s.srv.ServeTCP(s.tcp) }()
	s.started = true
	s.log.Info("SIP listening", "addr", s.Addr(), "transports", "udp,tcp", "advertised_host", s.host)
	return nil
}

// listen binds UDP and TCP on the same port; port 0 takes a free one.
func (s *Server) listen(host string, port int) error {
	for attempt := 0; ; attempt++ {
		udp, err := net.ListenPacket("udp", net.JoinHostPort(host, strconv.Itoa(port)))
		if err != nil {
			return fmt.Errorf("listen for SIP on udp %s: %w", net.JoinHostPort(host, strconv.Itoa(port)), err)
		}
		p := udp.LocalAddr().(*net.UDPAddr).Port
		tcp, err := net.Listen("tcp", net.JoinHostPort(host, strconv.Itoa(p)))
		if err != nil {
			_ = udp.Close()
			if port == 0 && attempt < 20 {
				continue // the free UDP port is taken on TCP: try another
			}
			return fmt.Errorf("listen for SIP on tcp %s: %w", net.JoinHostPort(host, strconv.Itoa(p)), err)
		}
		s.udp, s.tcp, s.port = udp, tcp, p
		return nil
	}
}

// Addr is host:port SIP is served on (UDP and TCP).
func (s *Server) Addr() string { return net.JoinHostPort(s.host, strconv.Itoa(s.port)) }

// Close hangs up every call (SYSTEM_SHUTDOWN), stops following events
// and listening. Closing again does nothing.
func (s *Server) Close(ctx context.Context) error {
	if !s.started || s.closed.Swap(true) {
		return nil
	}
	for _, sub := range s.sub {
		_ = sub.Unsubscribe()
	}
	idle := s.legs.drain() // first, so no call starts after the others end
	s.calls.each(func(c *call) { c.end(event.CauseSystemShutdown) })
	select {
	case <-idle:
	case <-ctx.Done():
	}
	s.stop()
	_ = s.srv.Close()
	_ = s.udp.Close()
	_ = s.tcp.Close()
	_ = s.ua.Close()
	s.wg.Wait()
	return nil
}

// engineCtx bounds one request to the engine.
func (s *Server) engineCtx() (context.Context, context.CancelFunc) {
	return context.WithTimeout(s.ctx, engineTimeout)
}

// middleware sees every request diago handles: BYE Reason headers are
// noted for the leg they end.
func (s *Server) middleware(next sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		s.m.requests.WithLabelValues(req.Method.String()).Inc()
		if req.IsInvite() && req.Contact() == nil {
			// diago cannot make a dialog of it; say so rather than drop it.
			s.m.refused.WithLabelValues("bad_request").Inc()
			_ = tx.Respond(sip.NewResponseFromRequest(req, 400, "Bad Request: INVITE without Contact", nil))
			return
		}
		if req.IsInvite() && s.calls.len() >= s.cfg.MaxCalls {
			if id, err := sip.DialogIDFromRequestUAS(req); err != nil || id == "" { // a new call, not a re-INVITE
				s.m.refused.WithLabelValues("max_calls").Inc()
				res := sip.NewResponseFromRequest(req, 503, "Service Unavailable", nil)
				res.AppendHeader(sip.NewHeader("Retry-After", "5"))
				_ = tx.Respond(res)
				return
			}
		}
		if req.Method == sip.BYE {
			if h := req.GetHeader("Reason"); h != nil {
				if cause, ok := CauseOfReason(h.Value()); ok && req.CallID() != nil {
					s.byes.Store(req.CallID().Value(), cause)
				}
			}
		}
		next(req, tx)
	}
}

// byeCause is the cause a BYE of this Call-ID gave, or def.
func (s *Server) byeCause(callID string, def event.Cause) event.Cause {
	if v, ok := s.byes.LoadAndDelete(callID); ok {
		return v.(event.Cause)
	}
	return def
}
