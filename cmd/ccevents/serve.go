package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/ccevents/ccevents/internal/api"
	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/buildinfo"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/engine/cluster"
	"github.com/ccevents/ccevents/internal/gateway"
	"github.com/ccevents/ccevents/internal/limit"
	"github.com/ccevents/ccevents/internal/sim"
	"github.com/ccevents/ccevents/internal/sipfront"
	"github.com/ccevents/ccevents/internal/sipstore"
	"github.com/ccevents/ccevents/internal/socketlist"
	"github.com/ccevents/ccevents/web"
)

// authBucket is the key-value bucket of accounts, API keys and signing keys.
const authBucket = "ccevents_auth"

// serveConfig is every setting of `ccevents serve`.
type serveConfig struct {
	WSAddr          string
	APIAddr         string
	DataDir         string
	NATS            stringList
	NATSListen      string
	NATSWSListen    string
	NATSMaxConns    int
	Memory          bool
	HistoryMaxAge   time.Duration
	HistoryMaxBytes byteSize
	Replicas        int
	Roles           stringList
	Demo            bool
	DemoRate        float64
	SyncInterval    time.Duration
	StatsInterval   time.Duration
	TokenTTL        time.Duration
	MaxTokenTTL     time.Duration
	SigningKeyFile  string
	ShutdownTimeout time.Duration
	NATSWait        time.Duration
	LogLevel        string
	LogFormat       string
	PprofAddr       string

	MaxFrameBytes       byteSize
	MaxBindingsPerConn  int
	MaxConnsPerAccount  int
	MaxConnsPerIP       int
	MaxConns            int
	PingInterval        time.Duration
	PongTimeout         time.Duration
	OutboundMaxMessages int
	OutboundMaxBytes    byteSize
	ReplayConcurrency   int
	ReplayWait          time.Duration
	IOUring             bool

	SubscribeRate         float64
	SubscribeBurst        int
	AuthFailureLimit      int
	AuthFailureWindow     time.Duration
	AuthFailureBackoff    time.Duration
	AuthFailureBackoffMax time.Duration
	HandshakeTimeout      time.Duration
	TokenExpiryNotice     time.Duration
	TLSCert               string
	TLSKey                string
	TLSReloadInterval     time.Duration
	AllowedOrigins        stringList
	NATSClient            natsClientFlags

	APIMaxConns      int
	APIMaxConnsPerIP int
	APIHeaderTimeout time.Duration
	APIReadTimeout   time.Duration
	APIWriteTimeout  time.Duration
	APIIdleTimeout   time.Duration

	SIP sipConfig
}

var allRoles = []string{"gateway", "api", "engine"}

// Bounds of --stats-interval: faster would flood wallboards without making
// them any more useful; slower would leave them behind the queue.
const (
	minStatsInterval = 100 * time.Millisecond
	maxStatsInterval = time.Minute
)

