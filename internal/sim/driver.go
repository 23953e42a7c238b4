package sim

import (
	"context"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
)

// Driver is what the simulation needs from the engine. *engine.Engine is
// one (in-process); RESTDriver is another (over the REST API). Errors are
// *engine.Error values so the simulation can tell an expected refusal (a
// call that ended meanwhile) from a real failure.
type Driver interface {
	CreateQueue(ctx context.Context, accountID string, cfg engine.QueueConfig) (engine.Queue, error)
	DeleteQueue(ctx context.Context, accountID, queueID string) error
	CreateRecipient(ctx context.Context, accountID string, cfg engine.RecipientConfig) (engine.Recipient, error)
	UpdateRecipient(ctx context.Context, accountID, recipientID string, cfg engine.RecipientConfig) (engine.Recipient, error)
	SetStatus(ctx context.Context, accountID, recipientID string, req engine.StatusRequest) (engine.Recipient, error)
	Sync(ctx context.Context, accountID, recipientID string) error
	Arrive(ctx context.Context, accountID string, c engine.Arrival) (engine.Call, error)
	Hangup(ctx context.Context, accountID, sessionID string, by event.Party) error
	Accept(ctx context.Context, accountID, sessionID, recipientID string) error
	Reject(ctx context.Context, accountID, sessionID, recipientID string, reason event.RejectReason) error
	Finalize(ctx context.Context, accountID, sessionID string, f engine.Finalization) error
	StartExternalCall(ctx context.Context, accountID, recipientID string, x engine.ExternalCall) (engine.Call, error)
	EndExternalCall(ctx context.Context, accountID, recipientID string, by event.Party) error
	StartWiretap(ctx context.Context, accountID string, w engine.Wiretap) error
	StopWiretap(ctx context.Context, accountID string, w engine.Wiretap) error
	Snapshot(ctx context.Context, accountID string) (engine.Snapshot, error)
}

var _ Driver = (*engine.Engine)(nil)
