package engine

import (
	"context"

	"github.com/ccevents/ccevents/internal/event"
)

// Service is what the engine does for callers, one account at a time:
// the commands and reads the REST API and the simulator use. *Engine
// serves the accounts it runs; cluster.Router serves every account, handing each
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

var _ Service = (*Engine)(nil)
