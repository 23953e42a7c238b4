package engine

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/backoff"
	"github.com/ccevents/ccevents/internal/event"
)

// Service is what the engine does for callers, one account at a time:
// the commands and reads the REST API and the simulator use. *Engine
// serves the accounts it runs; *Router serves every account, handing each
// command to the engine node that owns the account.
type Service interface {
	CreateQueue(ctx context.Context, accountID string, cfg QueueConfig) (Queue, error)
	UpdateQueue(ctx context.Context, accountID, queueID string, cfg QueueConfig) (Queue, error)
	DeleteQueue(ctx context.Context, accountID, queueID string) error
	Queues(ctx context.Context, accountID string) ([]Queue, error)
	Queue(ctx context.Context, accountID, queueID string) (Queue, error)
	CreateRecipient(ctx context.Context, accountID string, cfg RecipientConfig) (Recipient, error)
	UpdateRecipient(ctx context.Context, accountID, recipientID string, cfg RecipientConfig) (Recipient, error)
	DeleteRecipient(ctx context.Context, accountID, recipientID string) error
	Recipients(ctx context.Context, accountID string) ([]Recipient, error)
	Recipient(ctx context.Context, accountID, recipientID string) (Recipient, error)
	SetStatus(ctx context.Context, accountID, recipientID string, req StatusRequest) (Recipient, error)
	Sync(ctx context.Context, accountID, recipientID string) error
	Arrive(ctx context.Context, accountID string, c Arrival) (Call, error)
	Hangup(ctx context.Context, accountID, sessionID string, by event.Party) error
	EndCall(ctx context.Context, accountID, sessionID string, end CallEnd) error
	Accept(ctx context.Context, accountID, sessionID, recipientID string) error
	Reject(ctx context.Context, accountID, sessionID, recipientID string, reason event.RejectReason) error
	Finalize(ctx context.Context, accountID, sessionID string, f Finalization) error
	StartExternalCall(ctx context.Context, accountID, recipientID string, x ExternalCall) (Call, error)
	EndExternalCall(ctx context.Context, accountID, recipientID string, by event.Party) error
	StartWiretap(ctx context.Context, accountID string, w Wiretap) error
	StopWiretap(ctx context.Context, accountID string, w Wiretap) error
	FailWiretap(ctx context.Context, accountID string, w Wiretap, reason event.WiretapFailReason) error
	Snapshot(ctx context.Context, accountID string) (Snapshot, error)
	Stats(ctx context.Context, accountID string) (StatsReport, error)
}