func (c *serveConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.WSAddr, "ws-addr", gateway.DefaultAddr, "address of the websocket gateway (clients connect to ws://HOST:5555)")
	fs.StringVar(&c.APIAddr, "api-addr", ":8000", "address of the REST API, /metrics, /healthz and the wallboard")
	fs.StringVar(&c.DataDir, "data-dir", "ccevents-data", "directory for the embedded NATS store, root.json and demo.json")
	fs.Var(&c.NATS, "nats", "comma-separated URLs of an external NATS cluster (nats://a:4222,nats://b:4222); empty runs an embedded NATS server")
	fs.StringVar(&c.NATSListen, "nats-listen", "", "where the embedded NATS server accepts NATS clients (producers, ccevents token, nats CLI), e.g. 127.0.0.1:4222; it then requires the credentials under DATA_DIR/nats; empty keeps NATS in-process")
	fs.StringVar(&c.NATSWSListen, "nats-ws-listen", "", "optional NATS websocket listener of the embedded server (the raw peer for ccevents bench); requires the same credentials")
	fs.IntVar(&c.NATSMaxConns, "nats-max-conns", 0, "most clients of the embedded NATS server's listeners, ccevents' own included (0: its share of the open file limit)")
	fs.BoolVar(&c.Memory, "memory", false, "keep event history and state in memory instead of files under --data-dir")
	fs.DurationVar(&c.HistoryMaxAge, "history-max-age", 24*time.Hour, "how long event history is kept for resume (since)")
	c.HistoryMaxBytes = 1 << 30
	fs.Var(&c.HistoryMaxBytes, "history-max-bytes", "most bytes of event history kept (e.g. 512MiB, 1GiB)")
	fs.IntVar(&c.Replicas, "replicas", 1, "replicas of the event stream and key-value buckets (3 on a 3-node NATS cluster)")
	c.Roles = allRoles
	fs.Var(&c.Roles, "roles", "roles this process runs: any of gateway,api,engine")
	fs.BoolVar(&c.Demo, "demo", false, "create a demo account with queues and recipients and simulate call traffic; listens on 127.0.0.1 unless --ws-addr or --api-addr say otherwise, since it prints an API key")
	fs.Float64Var(&c.DemoRate, "demo-rate", sim.DefaultRate, "demo call arrivals per minute")
	fs.DurationVar(&c.SyncInterval, "sync-interval", 30*time.Second, "how often every logged-in recipient's sync event is published")
	fs.DurationVar(&c.StatsInterval, "stats-interval", engine.DefaultStatsInterval, "shortest time between two statistics events (qubicle.stats.*) of one queue, and of the account; 0 sends none")
	fs.DurationVar(&c.TokenTTL, "token-ttl", time.Hour, "lifetime of auth tokens issued by PUT /v2/api_auth")
	fs.DurationVar(&c.MaxTokenTTL, "max-token-ttl", auth.DefaultMaxTokenTTL, "longest token lifetime issued or accepted; a token whose claims say longer is refused (same on every node)")
	fs.StringVar(&c.SigningKeyFile, "signing-key-file", "", "seal key file (64 hex characters) that encrypts token signing keys in NATS; the same file on every node with the api role (default DATA_DIR/signing.key, created on first start)")
	fs.DurationVar(&c.ShutdownTimeout, "shutdown-timeout", 10*time.Second, "longest a graceful shutdown waits before closing what is left")
	fs.DurationVar(&c.NATSWait, "nats-wait", 2*time.Minute, "how long start-up waits for NATS to answer and its JetStream to be ready (a cluster electing leaders, a node recovering), logging each attempt, before it gives up")
	fs.StringVar(&c.LogLevel, "log-level", "info", "log level: debug, info, warn or error")
	fs.StringVar(&c.LogFormat, "log-format", "text", "log format: text or json")
	fs.StringVar(&c.PprofAddr, "pprof-addr", "", "optional address for Go's /debug/pprof profiles (e.g. 127.0.0.1:6060); keep it private")

	c.MaxFrameBytes = gateway.DefaultMaxFrameBytes
	fs.Var(&c.MaxFrameBytes, "max-frame-bytes", "largest websocket message a client may send")
	fs.IntVar(&c.MaxBindingsPerConn, "max-bindings-per-conn", gateway.DefaultMaxBindingsPerConn, "most bindings one websocket connection may hold")
	fs.IntVar(&c.MaxConnsPerAccount, "max-conns-per-account", gateway.DefaultMaxConnsPerAccount, "most websocket connections subscribed to one account")
	fs.IntVar(&c.MaxConnsPerIP, "max-conns-per-ip", gateway.DefaultMaxConnsPerIP, "most websocket connections from one client address")
	fs.IntVar(&c.MaxConns, "max-conns", 0, "most TCP connections the websocket listener holds (0: its share of the open file limit, see docs/security.md)")
	fs.IntVar(&c.APIMaxConns, "api-max-conns", 0, "most connections the REST API holds (0: its share of the open file limit, see docs/security.md)")
	fs.IntVar(&c.APIMaxConnsPerIP, "api-max-conns-per-ip", api.DefaultMaxConnsPerIP, "most REST API connections from one client address (negative: no bound)")
	fs.DurationVar(&c.APIHeaderTimeout, "api-header-timeout", api.DefaultReadHeaderTimeout, "time a REST client has to send a request's headers")
	fs.DurationVar(&c.APIReadTimeout, "api-read-timeout", api.DefaultReadTimeout, "time a REST client has to send a whole request, body included (else 408)")
	fs.DurationVar(&c.APIWriteTimeout, "api-write-timeout", api.DefaultWriteTimeout, "time the REST API has from a request's headers to the end of its response")
	fs.DurationVar(&c.APIIdleTimeout, "api-idle-timeout", api.DefaultIdleTimeout, "how long an idle keep-alive REST connection stays open")
	fs.DurationVar(&c.PingInterval, "ping-interval", gateway.DefaultPingInterval, "how often the gateway pings each websocket client")
	fs.DurationVar(&c.PongTimeout, "pong-timeout", gateway.DefaultPongTimeout, "how long after a missed ping a silent client is closed")
	fs.IntVar(&c.OutboundMaxMessages, "outbound-max-messages", gateway.DefaultOutboundMaxMessages, "events queued for one slow client before it is closed (4008)")
	c.OutboundMaxBytes = gateway.DefaultOutboundMaxBytes
	fs.Var(&c.OutboundMaxBytes, "outbound-max-bytes", "bytes queued for one slow client before it is closed (4008)")
	fs.IntVar(&c.ReplayConcurrency, "replay-concurrency", gateway.DefaultReplayConcurrency, "resumes reading history from the stream at once; more wait their turn")
	fs.DurationVar(&c.ReplayWait, "replay-wait", gateway.DefaultReplayWait, "longest a resume waits for its turn; then it is answered with an error and retry_after")
	fs.BoolVar(&c.IOUring, "io-uring", true, "on Linux, send to many websocket clients with one io_uring syscall when the kernel allows it (false: one writev per client)")

	fs.Float64Var(&c.SubscribeRate, "subscribe-rate", gateway.DefaultSubscribeRate, "subscribe/unsubscribe/refresh requests per second one connection may send (negative: unlimited)")
	fs.IntVar(&c.SubscribeBurst, "subscribe-burst", gateway.DefaultSubscribeBurst, "requests a connection may send at once above --subscribe-rate")
	fs.IntVar(&c.AuthFailureLimit, "auth-failure-limit", limit.DefaultBackoffFailures, "failed token checks from one address within --auth-failure-window before it must wait")
	fs.DurationVar(&c.AuthFailureWindow, "auth-failure-window", limit.DefaultBackoffWindow, "window in which --auth-failure-limit failures count")
	fs.DurationVar(&c.AuthFailureBackoff, "auth-failure-backoff", limit.DefaultBackoffInitial, "first wait imposed on an address after too many auth failures (doubles each time)")
	fs.DurationVar(&c.AuthFailureBackoffMax, "auth-failure-backoff-max", limit.DefaultBackoffMax, "longest wait imposed after auth failures")
	fs.DurationVar(&c.HandshakeTimeout, "handshake-timeout", gateway.DefaultHandshakeTimeout, "time a client has to complete the TLS and websocket handshake")
	fs.DurationVar(&c.TokenExpiryNotice, "token-expiry-notice", gateway.DefaultTokenExpiryNotice, "how long before its token expires a connection gets a token_expiring notice")
	fs.StringVar(&c.TLSCert, "tls-cert", "", "certificate file (PEM) for wss:// on --ws-addr; reloaded when it changes")
	fs.StringVar(&c.TLSKey, "tls-key", "", "private key file (PEM) for --tls-cert")
	fs.DurationVar(&c.TLSReloadInterval, "tls-reload-interval", gateway.DefaultTLSReloadInterval, "how often the certificate files are checked for changes")
	fs.Var(&c.AllowedOrigins, "allowed-origins", "comma-separated Origins browsers may connect from (https://app.example.com, https://*.example.com); empty allows all")
	c.NATSClient.register(fs)
	c.SIP.register(fs)
}

