package cluster

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/backoff"
	"github.com/ccevents/ccevents/internal/engine"
)

// Defaults of RouterConfig.
const (
	// DefaultRouteWait is how long a command waits for its account to get
	// an owner (a new account being claimed, or a dead owner's accounts
	// being taken over) before it is refused with Error.Moved.
	DefaultRouteWait = 5 * time.Second
	// DefaultCommandTimeout bounds one command forwarded to another node.
	DefaultCommandTimeout = 15 * time.Second
)

// RouterConfig wires a Router. Local or Conn is required.
type RouterConfig struct {
	// Local is this process's engine, if it runs one: commands for the
	// accounts it runs are called on it directly.
	Local *engine.Engine
	// Conn carries commands to the engine node that runs the account
	// (NATS request/reply on CommandSubject); nil uses Local only.
	Conn *nats.Conn
	// KV is the engine bucket (Bucket). A command for an account no engine
	// node runs registers the account there, so a Node claims it; nil
	// leaves that to others.
	KV jetstream.KeyValue
	// Wait is how long a command waits for its account to get an owner;
	// zero is DefaultRouteWait.
	Wait time.Duration
	// Timeout bounds one forwarded command; zero is DefaultCommandTimeout.
	Timeout time.Duration
	// Logger receives routing problems; nil discards them.
	Logger *slog.Logger
	// Registerer receives the command metrics (metrics.go); nil keeps
	// them in a registry of their own.
	Registerer prometheus.Registerer
}

// Router serves every account's commands from any process: it calls the
// local engine for the accounts that run there and forwards the others to
// the engine node that owns them, waiting a little while an account moves
// between nodes. It is an engine.Service, as *engine.Engine is, and
// answers with the same *engine.Error values, so callers cannot tell
// where a command ran.
type Router struct {
	cfg        RouterConfig
	log        *slog.Logger
	m          *routerMetrics
	registered sync.Map // account id -> struct{}: known to the registry
}

// NewRouter returns a Router.
func NewRouter(cfg RouterConfig) (*Router, error) {
	if cfg.Local == nil && cfg.Conn == nil {
		return nil, errors.New("engine: a Router needs a local engine or a NATS connection")
	}
	if cfg.Wait <= 0 {
		cfg.Wait = DefaultRouteWait
	}
	if cfg.Timeout <= 0 {
		cfg.Timeout = DefaultCommandTimeout
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	m, err := newRouterMetrics(cfg.Registerer)
	if err != nil {
		return nil, err
	}
	return &Router{cfg: cfg, log: cfg.Logger, m: m}, nil
}

var _ engine.Service = (*Router)(nil)

// Serve runs a command where its account runs: on the local engine when
// that runs it, otherwise on the owner over NATS. While no node runs the
// account (or the one asked no longer does) it tries again until the
// Router's Wait is over. Only refusals given before anything changed
// (engine.Error.Moved) are tried again, so a command never runs twice.
func (r *Router) Serve(ctx context.Context, accountID string, cmd engine.AnyCommand, args any) (any, error) {
	start := time.Now()
	v, err := r.route(ctx, accountID, cmd, args)
	r.m.done(cmd.Name(), start, err)
	return v, err
}

func (r *Router) route(ctx context.Context, accountID string, cmd engine.AnyCommand, args any) (any, error) {
	if err := engine.CheckAccountID(accountID); err != nil {
		return nil, err
	}
	deadline := time.Now().Add(r.cfg.Wait)
	retry := backoff.New(10*time.Millisecond, 500*time.Millisecond, backoff.NoJitter)
	for {
		var v any
		var err error
		switch e := r.cfg.Local; {
		case e != nil && (r.cfg.Conn == nil || e.Serves(accountID)):
			if v, err = e.Serve(ctx, accountID, cmd, args); !engine.IsMoved(err) || r.cfg.Conn == nil {
				return v, err
			}
		default:
			v, err = r.remote(ctx, accountID, cmd, args)
			if errors.Is(err, errNoOwner) {
				r.register(ctx, accountID)
			} else if !engine.IsMoved(err) {
				return v, err
			}
		}
		wait := retry.Next()
		if ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return nil, moved("no engine node runs account %s right now (it may be moving between nodes); try again in a few seconds", accountID)
		}
		if backoff.Sleep(ctx, wait) != nil {
			return nil, ctx.Err()
		}
	}
}

// remote runs a command on the node that listens for its account.
func (r *Router) remote(ctx context.Context, accountID string, cmd engine.AnyCommand, args any) (any, error) {
	slots, body, err := cmd.EncodeArgs(args)
	if err != nil {
		return nil, err
	}
	req := request{Op: cmd.Name(), AccountID: accountID, ID: slots.ID, Other: slots.Other, Value: slots.Value, Body: body, TimeoutMS: r.cfg.Timeout.Milliseconds()}
	// The node stops at Timeout; the margin lets its answer arrive.
	cctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout+2*time.Second)
	defer cancel()
	rep, err := roundTrip(cctx, r.cfg.Conn, req)
	switch {
	case errors.Is(err, errNoOwner):
		return nil, err
	case err != nil && ctx.Err() != nil:
		return nil, ctx.Err()
	case err != nil:
		r.log.Warn("forward engine command", "op", req.Op, "account", accountID, "err", err)
		return nil, unavailable("the engine node running account %s did not answer; check the account's state before trying again", accountID)
	case rep.Error != nil:
		return nil, &engine.Error{Kind: rep.Error.Kind, Message: rep.Error.Message, Moved: rep.Error.Moved}
	}
	v, err := cmd.DecodeReply(args, rep.Result)
	if err != nil {
		r.log.Warn("decode engine reply", "op", req.Op, "account", accountID, "err", err)
		return nil, unavailable("the engine node running account %s answered in a form this node cannot read; upgrade it", accountID)
	}
	return v, nil
}

// register records an account in the registry so a Node claims it.
func (r *Router) register(ctx context.Context, accountID string) {
	if r.cfg.KV == nil {
		return
	}
	if _, ok := r.registered.Load(accountID); ok {
		return
	}
	if err := registerAccount(ctx, r.cfg.KV, accountID); err != nil {
		r.log.Warn("register account for the engine nodes", "account", accountID, "err", err)
		return
	}
	r.registered.Store(accountID, struct{}{})
}

// moved refuses a command no engine node ran: nothing was changed, so it
// may be sent again (engine.Error.Moved).
func moved(format string, args ...any) error {
	return &engine.Error{Kind: engine.KindUnavailable, Message: fmt.Sprintf(format, args...), Moved: true}
}

// unavailable refuses a command the engine node running the account may
// or may not have run.
func unavailable(format string, args ...any) error {
	return &engine.Error{Kind: engine.KindUnavailable, Message: fmt.Sprintf(format, args...)}
}
