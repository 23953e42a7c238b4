package bus

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/backoff"
)

// StreamName is the JetStream stream holding the history of every event.
const StreamName = "QUBICLE"

// StreamSubjects is what the stream stores: every event of every account.
const StreamSubjects = "qubicle.>"

// epochKey is the stream metadata entry naming this history's epoch: it is
// set once when the stream is created, so a reset history gets a new one.
const epochKey = "ccevents_epoch"

// Config says where the bus is and how much history it keeps. The zero value
// (plus a DataDir) runs an embedded server with file storage.
type Config struct {
	// URLs of an external NATS cluster; empty runs an embedded server.
	URLs []string
	// DataDir holds the embedded server's JetStream files.
	DataDir string
	// Memory keeps the stream and key-value buckets in memory instead of files.
	Memory bool
	// Listen is host:port where the embedded server accepts NATS clients
	// (producers, `ccevents token`); empty keeps it in-process only. A
	// server that listens requires credentials (see IdentityCCEvents).
	Listen string
	// WebsocketListen is host:port of the embedded server's own NATS
	// websocket listener (used as the peer in benchmarks); empty disables
	// it. It requires credentials as Listen does.
	WebsocketListen string
	// MaxClients bounds the embedded server's client connections, this
	// process's own included, so a flood on Listen cannot use up the
	// process's file descriptors; zero means nats-server's default.
	MaxClients int
	// MaxAge and MaxBytes bound the history; zero means 24h and 1 GiB.
	MaxAge   time.Duration
	MaxBytes int64
	// Replicas of the stream and buckets on a cluster; zero means 1.
	Replicas int
	// Name identifies this process to NATS (connection name, server name).
	Name string
	// UseExistingStream only looks the event stream up, for tools that join
	// a running ccevents: they must not rewrite its retention or replicas.
	UseExistingStream bool
	// KeepStream creates the event stream if it does not exist but never
	// changes an existing one: for processes (gateways) whose NATS identity
	// may read the stream but not reconfigure it.
	KeepStream bool
	// ConnectOptions are extra options for the client connection (TLS, credentials).
	ConnectOptions []nats.Option
	// Logger receives bus lifecycle logs; nil discards them.
	Logger *slog.Logger
	// Registerer receives the bus metrics (metrics.go); with nil they
	// are registered nowhere (they count on, unexported).
	Registerer prometheus.Registerer
}

// Message is one stored event as the bus delivers it.
type Message struct {
	Subject  string
	Data     []byte
	Sequence uint64
	Time     time.Time
}

// Bus is a connection to NATS with the event stream ready to use.
type Bus struct {
	cfg    Config
	log    *slog.Logger
	m      *metrics
	server *server.Server // nil on an external cluster
	conn   *nats.Conn
	js     jetstream.JetStream
	stream jetstream.Stream
	epoch  string
	// replicated is set when the stream has more than one replica: a
	// history read must then confirm its end with the stream leader.
	replicated bool
	// warnNoDirect logs once that the stream refuses direct gets.
	warnNoDirect sync.Once
	// tempDir is the store made for an embedded server without DataDir,
	// removed on Close.
	tempDir string
	// authRequired is set when the embedded server accepts only the
	// identities whose seeds are under DataDir.
	authRequired bool
	// buckets are the key-value buckets this process opened (Replicas).
	bucketsMu sync.Mutex
	buckets   []string
	// closed is closed by conn's closed handler: conn is closed for good
	// and its drain, if any, is over.
	closed chan struct{}
}

// Open starts the embedded server (or connects to the cluster), then creates
// or updates the event stream. Close releases both.
func Open(ctx context.Context, cfg Config) (*Bus, error) {
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.MaxAge <= 0 {
		cfg.MaxAge = 24 * time.Hour
	}
	if cfg.MaxBytes <= 0 {
		cfg.MaxBytes = 1 << 30
	}
	if cfg.Replicas <= 0 {
		cfg.Replicas = 1
	}
	if cfg.Name == "" {
		host, _ := os.Hostname()
		cfg.Name = "ccevents-" + host
	}
	b := &Bus{cfg: cfg, log: cfg.Logger}
	m, err := newMetrics(cfg.Registerer, b)
	if err != nil {
		return nil, err
	}
	b.m = m
	if err := b.connect(ctx); err != nil {
		b.Close()
		return nil, err
	}
	if err := b.Await(ctx, "open the event stream "+StreamName, 0, b.unlessRefused(b.ensureStream)); err != nil {
		b.Close()
		return nil, err
	}
	b.replicated = b.stream.CachedInfo().Config.Replicas > 1
	return b, nil
}