func (c *serveConfig) validate() error {
	for _, r := range c.Roles {
		if !slices.Contains(allRoles, r) {
			return fmt.Errorf("--roles: unknown role %q (use any of %s)", r, strings.Join(allRoles, ","))
		}
	}
	if len(c.Roles) == 0 {
		return errors.New("--roles: name at least one of gateway,api,engine")
	}
	if c.Demo && len(c.Roles) != len(allRoles) {
		return errors.New("--demo needs every role (gateway,api,engine) in this process")
	}
	if c.Replicas < 1 || c.Replicas > 5 {
		return fmt.Errorf("--replicas must be between 1 and 5, got %d", c.Replicas)
	}
	if c.NATSWait <= 0 {
		return fmt.Errorf("--nats-wait must be above 0 (e.g. 2m), got %s", c.NATSWait)
	}
	if c.ReplayConcurrency < 1 {
		return fmt.Errorf("--replay-concurrency must be at least 1, got %d", c.ReplayConcurrency)
	}
	if c.ReplayWait <= 0 {
		return fmt.Errorf("--replay-wait must be above 0, got %s", c.ReplayWait)
	}
	if err := checkTokenTTL("--token-ttl", c.TokenTTL); err != nil {
		return err
	}
	if c.DemoRate <= 0 {
		return fmt.Errorf("--demo-rate must be above 0, got %g", c.DemoRate)
	}
	if c.StatsInterval != 0 && (c.StatsInterval < minStatsInterval || c.StatsInterval > maxStatsInterval) {
		return fmt.Errorf("--stats-interval must be 0 (no statistics events) or between %v and %v, got %v", minStatsInterval, maxStatsInterval, c.StatsInterval)
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		return errors.New("--tls-cert and --tls-key go together: give both for wss://, or neither")
	}
	if err := c.NATSClient.validate(); err != nil {
		return err
	}
	if len(c.NATS) == 0 && c.NATSClient.given() {
		return errors.New("the --nats-creds, --nats-nkey, --nats-user and --nats-tls-* flags are for an external cluster (--nats); the embedded server makes its own credentials under DATA_DIR/nats")
	}
	if c.MaxTokenTTL <= 0 || c.TokenTTL > c.MaxTokenTTL {
		return fmt.Errorf("--token-ttl %s must be above 0 and at most --max-token-ttl %s", c.TokenTTL, c.MaxTokenTTL)
	}
	if c.MaxConns < 0 || c.APIMaxConns < 0 || c.NATSMaxConns < 0 {
		return errors.New("--max-conns, --api-max-conns and --nats-max-conns must be 0 (a share of the open file limit) or more")
	}
	for _, f := range []string{c.TLSCert, c.TLSKey} {
		if f == "" {
			continue
		}
		if _, err := os.Stat(f); err != nil {
			return fmt.Errorf("TLS file %s: %w", f, err)
		}
	}
	if err := c.SIP.validate(); err != nil {
		return err
	}
	if c.SIP.Addr != "" && !c.has("engine") && !c.has("api") {
		return errors.New("--sip-addr needs the api or engine role in this process")
	}
	for _, u := range c.NATS {
		if !strings.Contains(u, "://") {
			return fmt.Errorf("--nats: %q is not a URL; write nats://host:4222", u)
		}
	}
	return nil
}

