package main

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/engine/cluster"
	"github.com/ccevents/ccevents/internal/lease"
	"github.com/ccevents/ccevents/internal/promutil"
)

// startEngineNode starts this process's engine role. On the embedded NATS
// server it is the only engine: it runs every account at once, with no
// leases, exactly as one process always has. On an external cluster
// (--nats) it is one of any number of engine nodes that split the
// accounts through leases in the lease bucket and take over a dead
// node's accounts. Either way node.Router() serves every account's
// commands; node.Close gives its accounts back.
func startEngineNode(ctx context.Context, b *bus.Bus, cfg serveConfig, log *slog.Logger, reg prometheus.Registerer) (*cluster.Node, error) {
	kv, err := b.KeyValue(ctx, engine.Bucket)
	if err != nil {
		return nil, err
	}
	if cfg.StatsInterval == 0 {
		cfg.StatsInterval = -1 // --stats-interval 0: none
	}
	nc := cluster.NodeConfig{
		Engine:     engine.Config{Publisher: b, KV: kv, SyncInterval: cfg.SyncInterval, StatsInterval: cfg.StatsInterval},
		Conn:       b.Conn(),
		Logger:     log.With("component", "engine"),
		Registerer: reg,
	}
	if len(cfg.NATS) > 0 {
		if nc.Leases, err = b.KeyValue(ctx, lease.Bucket); err != nil {
			return nil, err
		}
	}
	node, err := cluster.StartNode(ctx, nc)
	if err != nil {
		return nil, fmt.Errorf("start the engine: %w", err)
	}
	return node, nil
}

// accountsOwned is ccevents_engine_accounts_owned for this process's
// engine node.
func accountsOwned(node *cluster.Node) prometheus.Collector {
	return promutil.GaugeFunc("ccevents_engine_accounts_owned",
		"Accounts this engine node runs now (on a cluster, those it holds the lease of).",
		func() float64 { return float64(len(node.Owned())) })
}

// newEngineRouter serves the engine's commands in a process without the
// engine role (an API node): each goes to the engine node that runs its
// account.
func newEngineRouter(ctx context.Context, b *bus.Bus, log *slog.Logger, reg prometheus.Registerer) (*cluster.Router, error) {
	// The engine role owns the bucket's settings; a router only uses it.
	kv, err := b.EnsureKeyValue(ctx, engine.Bucket)
	if err != nil {
		return nil, err
	}
	return cluster.NewRouter(cluster.RouterConfig{Conn: b.Conn(), KV: kv, Logger: log.With("component", "engine-router"), Registerer: reg})
}

// engineSnapshots serves the gateway's subscribe with snapshot: true from
// the engine, wherever the account runs.
type engineSnapshots struct{ svc engine.Service }

func (e engineSnapshots) Snapshot(ctx context.Context, account string) (json.RawMessage, uint64, string, error) {
	snap, err := engine.GetSnapshot.Call(ctx, e.svc, account, engine.None{})
	if err != nil {
		return nil, 0, "", err
	}
	state, err := json.Marshal(snap)
	if err != nil {
		return nil, 0, "", fmt.Errorf("encode snapshot of account %s: %w", account, err)
	}
	return state, snap.Sequence, snap.Epoch, nil
}