// unlessRefused makes op's failure final when the server has refused this
// connection a permission: a request the identity may not send is never
// answered, so it would only ever time out.
func (b *Bus) unlessRefused(op func(context.Context) error) func(context.Context) error {
	return func(ctx context.Context) error {
		err := op(ctx)
		if err == nil {
			return nil
		}
		if denied := b.conn.LastError(); errors.Is(denied, nats.ErrPermissionViolation) {
			return fmt.Errorf("%v: %w (this NATS identity lacks a permission ccevents needs: docs/operations.md, NATS permissions per role)", err, denied)
		}
		return err
	}
}

// retryTransient runs op until it succeeds, fails with an error that
// waiting will not cure, or ctx ends. A cluster that has just formed
// answers "no suitable peers" or nothing at all until its JetStream meta
// leader is elected; that is worth waiting for, not worth exiting over.
// Each attempt has its own deadline: a request that reaches a server in the
// middle of an election may never be answered, and must not use up the
// whole wait on its own.
func retryTransient(ctx context.Context, op func(context.Context) error) error {
	return retryEach(ctx, attemptTimeout, op)
}

// retryEach is retryTransient with each attempt bounded by perAttempt.
func retryEach(ctx context.Context, perAttempt time.Duration, op func(context.Context) error) error {
	retry := backoff.New(100*time.Millisecond, 2*time.Second, backoff.NoJitter)
	for {
		attempt, cancel := context.WithTimeout(ctx, perAttempt)
		err := op(attempt)
		cancel()
		if err == nil || !transient(err) {
			return err
		}
		if retry.Wait(ctx) != nil {
			return fmt.Errorf("%w (gave up waiting for JetStream: %v)", err, ctx.Err())
		}
	}
}

// attemptTimeout bounds one JetStream API request while waiting for the
// cluster: long enough for a loaded R3 meta leader, short enough to retry.
const attemptTimeout = 5 * time.Second

// transient reports whether err is one that waiting cures: no server or
// no JetStream answered (yet), or JetStream answered with an API error code
// it gives while a cluster forms, elects a meta leader or brings a peer
// back. It decides by error values and JetStream error codes, never by
// error text, which servers may word differently from one version to the
// next.
func transient(err error) bool {
	if errors.Is(err, nats.ErrNoResponders) || errors.Is(err, nats.ErrTimeout) || errors.Is(err, context.DeadlineExceeded) ||
		errors.Is(err, jetstream.ErrNoStreamResponse) || errors.Is(err, jetstream.ErrJetStreamNotEnabled) || errors.Is(err, errNoLeaderYet) {
		return true
	}
	var api *jetstream.APIError
	if !errors.As(err, &api) {
		return false
	}
	switch server.ErrorIdentifier(api.ErrorCode) {
	case server.JSClusterNoPeersErrF, // "no suitable peers for placement": peers not (yet) known to the meta leader
		server.JSInsufficientResourcesErr, // the server hosting an R1 asset is restarting
		server.JSClusterNotAvailErr:       // "JetStream system temporarily unavailable": no meta leader
		return true
	}
	return false
}