// keepDemoOnLoopback moves the listeners a --demo run was not given
// addresses for to 127.0.0.1: the demo prints an API key and a token for
// anyone who can reach it, so it is reachable from this machine only
// unless asked otherwise (flag, environment or config file).
func (c *serveConfig) keepDemoOnLoopback(fs *flag.FlagSet) {
	if !c.Demo {
		return
	}
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	for name, addr := range map[string]*string{"ws-addr": &c.WSAddr, "api-addr": &c.APIAddr} {
		if host, port, err := net.SplitHostPort(*addr); err == nil && host == "" && !given[name] {
			*addr = net.JoinHostPort("127.0.0.1", port)
		}
	}
}

func (c *serveConfig) has(role string) bool { return slices.Contains(c.Roles, role) }

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var lv slog.Level
	if err := lv.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level: %q is not one of debug, info, warn, error", level)
	}
	opts := &slog.HandlerOptions{Level: lv}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, opts)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, opts)), nil
	}
	return nil, fmt.Errorf("--log-format: %q is not text or json", format)
}

func newServeCommand(stdout, stderr io.Writer) *ffcli.Command {
	var cfg serveConfig
	fs := flag.NewFlagSet("ccevents serve", flag.ContinueOnError)
	cfg.register(fs)
	fs.String("config", "", "optional config file of \"flag value\" lines (e.g. ws-addr :6000)")
	return &ffcli.Command{
		Name:       "serve",
		ShortUsage: "ccevents serve [flags]",
		ShortHelp:  "run the gateway, REST API and engine (embedded NATS unless --nats)",
		LongHelp: "Runs the websocket gateway (:5555), the REST API (:8000) and the contact-center\n" +
			"engine in one process on an embedded NATS server with JetStream, or on an\n" +
			"external NATS cluster with --nats. --demo adds simulated traffic and prints a\n" +
			"ready token and subscribe message.\n\n" +
			"Each flag may also be set as CCEVENTS_<NAME> (CCEVENTS_WS_ADDR=:6000) or in --config.",
		FlagSet: fs,
		Options: []ff.Option{ff.WithEnvVarPrefix("CCEVENTS"), ff.WithConfigFileFlag("config"), ff.WithConfigFileParser(configFileParser(fs))},
		Exec: flagsOnly("serve", "flags go before, e.g. --demo", func(ctx context.Context) error {
			if err := cfg.validate(); err != nil {
				return err
			}
			cfg.keepDemoOnLoopback(fs)
			log, err := newLogger(stderr, cfg.LogLevel, cfg.LogFormat)
			if err != nil {
				return err
			}
			return serve(ctx, cfg, log, stdout)
		}),
	}
}

