package cluster

import (
	"context"
	crand "crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/lease"
)

// DefaultHandoverTimeout bounds how long a node giving an account away
// (rebalancing, shutdown) may spend publishing what stopping it produces.
const DefaultHandoverTimeout = 5 * time.Second

// NodeConfig wires a Node.
type NodeConfig struct {
	// Engine configures the node's engine. With Leases, Manual is forced
	// and Engine.KV is required.
	Engine engine.Config
	// Conn answers commands that Routers on other processes forward, and
	// carries this node's Router's. Required.
	Conn *nats.Conn
	// Leases is the lease bucket (lease.Bucket, opened with
	// bus.KeyValue). With it the node splits accounts with the other
	// nodes of the cluster: it runs the accounts it holds a lease on,
	// takes over those of nodes that die, and gives its share back on
	// Close. Without it the node runs standalone: every account, at once,
	// with no leases; there must be no other engine on the bus.
	Leases jetstream.KeyValue
	// NodeID names this node in leases and logs; empty is the host name
	// and a random suffix, unique to this process.
	NodeID string
	// LeaseTTL is how long an account stays with a node that stopped
	// renewing (a crash); others take it over after 5/4 of it. Zero is
	// lease.DefaultTTL.
	LeaseTTL time.Duration
	// Interval between balancing rounds, which also bounds how long a new
	// account waits for an owner; zero is the smaller of a second and a
	// third of the TTL.
	Interval time.Duration
	// HandoverTimeout is DefaultHandoverTimeout when zero.
	HandoverTimeout time.Duration
	// Logger receives the node's logs; nil discards them. Engine.Logger,
	// when nil, gets this one.
	Logger *slog.Logger
	// Registerer receives the node's metrics: its commands, leases and,
	// unless Engine.Registerer is set, the engine's; nil keeps them in a
	// registry of their own.
	Registerer prometheus.Registerer
	// MaxReplyPart is the largest message a reply is sent in, in bytes;
	// longer replies go in parts. Zero is the server's max_payload less
	// 1 KiB. Tests set it small to exercise replies in parts.
	MaxReplyPart int
}

// Node runs an engine as one process of ccevents: it answers commands
// forwarded by Routers of other processes and, on a cluster, owns its
// share of the accounts through leases (see the package doc).
type Node struct {
	cfg    NodeConfig
	log    *slog.Logger
	e      *engine.Engine
	router *Router
	resp   *responder
	dir    *directory // nil standalone
	bal    *lease.Balancer

	stopBalancing context.CancelFunc
	balanced      chan struct{} // closed when balancing has stopped
	stopAnswering context.CancelFunc

	mu   sync.Mutex
	subs map[string]*nats.Subscription // account (or "*") -> its command subscription
}

