package gateway

import (
	"log/slog"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/limit"
)

// Config tunes a Server. The zero value is usable: every zero field takes the
// default documented beside it.
type Config struct {
	// Addr is where ListenAndServe listens. Default ":5555".
	Addr string
	// Name names this gateway in the socket listing. Default: the host
	// name and the port of the first listener ("cc1:5555").
	Name string
	// MaxFrameBytes bounds one client message (all its fragments); a larger
	// one closes the connection with 1009. Default 64 KiB.
	MaxFrameBytes int64
	// MaxBindingsPerConn bounds the bindings active on one connection.
	// Default 100.
	MaxBindingsPerConn int
	// MaxConnsPerAccount bounds the connections subscribed to one account,
	// counted when a connection first subscribes to it. Default 10,000.
	MaxConnsPerAccount int
	// MaxConnsPerIP bounds the open connections from one remote address
	// (an IPv6 address counts as its /64); the next one is closed with 1008.
	// Default 1,000.
	MaxConnsPerIP int
	// MaxConns bounds the TCP connections the listener holds at once,
	// handshakes included: the gateway's share of the process's file
	// descriptors, so a flood elsewhere (the REST API) cannot take them
	// and a flood here cannot take the others'. Beyond it a connection is
	// answered 503 and closed. 0: no bound.
	MaxConns int
	// SubscribeRate bounds the subscribe, unsubscribe and refresh requests
	// of one connection to this many per second, with bursts of
	// SubscribeBurst; requests beyond it get an error reply. Defaults 10 and
	// 100 (a client may set up its bindings one request each); a negative
	// rate disables the limit.
	SubscribeRate  float64
	SubscribeBurst int
	// AuthBackoff makes an address whose tokens keep failing verification
	// wait before its next token is even checked. Defaults: 10 failures in
	// a minute make it wait 1s, doubling at each new burst up to 5m.
	AuthBackoff limit.BackoffConfig
	// TokenExpiryNotice is how long before a subscription's token expires
	// the client is sent a token_expiring notice (never more than a tenth
	// of the token's lifetime). At expiry, unless a refresh brought a new
	// token, the connection closes with 4001. Default 60s.
	TokenExpiryNotice time.Duration
	// AllowedOrigins lists the browser origins that may connect: exact
	// origins ("https://app.example.com") and host wildcards
	// ("https://*.example.com"). Empty allows every origin; clients that
	// send no Origin header are always allowed. Others get 403.
	AllowedOrigins []string
	// TLSCertFile and TLSKeyFile, both set, make the gateway serve wss://
	// with this PEM certificate chain and key, reloaded when the files
	// change (checked every TLSReloadInterval, default 10s).
	TLSCertFile       string
	TLSKeyFile        string
	TLSReloadInterval time.Duration
	// PingInterval is how often the server pings each connection. A
	// connection from which nothing (not even a pong) arrives for
	// PingInterval+PongTimeout is closed as dead. Default 25s; negative
	// disables pings and the dead-peer check.
	PingInterval time.Duration
	// PongTimeout is how long after a ping the client has to answer.
	// Default 10s.
	PongTimeout time.Duration
	// HandshakeTimeout bounds the TLS handshake, reading the HTTP upgrade
	// request and writing its response, so slow (slowloris) clients cannot
	// hold sockets. Default 5s.
	HandshakeTimeout time.Duration
	// WriteTimeout bounds one write to a connection and the wait for a
	// client to acknowledge a close frame. Default 10s.
	WriteTimeout time.Duration
	// OutboundMaxMessages and OutboundMaxBytes bound what may wait in one
	// connection's outbound queue; a client that lets more pile up is closed
	// with 4008 "slow consumer". Defaults 8,192 messages and 8 MiB.
	OutboundMaxMessages int
	OutboundMaxBytes    int
	// ReplayConcurrency bounds how many resumes read history from the
	// stream at once; more wait their turn, so a gateway restart that
	// brings every client back with since at the same moment does not
	// swamp JetStream. Default 32.
	ReplayConcurrency int
	// ReplayWait bounds how long a subscribe with since waits for one of
	// those turns; one that gets none in time is answered with an error
	// (retry_after 1) and subscribes nothing, well before a client's own
	// request timeout. Default 5s.
	ReplayWait time.Duration
	// NoIOUring makes the flushers write each plain TCP connection with a
	// writev of its own even where Linux's io_uring could send to many
	// connections in one syscall (the default there).
	NoIOUring bool
	// Snapshots serves subscribe with snapshot: true; nil refuses such
	// requests with an error that points to the REST snapshot.
	Snapshots Snapshotter
	// Registerer receives the gateway's Prometheus metrics; nil keeps them
	// in a private registry.
	Registerer prometheus.Registerer
	// Logger receives connection and fan-out logs; nil discards them.
	Logger *slog.Logger
	// Fallback serves plain HTTP requests (anything that is not a websocket
	// upgrade) on the same listener; nil answers them with 426 Upgrade Required.
	Fallback http.Handler
	// Now and AfterFunc are the clock tokens expire by: Now tells whether
	// a connection's token has expired and must be the clock auth verifies
	// tokens with (auth.Options.Now); AfterFunc times the token_expiring
	// notice and the close at expiry. Nil means the real clock (time.Now,
	// time.AfterFunc); tests pass a settable one (testkit.Clock) to move
	// past an expiry instead of waiting for it.
	Now       func() time.Time
	AfterFunc func(d time.Duration, f func()) Timer
}