// serve runs until ctx ends (SIGINT/SIGTERM), then shuts down gracefully.
func serve(ctx context.Context, cfg serveConfig, log *slog.Logger, stdout io.Writer) error {
	lns, err := openListeners(cfg)
	if err != nil {
		return err
	}
	defer lns.close()
	if err := checkDataDir(cfg.DataDir); err != nil {
		return err
	}
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}), buildinfo.Collector())
	bi := buildinfo.Read()
	log.Info("ccevents starting", "version", bi.Version, "commit", bi.Commit, "go", bi.GoVersion, "nats", bi.NATSVersion)

	shares := descriptorShares(cfg, log)
	natsOpts, err := cfg.NATSClient.options()
	if err != nil {
		return err
	}
	// Everything start-up needs from NATS waits for it up to --nats-wait.
	openCtx, cancelOpen := context.WithTimeout(ctx, cfg.NATSWait)
	defer cancelOpen()
	b, err := bus.Open(openCtx, bus.Config{
		URLs: cfg.NATS, DataDir: cfg.DataDir, Memory: cfg.Memory,
		Listen: listenIfEmbedded(cfg), WebsocketListen: cfg.NATSWSListen, MaxClients: shares.NATS,
		MaxAge: cfg.HistoryMaxAge, MaxBytes: int64(cfg.HistoryMaxBytes), Replicas: cfg.Replicas,
		// Only the roles that publish events own the stream's settings.
		KeepStream:     !cfg.has("engine") && !cfg.has("api"),
		ConnectOptions: natsOpts,
		Logger:         log.With("component", "bus"), Registerer: reg,
	})
	if err != nil {
		return fmt.Errorf("start the bus: %w%s", err, natsWaitHint(openCtx, cfg))
	}
	defer b.Close()
	replicas := newReplicaWatch(b, log.With("component", "bus"))
	reg.MustRegister(replicas)

	var authSvc *auth.Service
	err = b.Await(openCtx, "load accounts and signing keys", startAttempt, func(ctx context.Context) error {
		authSvc, err = startAuth(ctx, b, cfg, log)
		return err
	})
	if err != nil {
		return fmt.Errorf("%w%s", err, natsWaitHint(openCtx, cfg))
	}
	if authSvc != nil {
		defer authSvc.Close()
	}
	var root auth.Account
	if cfg.has("api") {
		err = b.Await(openCtx, "find the root account", startAttempt, func(ctx context.Context) error {
			root, err = ensureRoot(ctx, authSvc, cfg.DataDir, log)
			return err
		})
		if err != nil {
			return fmt.Errorf("%w%s", err, natsWaitHint(openCtx, cfg))
		}
	}

	if cfg.PprofAddr != "" {
		stop, err := servePprof(cfg.PprofAddr, log)
		if err != nil {
			return err
		}
		defer stop()
	}

	// eng serves every account's commands: the local engine node's own
	// accounts directly, others on the engine node that runs them.
	var eng engine.Service
	if cfg.has("engine") {
		var node *cluster.Node
		err := b.Await(openCtx, "start the engine", startAttempt, func(ctx context.Context) error {
			var err error
			node, err = startEngineNode(ctx, b, cfg, log, reg)
			return err
		})
		if err != nil {
			return fmt.Errorf("%w%s", err, natsWaitHint(openCtx, cfg))
		}
		reg.MustRegister(accountsOwned(node))
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			if err := node.Close(ctx); err != nil {
				log.Warn("engine did not stop cleanly", "err", err)
			}
		}()
		eng = node.Router()
	} else if cfg.has("api") || cfg.has("gateway") {
		r, err := newEngineRouter(openCtx, b, log, reg)
		if err != nil {
			return fmt.Errorf("%w%s", err, natsWaitHint(openCtx, cfg))
		}
		eng = r
	}

	// The telephony configuration (SIP credentials, numbers) serves the
	// REST API and the SIP front end.
	var sipStore *sipstore.Store
	var sipSrv *sipfront.Server
	sipAddr := sipListenAddr(cfg)
	if eng != nil && (cfg.has("api") || sipAddr != "") {
		if sipStore, err = openSIPStore(openCtx, b, cfg.has("api"), log); err != nil {
			return err
		}
		defer sipStore.Close()
	}
	if sipAddr != "" {
		if sipSrv, err = startSIP(ctx, cfg, sipAddr, b, eng, sipStore, reg, log); err != nil {
			return err
		}
		defer func() {
			ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownTimeout)
			defer cancel()
			_ = sipSrv.Close(ctx)
		}()
	}

	// Every bucket exists by now, so the first check sees them all.
	go replicas.run(ctx, replicaCheckInterval)

	var servers []func(context.Context) error
	var addrs boundAddrs
	// draining turns /readyz to 503 as soon as shutdown starts, so a load
	// balancer stops sending new clients while existing ones are told to go.
	var draining atomic.Bool
	errc := make(chan error, 3)
	// The REST API's logins and the gateway's token checks back off alike.
	authBackoff := limit.BackoffConfig{
		Failures: cfg.AuthFailureLimit, Window: cfg.AuthFailureWindow,
		Initial: cfg.AuthFailureBackoff, Max: cfg.AuthFailureBackoffMax,
	}

	// The registry of live gateways: each gateway keeps itself in it (the
	// gateways own it), and the REST API's websocket listing waits for
	// exactly those.
	var gateways jetstream.KeyValue
	if cfg.has("gateway") || cfg.has("api") {
		open := b.EnsureKeyValue
		if cfg.has("gateway") {
			open = b.KeyValue
		}
		if gateways, err = open(openCtx, socketlist.RegistryBucket, bus.ExpireAfter(socketlist.RegistryTTL)); err != nil {
			return err
		}
	}

	if cfg.has("api") {
		sockets, err := socketlist.NewGatherer(context.WithoutCancel(openCtx), b.Conn(), socketlist.GathererConfig{
			Registry: gateways, Registerer: reg, Logger: log.With("component", "api"),
		})
		if err != nil {
			return err
		}
		defer sockets.Close()
		apiSrv, err := api.New(api.Config{
			Auth: authSvc, Publisher: b, Engine: eng, Gatherer: reg, Registerer: reg, Sockets: sockets,
			SIP: sipStore, SIPRegistered: registeredFunc(sipSrv),
			Ready: func() error {
				if draining.Load() {
					return errors.New("shutting down: send new clients elsewhere")
				}
				if !b.Connected() {
					return errors.New("not connected to NATS")
				}
				return nil
			},
			Static:       web.APIHandler(),
			LoginBackoff: limit.NewBackoff(authBackoff),
			Limits: api.Limits{
				ReadHeaderTimeout: cfg.APIHeaderTimeout, ReadTimeout: cfg.APIReadTimeout,
				WriteTimeout: cfg.APIWriteTimeout, IdleTimeout: cfg.APIIdleTimeout,
				MaxConns: shares.API, MaxConnsPerIP: cfg.APIMaxConnsPerIP,
			},
			Logger: log.With("component", "api"),
		})
		if err != nil {
			return err
		}
		if err := apiSrv.ServeIngest(ctx, b.Conn()); err != nil {
			return err
		}
		ln := lns.api
		go func() {
			if err := apiSrv.Serve(ln); err != nil {
				errc <- err
			}
		}()
		servers = append(servers, apiSrv.Shutdown)
		addrs.api = dialable(ln.Addr())
		log.Info("REST API listening", "addr", ln.Addr().String(), "url", "http://"+addrs.api)
	}

	if cfg.has("gateway") {
		gw, err := gateway.New(gateway.Config{
			Addr: cfg.WSAddr, MaxFrameBytes: int64(cfg.MaxFrameBytes), MaxBindingsPerConn: cfg.MaxBindingsPerConn,
			MaxConnsPerAccount: cfg.MaxConnsPerAccount, MaxConnsPerIP: cfg.MaxConnsPerIP, MaxConns: shares.WS,
			PingInterval: cfg.PingInterval, PongTimeout: cfg.PongTimeout,
			OutboundMaxMessages: cfg.OutboundMaxMessages, OutboundMaxBytes: int(cfg.OutboundMaxBytes),
			ReplayConcurrency: cfg.ReplayConcurrency, ReplayWait: cfg.ReplayWait, NoIOUring: !cfg.IOUring, Snapshots: engineSnapshots{eng},
			SubscribeRate: cfg.SubscribeRate, SubscribeBurst: cfg.SubscribeBurst,
			AuthBackoff:      authBackoff,
			HandshakeTimeout: cfg.HandshakeTimeout, TokenExpiryNotice: cfg.TokenExpiryNotice,
			TLSCertFile: cfg.TLSCert, TLSKeyFile: cfg.TLSKey, TLSReloadInterval: cfg.TLSReloadInterval,
			AllowedOrigins: cfg.AllowedOrigins,
			Registerer:     reg, Logger: log.With("component", "gateway"), Fallback: web.GatewayHandler(),
		}, b, authSvc)
		if err != nil {
			return err
		}
		ln := lns.ws
		// The REST API of any node lists this gateway's sockets over NATS.
		listing, err := socketlist.Serve(ctx, b.Conn(), gw, socketlist.ServeConfig{
			Name: gw.NameOn(ln.Addr()), Registry: gateways, Registerer: reg, Logger: log.With("component", "gateway"),
		})
		if err != nil {
			return err
		}
		go func() {
			if err := gw.Serve(ctx, ln); err != nil {
				errc <- fmt.Errorf("websocket gateway: %w", err)
			}
		}()
		// The gateway goes first so clients get their close frames while
		// the bus is still up, after leaving the registry so listings stop
		// waiting for it.
		servers = append([]func(context.Context) error{listing.Leave, gw.Shutdown}, servers...)
		addrs.ws, addrs.wsScheme = dialable(ln.Addr()), "ws"
		if cfg.TLSCert != "" {
			addrs.wsScheme = "wss"
		}
		log.Info("websocket gateway listening", "addr", ln.Addr().String(), "url", addrs.wsScheme+"://"+addrs.ws)
	}

	if cfg.Demo {
		if err := startDemo(ctx, cfg, authSvc, eng, root, addrs, demoTelephony{store: sipStore, sip: sipSrv}, log, stdout); err != nil {
			return err
		}
	}

	var fatal error
	select {
	case <-ctx.Done():
		log.Info("shutting down", "timeout", cfg.ShutdownTimeout)
	case fatal = <-errc:
		log.Error("stopping after a fatal error", "err", fatal)
	}
	draining.Store(true)
	shutdown(servers, cfg.ShutdownTimeout, log)
	return fatal
}