func (b *Bus) connect(ctx context.Context) error {
	opts := []nats.Option{
		nats.Name(b.cfg.Name),
		nats.MaxReconnects(-1),
		nats.ReconnectWait(250 * time.Millisecond),
		nats.CustomInboxPrefix(InboxPrefix),
		nats.DisconnectErrHandler(func(_ *nats.Conn, err error) {
			if err != nil {
				b.m.disconnects.Inc()
				b.log.Warn("nats disconnected", "err", err)
			}
		}),
		nats.ReconnectHandler(func(c *nats.Conn) {
			b.m.reconnects.Inc()
			b.log.Info("nats reconnected", "url", c.ConnectedUrlRedacted())
			if err := checkServerVersion(c); err != nil {
				b.log.Error("reconnected to a NATS server that is too old; upgrade it", "err", err)
			}
		}),
		// Permission violations arrive here, not as errors of the call that
		// caused them: an operator must see which subject the identity lacks.
		nats.ErrorHandler(func(_ *nats.Conn, sub *nats.Subscription, err error) {
			if sub != nil {
				b.log.Warn("nats error", "err", err, "subscription", sub.Subject)
				return
			}
			b.log.Warn("nats error", "err", err)
		}),
	}
	opts = append(opts, b.cfg.ConnectOptions...)
	b.closed = make(chan struct{})
	opts = append(opts, signalClosed(b.closed))
	var url string
	if len(b.cfg.URLs) == 0 {
		if b.cfg.DataDir == "" {
			// Each process gets its own store: a shared fixed path would
			// make two embedded servers fight over one directory.
			dir, err := os.MkdirTemp("", "ccevents-")
			if err != nil {
				return fmt.Errorf("create a store directory for embedded nats: %w", err)
			}
			b.cfg.DataDir, b.tempDir = dir, dir
		}
		sopts, err := embeddedOptions(b.cfg)
		if err != nil {
			return err
		}
		if b.cfg.Listen != "" || b.cfg.WebsocketListen != "" {
			self, err := requireAuth(sopts, b.cfg.DataDir, b.log)
			if err != nil {
				return err
			}
			opts = append(opts, self)
			b.authRequired = true
		}
		ns, err := startEmbedded(sopts, b.cfg.Logger)
		if err != nil {
			return err
		}
		b.server = ns
		opts = append(opts, nats.InProcessServer(ns))
		b.log.Info("embedded nats started", "listen", b.cfg.Listen, "websocket", b.cfg.WebsocketListen, "auth", b.authRequired, "store", storeDir(b.cfg), "memory", b.cfg.Memory)
	} else {
		url = strings.Join(b.cfg.URLs, ",")
		opts = append(opts, nats.RetryOnFailedConnect(false))
	}
	var nc *nats.Conn
	var err error
	if b.server != nil {
		if nc, err = nats.Connect(url, opts...); err != nil {
			return fmt.Errorf("connect to the embedded nats: %w", err)
		}
	} else {
		if nc, err = b.dial(ctx, url, opts); err != nil {
			return err
		}
		if err := checkServerVersion(nc); err != nil {
			nc.Close()
			return err
		}
	}
	b.conn = nc
	js, err := jetstream.New(nc)
	if err != nil {
		return fmt.Errorf("open jetstream: %w", err)
	}
	b.js = js
	return nil
}

func storeDir(cfg Config) string {
	return filepath.Join(cfg.DataDir, "jetstream")
}

// embeddedOptions configures the embedded server; it does not start it.
func embeddedOptions(cfg Config) (*server.Options, error) {
	opts := &server.Options{
		ServerName: cfg.Name,
		JetStream:  true,
		StoreDir:   storeDir(cfg),
		DontListen: cfg.Listen == "",
		NoSigs:     true,
		// Events are small; the default 1 MiB payload limit is plenty and
		// keeps one bad producer from filling the stream.
		MaxPayload: 1 << 20,
	}
	if cfg.Listen != "" {
		host, port, err := splitHostPort(cfg.Listen)
		if err != nil {
			return nil, fmt.Errorf("nats listen address %q: %w", cfg.Listen, err)
		}
		opts.Host, opts.Port = host, port
		if err := checkFree(cfg.Listen, "--nats-listen"); err != nil {
			return nil, err
		}
	}
	if cfg.WebsocketListen != "" {
		host, port, err := splitHostPort(cfg.WebsocketListen)
		if err != nil {
			return nil, fmt.Errorf("nats websocket address %q: %w", cfg.WebsocketListen, err)
		}
		opts.Websocket = server.WebsocketOpts{Host: host, Port: port, NoTLS: true, Compression: false}
	}
	if cfg.Listen != "" || cfg.WebsocketListen != "" {
		opts.MaxConn = cfg.MaxClients
	}
	return opts, nil
}

// embeddedReadyTimeout bounds how long the embedded server may take to
// accept its first client; a server that cannot start says so sooner.
const embeddedReadyTimeout = 30 * time.Second