// Timer is what Config.AfterFunc returns: *time.Timer's Stop and Reset.
type Timer interface {
	Stop() bool
	Reset(d time.Duration) bool
}

// Defaults of the Config fields.
const (
	DefaultAddr                = ":5555"
	DefaultMaxFrameBytes       = 64 << 10
	DefaultMaxBindingsPerConn  = 100
	DefaultMaxConnsPerAccount  = 10_000
	DefaultMaxConnsPerIP       = 1_000
	DefaultSubscribeRate       = 10
	DefaultSubscribeBurst      = 100
	DefaultTokenExpiryNotice   = 60 * time.Second
	DefaultTLSReloadInterval   = 10 * time.Second
	DefaultPingInterval        = 25 * time.Second
	DefaultPongTimeout         = 10 * time.Second
	DefaultHandshakeTimeout    = 5 * time.Second
	DefaultWriteTimeout        = 10 * time.Second
	DefaultOutboundMaxMessages = 8_192
	DefaultOutboundMaxBytes    = 8 << 20
	DefaultReplayConcurrency   = 32
	DefaultReplayWait          = 5 * time.Second
)

func (c Config) withDefaults() Config {
	if c.Addr == "" {
		c.Addr = DefaultAddr
	}
	// Zero or less: the default.
	positiveOr(&c.MaxFrameBytes, DefaultMaxFrameBytes)
	positiveOr(&c.MaxBindingsPerConn, DefaultMaxBindingsPerConn)
	positiveOr(&c.MaxConnsPerAccount, DefaultMaxConnsPerAccount)
	positiveOr(&c.MaxConnsPerIP, DefaultMaxConnsPerIP)
	positiveOr(&c.SubscribeBurst, DefaultSubscribeBurst)
	positiveOr(&c.TokenExpiryNotice, DefaultTokenExpiryNotice)
	positiveOr(&c.TLSReloadInterval, DefaultTLSReloadInterval)
	positiveOr(&c.PongTimeout, DefaultPongTimeout)
	positiveOr(&c.HandshakeTimeout, DefaultHandshakeTimeout)
	positiveOr(&c.WriteTimeout, DefaultWriteTimeout)
	positiveOr(&c.OutboundMaxMessages, DefaultOutboundMaxMessages)
	positiveOr(&c.OutboundMaxBytes, DefaultOutboundMaxBytes)
	positiveOr(&c.ReplayConcurrency, DefaultReplayConcurrency)
	positiveOr(&c.ReplayWait, DefaultReplayWait)
	// Zero: the default; negative turns the rate limit, or the pings, off.
	if c.SubscribeRate == 0 {
		c.SubscribeRate = DefaultSubscribeRate
	}
	if c.PingInterval == 0 {
		c.PingInterval = DefaultPingInterval
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.AfterFunc == nil {
		c.AfterFunc = func(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
	}
	return c
}

// positiveOr sets *v to def unless it is positive.
func positiveOr[T int | int64 | float64 | time.Duration](v *T, def T) {
	if *v <= 0 {
		*v = def
	}
}