// replicaCheckInterval is how often serve reads how its streams and
// buckets are replicated (for ccevents_bus_replicas_current).
const replicaCheckInterval = 30 * time.Second

// startAttempt bounds one attempt of a start-up step that does more than
// one request (loading every account of an engine).
const startAttempt = 30 * time.Second

// natsWaitHint tells an operator what to do when start-up gave up waiting
// for NATS.
func natsWaitHint(openCtx context.Context, cfg serveConfig) string {
	if !errors.Is(openCtx.Err(), context.DeadlineExceeded) {
		return ""
	}
	return fmt.Sprintf(" (gave up after --nats-wait %s: check that a majority of the NATS servers run and are reachable, or wait longer with --nats-wait)", cfg.NATSWait)
}

func shutdown(servers []func(context.Context) error, timeout time.Duration, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	for _, stop := range servers {
		if err := stop(ctx); err != nil {
			log.Warn("shutdown incomplete", "err", err)
		}
	}
}

func listenIfEmbedded(cfg serveConfig) string {
	if len(cfg.NATS) > 0 {
		return ""
	}
	return cfg.NATSListen
}

// ensureRoot creates the root account on first start and records it in
// DATA_DIR/root.json (mode 0600).
func ensureRoot(ctx context.Context, svc *auth.Service, dataDir string, log *slog.Logger) (auth.Account, error) {
	acct, key, created, err := svc.EnsureRoot(ctx, "root")
	if err != nil {
		return auth.Account{}, fmt.Errorf("create the root account: %w", err)
	}
	path := filepath.Join(dataDir, "root.json")
	if created {
		if err := writeJSONFile(path, map[string]string{"account_id": acct.ID, "api_key": key}); err != nil {
			return auth.Account{}, err
		}
		log.Info("root account created; its API key is in root.json", "account_id", acct.ID, "file", path)
	} else {
		log.Info("root account", "account_id", acct.ID, "file", path)
	}
	return acct, nil
}