// startEmbedded starts the server and waits until it takes clients; its
// log goes to log, and a server that cannot start says why at once.
func startEmbedded(opts *server.Options, log *slog.Logger) (*server.Server, error) {
	ns, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("configure embedded nats: %w", err)
	}
	nl := newNATSLogger(log.With("component", "nats"))
	ns.SetLoggerV2(nl, false, false, false)
	go ns.Start()
	ready := make(chan bool, 1)
	go func() { ready <- ns.ReadyForConnections(embeddedReadyTimeout) }()
	select {
	case ok := <-ready:
		if ok {
			return ns, nil
		}
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats did not become ready within %s; its log (--log-level debug) says why", embeddedReadyTimeout)
	case why := <-nl.fatal:
		ns.Shutdown()
		return nil, fmt.Errorf("embedded nats cannot start: %s (store %s)", why, opts.StoreDir)
	}
}

// checkFree turns "address in use" into a sentence before nats-server
// would only log it and never become ready.
func checkFree(addr, what string) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("embedded nats cannot listen on %s (%s): %w; is another ccevents or nats-server running? choose another address or an empty one", addr, what, err)
	}
	return ln.Close()
}

func splitHostPort(addr string) (string, int, error) {
	host, p, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port < -1 || port > 65535 {
		return "", 0, fmt.Errorf("port %q is not a number between 0 and 65535", p)
	}
	if port == 0 {
		port = -1 // nats-server's "pick a free port"
	}
	return host, port, nil
}

func redact(urls []string) string {
	out := make([]string, len(urls))
	for i, u := range urls {
		if at := strings.LastIndex(u, "@"); at >= 0 {
			if s := strings.Index(u, "://"); s >= 0 && s < at {
				u = u[:s+3] + "***" + u[at:]
			}
		}
		out[i] = u
	}
	return strings.Join(out, ",")
}

func (b *Bus) storage() jetstream.StorageType {
	if b.cfg.Memory {
		return jetstream.MemoryStorage
	}
	return jetstream.FileStorage
}

func (b *Bus) ensureStream(ctx context.Context) error {
	cfg := jetstream.StreamConfig{
		Name:        StreamName,
		Description: "ccevents: recent history of every contact-center event",
		Subjects:    []string{StreamSubjects},
		Storage:     b.storage(),
		Retention:   jetstream.LimitsPolicy,
		Discard:     jetstream.DiscardOld,
		MaxAge:      b.cfg.MaxAge,
		MaxBytes:    b.cfg.MaxBytes,
		Replicas:    b.cfg.Replicas,
		// Publishers set Nats-Msg-Id to the event id, so a retried publish
		// is stored once.
		Duplicates: 2 * time.Minute,
		// Resumes read history with direct gets, which need no consumer
		// (history.go).
		AllowDirect: true,
	}
	existing, err := b.js.Stream(ctx, StreamName)
	if b.cfg.UseExistingStream {
		if err != nil {
			return fmt.Errorf("find stream %s (is ccevents serve running on this NATS?): %w", StreamName, err)
		}
		b.stream, b.epoch = existing, existing.CachedInfo().Config.Metadata[epochKey]
		return nil
	}
	if b.cfg.KeepStream && err == nil {
		b.stream, b.epoch = existing, existing.CachedInfo().Config.Metadata[epochKey]
		b.log.Info("event stream opened as it is", "epoch", b.epoch)
		return nil
	}
	switch {
	case errors.Is(err, jetstream.ErrStreamNotFound):
		b.epoch = newEpoch()
		cfg.Metadata = map[string]string{epochKey: b.epoch}
		s, err := b.js.CreateStream(ctx, cfg)
		if err != nil && errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
			// Another node created it between our lookup and create.
			return b.ensureStream(ctx)
		}
		if err != nil {
			return fmt.Errorf("create stream %s: %w", StreamName, err)
		}
		b.stream = s
		b.log.Info("event stream created", "epoch", b.epoch, "max_age", cfg.MaxAge, "max_bytes", cfg.MaxBytes, "replicas", cfg.Replicas)
		return nil
	case err != nil:
		return fmt.Errorf("look up stream %s: %w", StreamName, err)
	}
	info := existing.CachedInfo()
	b.epoch = info.Config.Metadata[epochKey]
	if b.epoch == "" {
		b.epoch = newEpoch()
	}
	cfg.Metadata = map[string]string{epochKey: b.epoch}
	// Storage type cannot change on a live stream; keep what it was made with.
	cfg.Storage = info.Config.Storage
	// One node started with a lower --replicas must not shrink the copies
	// every other node relies on.
	if info.Config.Replicas > cfg.Replicas {
		b.log.Warn("keeping the stream's replicas: --replicas is lower than what the stream has", "stream_replicas", info.Config.Replicas, "requested", cfg.Replicas)
		cfg.Replicas = info.Config.Replicas
	}
	s, err := b.js.UpdateStream(ctx, cfg)
	if err != nil {
		return fmt.Errorf("update stream %s retention: %w", StreamName, err)
	}
	b.stream = s
	b.log.Info("event stream opened", "epoch", b.epoch, "messages", info.State.Msgs, "first_seq", info.State.FirstSeq, "last_seq", info.State.LastSeq)
	return nil
}