var (
	_ Service = (*Engine)(nil)
	_ Service = (*Router)(nil)
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
	Local *Engine
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
// between nodes. It has the method set of *Engine (Service) and answers
// with the same *Error values, so callers cannot tell where a command ran.
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

// route runs a command where its account runs: on the local engine when
// that runs it, otherwise on the owner over NATS. While no node runs the
// account (or the one asked no longer does) it tries again until the
// Router's Wait is over. Only refusals given before anything changed
// (Error.Moved) are tried again, so a command never runs twice.
func route[T any](ctx context.Context, r *Router, req request, body any, local func(context.Context, *Engine) (T, error)) (T, error) {
	start := time.Now()
	v, err := routeTo(ctx, r, req, body, local)
	r.m.done(req.Op, start, err)
	return v, err
}

func routeTo[T any](ctx context.Context, r *Router, req request, body any, local func(context.Context, *Engine) (T, error)) (T, error) {
	var zero T
	if !event.ValidAccountID(req.AccountID) {
		return zero, invalidf("account id must be 32 lowercase hex characters, got %q", short(req.AccountID))
	}
	deadline := time.Now().Add(r.cfg.Wait)
	retry := backoff.New(10*time.Millisecond, 500*time.Millisecond, backoff.NoJitter)
	for {
		var err error
		switch e := r.cfg.Local; {
		case e != nil && (r.cfg.Conn == nil || e.serves(req.AccountID)):
			var v T
			if v, err = local(ctx, e); !isMoved(err) || r.cfg.Conn == nil {
				return v, err
			}
		default:
			var v T
			v, err = remote[T](ctx, r, req, body)
			if errors.Is(err, errNoOwner) {
				r.register(ctx, req.AccountID)
			} else if !isMoved(err) {
				return v, err
			}
		}
		wait := retry.Next()
		if ctx.Err() != nil || time.Now().Add(wait).After(deadline) {
			return zero, movedf("no engine node runs account %s right now (it may be moving between nodes); try again in a few seconds", req.AccountID)
		}
		if backoff.Sleep(ctx, wait) != nil {
			return zero, ctx.Err()
		}
	}
}

// remote runs a command on the node that listens for its account.
func remote[T any](ctx context.Context, r *Router, req request, body any) (T, error) {
	var v T
	if body != nil {
		req.Body, _ = json.Marshal(body) // plain structs: cannot fail
	}
	req.TimeoutMS = r.cfg.Timeout.Milliseconds()
	// The node stops at Timeout; the margin lets its answer arrive.
	cctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout+2*time.Second)
	defer cancel()
	rep, err := roundTrip(cctx, r.cfg.Conn, req)
	switch {
	case errors.Is(err, errNoOwner):
		return v, err
	case err != nil && ctx.Err() != nil:
		return v, ctx.Err()
	case err != nil:
		r.log.Warn("forward engine command", "op", req.Op, "account", req.AccountID, "err", err)
		return v, errorf(KindUnavailable, "the engine node running account %s did not answer; check the account's state before trying again", req.AccountID)
	case rep.Error != nil:
		return v, &Error{Kind: rep.Error.Kind, Message: rep.Error.Message, Moved: rep.Error.Moved}
	}
	if len(rep.Result) > 0 {
		if err := json.Unmarshal(rep.Result, &v); err != nil {
			r.log.Warn("decode engine reply", "op", req.Op, "account", req.AccountID, "err", err)
			return v, errorf(KindUnavailable, "the engine node running account %s answered in a form this node cannot read; upgrade it", req.AccountID)
		}
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

type none struct{}

func void(err error) (none, error) { return none{}, err }

// CreateQueue creates a queue where the account runs; see Engine.CreateQueue.
func (r *Router) CreateQueue(ctx context.Context, accountID string, cfg QueueConfig) (Queue, error) {
	return route(ctx, r, request{Op: opCreateQueue, AccountID: accountID}, cfg, func(ctx context.Context, e *Engine) (Queue, error) {
		return e.CreateQueue(ctx, accountID, cfg)
	})
}

// UpdateQueue replaces a queue's settings; see Engine.UpdateQueue.
func (r *Router) UpdateQueue(ctx context.Context, accountID, queueID string, cfg QueueConfig) (Queue, error) {
	return route(ctx, r, request{Op: opUpdateQueue, AccountID: accountID, ID: queueID}, cfg, func(ctx context.Context, e *Engine) (Queue, error) {
		return e.UpdateQueue(ctx, accountID, queueID, cfg)
	})
}

// DeleteQueue stops and removes a queue; see Engine.DeleteQueue.
func (r *Router) DeleteQueue(ctx context.Context, accountID, queueID string) error {
	_, err := route(ctx, r, request{Op: opDeleteQueue, AccountID: accountID, ID: queueID}, nil, func(ctx context.Context, e *Engine) (none, error) {
		return void(e.DeleteQueue(ctx, accountID, queueID))
	})
	return err
}

// Queues lists the account's queues; see Engine.Queues.
func (r *Router) Queues(ctx context.Context, accountID string) ([]Queue, error) {
	return route(ctx, r, request{Op: opQueues, AccountID: accountID}, nil, func(ctx context.Context, e *Engine) ([]Queue, error) {
		return e.Queues(ctx, accountID)
	})
}

// Queue reports one queue; see Engine.Queue.
func (r *Router) Queue(ctx context.Context, accountID, queueID string) (Queue, error) {
	return route(ctx, r, request{Op: opQueue, AccountID: accountID, ID: queueID}, nil, func(ctx context.Context, e *Engine) (Queue, error) {
		return e.Queue(ctx, accountID, queueID)
	})
}

// CreateRecipient configures a recipient; see Engine.CreateRecipient.
func (r *Router) CreateRecipient(ctx context.Context, accountID string, cfg RecipientConfig) (Recipient, error) {
	return route(ctx, r, request{Op: opCreateRecipient, AccountID: accountID}, cfg, func(ctx context.Context, e *Engine) (Recipient, error) {
		return e.CreateRecipient(ctx, accountID, cfg)
	})
}

// UpdateRecipient replaces a recipient's name and queues; see
// Engine.UpdateRecipient.
func (r *Router) UpdateRecipient(ctx context.Context, accountID, recipientID string, cfg RecipientConfig) (Recipient, error) {
	return route(ctx, r, request{Op: opUpdateRecipient, AccountID: accountID, ID: recipientID}, cfg, func(ctx context.Context, e *Engine) (Recipient, error) {
		return e.UpdateRecipient(ctx, accountID, recipientID, cfg)
	})
}

// DeleteRecipient removes a recipient; see Engine.DeleteRecipient.
func (r *Router) DeleteRecipient(ctx context.Context, accountID, recipientID string) error {
	_, err := route(ctx, r, request{Op: opDeleteRecipient, AccountID: accountID, ID: recipientID}, nil, func(ctx context.Context, e *Engine) (none, error) {
		return void(e.DeleteRecipient(ctx, accountID, recipientID))
	})
	return err
}

// Recipients lists the account's recipients; see Engine.Recipients.
func (r *Router) Recipients(ctx context.Context, accountID string) ([]Recipient, error) {
	return route(ctx, r, request{Op: opRecipients, AccountID: accountID}, nil, func(ctx context.Context, e *Engine) ([]Recipient, error) {
		return e.Recipients(ctx, accountID)
	})
}

// Recipient reports one recipient; see Engine.Recipient.
func (r *Router) Recipient(ctx context.Context, accountID, recipientID string) (Recipient, error) {
	return route(ctx, r, request{Op: opRecipient, AccountID: accountID, ID: recipientID}, nil, func(ctx context.Context, e *Engine) (Recipient, error) {
		return e.Recipient(ctx, accountID, recipientID)
	})
}

// SetStatus applies a status action to a recipient; see Engine.SetStatus.
func (r *Router) SetStatus(ctx context.Context, accountID, recipientID string, req StatusRequest) (Recipient, error) {
	return route(ctx, r, request{Op: opSetStatus, AccountID: accountID, ID: recipientID}, req, func(ctx context.Context, e *Engine) (Recipient, error) {
		return e.SetStatus(ctx, accountID, recipientID, req)
	})
}

// Sync publishes a recipient.sync; see Engine.Sync.
func (r *Router) Sync(ctx context.Context, accountID, recipientID string) error {
	_, err := route(ctx, r, request{Op: opSync, AccountID: accountID, ID: recipientID}, nil, func(ctx context.Context, e *Engine) (none, error) {
		return void(e.Sync(ctx, accountID, recipientID))
	})
	return err
}

// Arrive reports a call arriving in a queue; see Engine.Arrive.
func (r *Router) Arrive(ctx context.Context, accountID string, c Arrival) (Call, error) {
	return route(ctx, r, request{Op: opArrive, AccountID: accountID}, c, func(ctx context.Context, e *Engine) (Call, error) {
		return e.Arrive(ctx, accountID, c)
	})
}

// Hangup reports that a call ended; see Engine.Hangup.
func (r *Router) Hangup(ctx context.Context, accountID, sessionID string, by event.Party) error {
	_, err := route(ctx, r, request{Op: opHangup, AccountID: accountID, ID: sessionID, Value: string(by)}, nil, func(ctx context.Context, e *Engine) (none, error) {
		return void(e.Hangup(ctx, accountID, sessionID, by))
	})
	return err
}

// Accept reports that a recipient answered a call; see Engine.Accept.
func (r *Router) Accept(ctx context.Context, accountID, sessionID, recipientID string) error {
	_, err := route(ctx, r, request{Op: opAccept, AccountID: accountID, ID: sessionID, Other: recipientID}, nil, func(ctx context.Context, e *Engine) (none, error) {
		return void(e.Accept(ctx, accountID, sessionID, recipientID))
	})
	return err
}

// Reject reports that a recipient turned a call down; see Engine.Reject.
func (r *Router) Reject(ctx context.Context, accountID, sessionID, recipientID string, reason event.RejectReason) error {
	_, err := route(ctx, r, request{Op: opReject, AccountID: accountID, ID: sessionID, Other: recipientID, Value: string(reason)}, nil, func(ctx context.Context, e *Engine) (none, error) {
		return void(e.Reject(ctx, accountID, sessionID, recipientID, reason))
	})
	return err
}

// Finalize closes a call's disposition window; see Engine.Finalize.
func (r *Router) Finalize(ctx context.Context, accountID, sessionID string, f Finalization) error {
	_, err := route(ctx, r, request{Op: opFinalize, AccountID: accountID, ID: sessionID}, f, func(ctx context.Context, e *Engine) (none, error) {
		return void(e.Finalize(ctx, accountID, sessionID, f))
	})
	return err
}

// StartExternalCall reports a recipient's call that did not come from a
// queue; see Engine.StartExternalCall.
func (r *Router) StartExternalCall(ctx context.Context, accountID, recipientID string, x ExternalCall) (Call, error) {
	return route(ctx, r, request{Op: opStartExternalCall, AccountID: accountID, ID: recipientID}, x, func(ctx context.Context, e *Engine) (Call, error) {
		return e.StartExternalCall(ctx, accountID, recipientID, x)
	})
}

// EndExternalCall reports that an external call ended; see
// Engine.EndExternalCall.
func (r *Router) EndExternalCall(ctx context.Context, accountID, recipientID string, by event.Party) error {
	_, err := route(ctx, r, request{Op: opEndExternalCall, AccountID: accountID, ID: recipientID, Value: string(by)}, nil, func(ctx context.Context, e *Engine) (none, error) {
		return void(e.EndExternalCall(ctx, accountID, recipientID, by))
	})
	return err
}

// StartWiretap lets a supervisor monitor a call; see Engine.StartWiretap.
func (r *Router) StartWiretap(ctx context.Context, accountID string, w Wiretap) error {
	_, err := route(ctx, r, request{Op: opStartWiretap, AccountID: accountID}, w, func(ctx context.Context, e *Engine) (none, error) {
		return void(e.StartWiretap(ctx, accountID, w))
	})
	return err
}

// StopWiretap ends a supervisor's monitoring; see Engine.StopWiretap.
func (r *Router) StopWiretap(ctx context.Context, accountID string, w Wiretap) error {
	_, err := route(ctx, r, request{Op: opStopWiretap, AccountID: accountID}, w, func(ctx context.Context, e *Engine) (none, error) {
		return void(e.StopWiretap(ctx, accountID, w))
	})
	return err
}

// Snapshot returns the account's state and the stream sequence it is
// consistent with; see Engine.Snapshot.
func (r *Router) Snapshot(ctx context.Context, accountID string) (Snapshot, error) {
	return route(ctx, r, request{Op: opSnapshot, AccountID: accountID}, nil, func(ctx context.Context, e *Engine) (Snapshot, error) {
		return e.Snapshot(ctx, accountID)
	})
}

// Stats returns the account's statistics and the stream sequence they are
// consistent with; see Engine.Stats.
func (r *Router) Stats(ctx context.Context, accountID string) (StatsReport, error) {
	return route(ctx, r, request{Op: opStats, AccountID: accountID}, nil, func(ctx context.Context, e *Engine) (StatsReport, error) {
		return e.Stats(ctx, accountID)
	})
}