// StartNode starts a node: standalone, it loads every stored account and
// answers for all; on a cluster it starts claiming its share. ctx bounds
// the start only.
func StartNode(ctx context.Context, cfg NodeConfig) (*Node, error) {
	if cfg.Conn == nil {
		return nil, errors.New("engine: NodeConfig.Conn is required")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Engine.Logger == nil {
		cfg.Engine.Logger = cfg.Logger
	}
	if cfg.Engine.Registerer == nil {
		cfg.Engine.Registerer = cfg.Registerer
	}
	if cfg.HandoverTimeout <= 0 {
		cfg.HandoverTimeout = DefaultHandoverTimeout
	}
	if cfg.NodeID == "" {
		cfg.NodeID = defaultNodeID()
	}
	clustered := cfg.Leases != nil
	if clustered && cfg.Engine.KV == nil {
		return nil, errors.New("engine: a clustered node needs Engine.KV (the engine bucket)")
	}
	cfg.Engine.Manual = clustered
	e, err := engine.New(ctx, cfg.Engine)
	if err != nil {
		return nil, err
	}
	answerCtx, stopAnswering := context.WithCancel(context.Background())
	n := &Node{
		cfg:           cfg,
		log:           cfg.Logger.With("node", cfg.NodeID),
		e:             e,
		resp:          newResponder(answerCtx, e, cfg.Conn, cfg.Logger, cfg.MaxReplyPart),
		stopAnswering: stopAnswering,
		subs:          make(map[string]*nats.Subscription),
		balanced:      make(chan struct{}),
	}
	fail := func(err error) (*Node, error) {
		n.stopAnswering()
		_ = e.Close(context.WithoutCancel(ctx))
		return nil, err
	}
	n.router, err = NewRouter(RouterConfig{Local: e, Conn: cfg.Conn, KV: cfg.Engine.KV, Logger: cfg.Logger, Registerer: cfg.Registerer})
	if err != nil {
		return fail(err)
	}
	if !clustered {
		sub, err := n.resp.listen(CommandSubject("*"))
		if err != nil {
			return fail(err)
		}
		n.subs["*"] = sub
		close(n.balanced)
		n.stopBalancing = func() {}
		return n, nil
	}
	if err := n.startBalancing(ctx); err != nil {
		return fail(err)
	}
	return n, nil
}

func (n *Node) startBalancing(ctx context.Context) error {
	m, err := lease.New(n.cfg.Leases, lease.Config{Owner: n.cfg.NodeID, TTL: n.cfg.LeaseTTL, Logger: n.log, Registerer: n.cfg.Registerer})
	if err != nil {
		return fmt.Errorf("engine node: %w", err)
	}
	interval := n.cfg.Interval
	if interval <= 0 {
		interval = min(time.Second, m.TTL()/3)
	}
	runCtx, stop := context.WithCancel(context.Background())
	n.dir = newDirectory(n.cfg.Engine.KV, n.log)
	go n.dir.run(runCtx)
	if err := n.adoptStored(ctx); err != nil {
		stop()
		return err
	}
	n.bal, err = lease.NewBalancer(m, lease.BalancerConfig{
		Accounts:   n.dir.list,
		OnAcquired: n.acquired,
		OnLost:     n.lost,
		Interval:   interval,
	})
	if err != nil {
		stop()
		return fmt.Errorf("engine node: %w", err)
	}
	n.stopBalancing = stop
	go func() {
		defer close(n.balanced)
		_ = n.bal.Run(runCtx)
	}()
	n.log.Info("engine node balancing accounts", "ttl", m.TTL(), "interval", interval)
	return nil
}

// adoptStored registers accounts stored before the registry existed (an
// engine that ran standalone), so they get an owner too.
func (n *Node) adoptStored(ctx context.Context) error {
	stored, err := n.e.StoredAccounts(ctx)
	if err != nil {
		return fmt.Errorf("engine node: %w", err)
	}
	known, err := n.dir.list(ctx)
	if err != nil {
		return fmt.Errorf("engine node: %w", err)
	}
	for _, id := range stored {
		if _, found := slices.BinarySearch(known, id); found {
			continue
		}
		if err := registerAccount(ctx, n.cfg.Engine.KV, id); err != nil {
			return fmt.Errorf("engine node: %w", err)
		}
	}
	return nil
}

// acquired starts running an account this node now holds the lease of.
func (n *Node) acquired(owned context.Context, accountID string) error {
	if err := n.e.Own(owned, accountID); err != nil {
		return err
	}
	sub, err := n.resp.listen(CommandSubject(accountID))
	if err != nil {
		return err // the balancer gives the account back: lost follows
	}
	n.mu.Lock()
	n.subs[accountID] = sub
	n.mu.Unlock()
	return nil
}

// lost stops running an account: cleanly when this node gives it away
// (owned still live), at once and silently when the lease was lost.
func (n *Node) lost(owned context.Context, accountID string) {
	n.mu.Lock()
	sub := n.subs[accountID]
	delete(n.subs, accountID)
	n.mu.Unlock()
	if sub != nil {
		_ = sub.Unsubscribe()
	}
	if owned.Err() != nil {
		n.e.Drop(accountID)
		return
	}
	ctx, cancel := context.WithTimeout(owned, n.cfg.HandoverTimeout)
	defer cancel()
	if err := n.e.UnloadAccount(ctx, accountID); err != nil {
		n.log.Warn("account given away before everything its shutdown produced was published", "account", accountID, "err", err)
	}
}

// Engine is the node's engine. Call it only for the accounts it runs; use
// Router for any account.
func (n *Node) Engine() *engine.Engine { return n.e }

// Router serves every account's commands from this node: its own accounts
// directly, others on the node that owns them.
func (n *Node) Router() *Router { return n.router }

// ID is the node's name in leases and logs.
func (n *Node) ID() string { return n.cfg.NodeID }

// Owned lists the accounts this node runs now, sorted.
func (n *Node) Owned() []string {
	if n.bal == nil {
		return n.e.Accounts()
	}
	return n.bal.Owned()
}

// Close gives every account back: it stops them cleanly (see
// Engine.UnloadAccount) and releases their leases, so other nodes take
// them over at once, then stops answering commands and closes the engine.
// ctx bounds the engine's close; each hand-over is bounded by
// HandoverTimeout.
func (n *Node) Close(ctx context.Context) error {
	n.stopBalancing()
	select {
	case <-n.balanced:
	case <-ctx.Done():
	}
	n.mu.Lock()
	for id, sub := range n.subs {
		_ = sub.Unsubscribe()
		delete(n.subs, id)
	}
	n.mu.Unlock()
	err := n.e.Close(ctx)
	n.stopAnswering()
	n.resp.wait()
	return err
}

var notNodeID = regexp.MustCompile(`[^-_=/A-Za-z0-9]+`)

// defaultNodeID is the host name plus a random suffix: two processes on a
// host, or a restarted one, never share an id.
func defaultNodeID() string {
	host, _ := os.Hostname()
	host = strings.Trim(notNodeID.ReplaceAllString(host, "-"), "-")
	if host == "" {
		host = "engine"
	}
	var b [3]byte
	_, _ = crand.Read(b[:])
	return host + "-" + hex.EncodeToString(b[:])
}