func newEpoch() string {
	var buf [8]byte
	_, _ = rand.Read(buf[:])
	return hex.EncodeToString(buf[:])
}

// Epoch names this stream's history; it changes only when the stream is
// created anew, which invalidates every sequence handed out before.
func (b *Bus) Epoch() string { return b.epoch }

// Conn is the underlying NATS connection, for callers that need core NATS.
func (b *Bus) Conn() *nats.Conn { return b.conn }

// JetStream is the JetStream context of the connection.
func (b *Bus) JetStream() jetstream.JetStream { return b.js }

// Server is the embedded NATS server, or nil on an external cluster.
func (b *Bus) Server() *server.Server { return b.server }

// Connected reports whether the NATS connection is up.
func (b *Bus) Connected() bool { return b.conn != nil && b.conn.IsConnected() }

// Publish stores one event under subject and returns its stream sequence.
// msgID (the event id) makes a retried publish idempotent; empty skips that.
func (b *Bus) Publish(ctx context.Context, subject string, data []byte, msgID string) (uint64, error) {
	var opts []jetstream.PublishOpt
	if msgID != "" {
		opts = append(opts, jetstream.WithMsgID(msgID))
	}
	start := time.Now()
	ack, err := b.js.Publish(ctx, subject, data, opts...)
	if err != nil {
		b.m.failed.Observe(time.Since(start).Seconds())
		return 0, fmt.Errorf("publish %s: %w", subject, err)
	}
	b.m.stored.Observe(time.Since(start).Seconds())
	return ack.Sequence, nil
}

// Bounds are the first and last sequences the stream holds now.
type Bounds struct {
	First, Last uint64
}

// Bounds reads the stream's current first and last sequence.
func (b *Bus) Bounds(ctx context.Context) (Bounds, error) {
	info, err := b.stream.Info(ctx)
	if err != nil {
		return Bounds{}, fmt.Errorf("read stream %s state: %w", StreamName, err)
	}
	return Bounds{First: info.State.FirstSeq, Last: info.State.LastSeq}, nil
}

// KeyValueOption changes a bucket's settings from the bus's defaults.
type KeyValueOption func(*jetstream.KeyValueConfig)

// ExpireAfter makes the server remove each key ttl after its last write,
// and tell watchers when it does (a purge; nats-server 2.11 or later). It
// suits presence: a writer that stops rewriting its key (killed, cut off)
// is forgotten within ttl, judged by the server alone.
func ExpireAfter(ttl time.Duration) KeyValueOption {
	return func(c *jetstream.KeyValueConfig) {
		c.TTL = ttl
		// The marker a removal leaves must outlive a watcher's reconnect,
		// or the watcher never hears of the removal.
		c.LimitMarkerTTL = max(ttl, time.Minute)
	}
}

// kvConfig is bucket with the bus's storage and replica settings, one
// value per key, and opts applied.
func (b *Bus) kvConfig(bucket string, opts []KeyValueOption) jetstream.KeyValueConfig {
	c := jetstream.KeyValueConfig{Bucket: bucket, Storage: b.storage(), Replicas: b.cfg.Replicas, History: 1}
	for _, o := range opts {
		o(&c)
	}
	return c
}

// KeyValue opens (creating if needed) a key-value bucket with the bus's
// storage and replica settings and opts, applying them to an existing one.
func (b *Bus) KeyValue(ctx context.Context, bucket string, opts ...KeyValueOption) (jetstream.KeyValue, error) {
	return b.openBucket(ctx, bucket, func(ctx context.Context) (jetstream.KeyValue, error) {
		return b.js.CreateOrUpdateKeyValue(ctx, b.kvConfig(bucket, opts))
	})
}

// EnsureKeyValue opens a key-value bucket without changing its
// configuration, creating it with the bus's storage and replica settings
// and opts only if it does not exist: for processes whose NATS identity may
// use a bucket another role owns, but not reconfigure it.
func (b *Bus) EnsureKeyValue(ctx context.Context, bucket string, opts ...KeyValueOption) (jetstream.KeyValue, error) {
	return b.openBucket(ctx, bucket, func(ctx context.Context) (jetstream.KeyValue, error) {
		kv, err := b.js.KeyValue(ctx, bucket)
		if !errors.Is(err, jetstream.ErrBucketNotFound) {
			return kv, err
		}
		kv, err = b.js.CreateKeyValue(ctx, b.kvConfig(bucket, opts))
		if errors.Is(err, jetstream.ErrBucketExists) { // created meanwhile, maybe with other settings
			kv, err = b.js.KeyValue(ctx, bucket)
		}
		return kv, err
	})
}

// openBucket opens bucket with open, waiting while NATS is not ready, then
// waits until the bucket's stream has a leader, and notes the bucket as
// one this process uses.
func (b *Bus) openBucket(ctx context.Context, bucket string, open func(context.Context) (jetstream.KeyValue, error)) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := b.Await(ctx, "open key-value bucket "+bucket, 0, b.unlessRefused(func(ctx context.Context) error {
		var err error
		kv, err = open(ctx)
		return err
	}))
	if err != nil {
		return nil, err
	}
	if err := b.awaitLeader(ctx, "key-value bucket "+bucket, kv); err != nil {
		return nil, err
	}
	b.noteBucket(bucket)
	return kv, nil
}

// errNoLeaderYet is a replicated bucket whose copies have not elected a
// leader yet; transient.
var errNoLeaderYet = errors.New("its copies have not elected a leader yet")

// awaitLeader waits until kv's stream has a leader. A bucket a cluster has
// only just created takes no writes until its copies elect one: a write
// before that gets no response at all, which would fail a first start on
// a fresh cluster (the auth service stores its signing key at once).
func (b *Bus) awaitLeader(ctx context.Context, what string, kv jetstream.KeyValue) error {
	return b.Await(ctx, "wait for a leader of "+what, 0, func(ctx context.Context) error {
		st, err := kv.Status(ctx)
		if err != nil {
			return err
		}
		if s, ok := st.(*jetstream.KeyValueBucketStatus); ok {
			if c := s.StreamInfo().Cluster; c != nil && c.Leader == "" {
				return errNoLeaderYet
			}
		}
		return nil
	})
}

// SeedFile is the nkey seed file of identity on the embedded server, or ""
// when the server requires no credentials (it does not listen) or the bus
// is an external cluster.
func (b *Bus) SeedFile(identity string) string {
	if !b.authRequired {
		return ""
	}
	return SeedFile(b.cfg.DataDir, identity)
}

// closeTimeout bounds how long Close waits for the connection to drain:
// pending publishes flushed, messages already received handled.
const closeTimeout = 2 * time.Second

// Close drains the connection and stops the embedded server. It waits for
// the drain up to closeTimeout, then closes the connection as it is.
func (b *Bus) Close() {
	if b.conn != nil {
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		if err := b.conn.Drain(); err != nil {
			b.conn.Close() // closed already, or reconnecting: nothing to drain
		}
		select {
		case <-b.closed:
		case <-ctx.Done():
			b.log.Warn("nats connection did not drain in time; closing it", "timeout", closeTimeout)
			b.conn.Close()
		}
	}
	if b.server != nil {
		b.server.Shutdown()
		b.server.WaitForShutdown()
	}
	if b.tempDir != "" {
		_ = os.RemoveAll(b.tempDir)
	}
}

// signalClosed closes ch when the connection is closed for good, after
// any closed handler of the caller's own options has run.
func signalClosed(ch chan struct{}) nats.Option {
	return func(o *nats.Options) error {
		callers := o.ClosedCB
		signal := sync.OnceFunc(func() { close(ch) })
		o.ClosedCB = func(nc *nats.Conn) {
			if callers != nil {
				callers(nc)
			}
			signal()
		}
		return nil
	}
}
