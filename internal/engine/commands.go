package engine

import (
	"context"

	"github.com/ccevents/ccevents/internal/event"
)

// Every command the engine serves, declared once (see Command): its name
// between engine nodes and in the metrics, its REST route, and the Engine
// method it runs. A new command is a method on Engine and a declaration
// here (declare, or declareVoid when its reply is built from its request);
// package cluster forwards it, package api serves its route and
// sim.RESTDriver calls it with no change of theirs. Names are what engine
// nodes send each other: never rename one.
var (
	// CreateQueue creates a queue and starts it: queue.create.
	CreateQueue = declare("create_queue", &Route{Method: "PUT", Path: "/queues", Created: true},
		(*Engine).CreateQueue)
	// UpdateQueue replaces a queue's settings.
	UpdateQueue = declare("update_queue", &Route{Method: "POST", Path: "/queues/{QUEUE_ID}"},
		func(e *Engine, ctx context.Context, acc string, r UpdateQueueRequest) (Queue, error) {
			return e.UpdateQueue(ctx, acc, r.QueueID, r.QueueConfig)
		})
	// DeleteQueue stops and removes a queue.
	DeleteQueue = declareVoid("delete_queue", &Route{Method: "DELETE", Path: "/queues/{QUEUE_ID}"},
		func(e *Engine, ctx context.Context, acc string, r QueueRef) error {
			return e.DeleteQueue(ctx, acc, r.QueueID)
		},
		func(r QueueRef) Deleted { return Deleted{ID: r.QueueID} })
	// ListQueues lists the account's queues.
	ListQueues = declare("queues", &Route{Method: "GET", Path: "/queues"},
		func(e *Engine, ctx context.Context, acc string, _ None) ([]Queue, error) {
			return e.Queues(ctx, acc)
		})
	// GetQueue reports one queue with its waiting callers.
	GetQueue = declare("queue", &Route{Method: "GET", Path: "/queues/{QUEUE_ID}"},
		func(e *Engine, ctx context.Context, acc string, r QueueRef) (Queue, error) {
			return e.Queue(ctx, acc, r.QueueID)
		})

	// CreateRecipient configures a recipient, logged out.
	CreateRecipient = declare("create_recipient", &Route{Method: "PUT", Path: "/recipients", Created: true},
		(*Engine).CreateRecipient)
	// UpdateRecipient replaces a recipient's name and queues.
	UpdateRecipient = declare("update_recipient", &Route{Method: "POST", Path: "/recipients/{RECIPIENT_ID}"},
		func(e *Engine, ctx context.Context, acc string, r UpdateRecipientRequest) (Recipient, error) {
			return e.UpdateRecipient(ctx, acc, r.RecipientID, r.RecipientConfig)
		})
	// DeleteRecipient removes a recipient, logging them out first.
	DeleteRecipient = declareVoid("delete_recipient", &Route{Method: "DELETE", Path: "/recipients/{RECIPIENT_ID}"},
		func(e *Engine, ctx context.Context, acc string, r RecipientRef) error {
			return e.DeleteRecipient(ctx, acc, r.RecipientID)
		},
		func(r RecipientRef) Deleted { return Deleted{ID: r.RecipientID} })
	// ListRecipients lists the account's recipients.
	ListRecipients = declare("recipients", &Route{Method: "GET", Path: "/recipients"},
		func(e *Engine, ctx context.Context, acc string, _ None) ([]Recipient, error) {
			return e.Recipients(ctx, acc)
		})
	// GetRecipient reports one recipient.
	GetRecipient = declare("recipient", &Route{Method: "GET", Path: "/recipients/{RECIPIENT_ID}"},
		func(e *Engine, ctx context.Context, acc string, r RecipientRef) (Recipient, error) {
			return e.Recipient(ctx, acc, r.RecipientID)
		})
	// SetStatus applies a status action (login, logout, ready, away,
	// pause, resume) and reports the recipient.
	SetStatus = declare("set_status", &Route{Method: "POST", Path: "/recipients/{RECIPIENT_ID}/status"},
		func(e *Engine, ctx context.Context, acc string, r SetStatusRequest) (Recipient, error) {
			return e.SetStatus(ctx, acc, r.RecipientID, r.StatusRequest)
		})
	// Sync publishes a recipient.sync now; its route then reports the
	// recipient.
	Sync = declareVoid("sync", &Route{Method: "POST", Path: "/recipients/{RECIPIENT_ID}/sync", Then: GetRecipient},
		func(e *Engine, ctx context.Context, acc string, r RecipientRef) error {
			return e.Sync(ctx, acc, r.RecipientID)
		}, none)
	// StartExternalCall reports a recipient's call that did not come from
	// a queue.
	StartExternalCall = declare("start_external_call", &Route{Method: "POST", Path: "/recipients/{RECIPIENT_ID}/external_call", Action: "start", Created: true},
		func(e *Engine, ctx context.Context, acc string, r ExternalCallRequest) (Call, error) {
			return e.StartExternalCall(ctx, acc, r.RecipientID, r.ExternalCall)
		})
	// EndExternalCall reports that a recipient's external call ended.
	EndExternalCall = declareVoid("end_external_call", &Route{Method: "POST", Path: "/recipients/{RECIPIENT_ID}/external_call", Action: "end"},
		func(e *Engine, ctx context.Context, acc string, r ExternalCallRequest) error {
			return e.EndExternalCall(ctx, acc, r.RecipientID, r.HangupBy)
		},
		func(r ExternalCallRequest) ExternalCallStatus {
			return ExternalCallStatus{RecipientID: r.RecipientID, State: CallEnded}
		})

	// Arrive reports a call arriving in a queue.
	Arrive = declare("arrive", &Route{Method: "POST", Path: "/calls", Created: true},
		(*Engine).Arrive)
	// Hangup reports that a call ended (EndCall without a cause).
	Hangup = declareVoid("hangup", nil,
		func(e *Engine, ctx context.Context, acc string, r HangupRequest) error {
			return e.Hangup(ctx, acc, r.SessionID, r.HangupBy)
		}, none)
	// EndCall reports that a call ended, with the cause the telephony saw.
	EndCall = declareVoid("end_call", &Route{Method: "POST", Path: "/calls/{SESSION_ID}/hangup", OptionalBody: true},
		func(e *Engine, ctx context.Context, acc string, r EndCallRequest) error {
			return e.EndCall(ctx, acc, r.SessionID, r.CallEnd)
		},
		func(r EndCallRequest) CallStatus { return CallStatus{SessionID: r.SessionID} })
	// Accept reports that the ringing recipient answered.
	Accept = declareVoid("accept", &Route{Method: "POST", Path: "/calls/{SESSION_ID}/accept", OptionalBody: true},
		func(e *Engine, ctx context.Context, acc string, r AcceptRequest) error {
			return e.Accept(ctx, acc, r.SessionID, r.RecipientID)
		},
		func(r AcceptRequest) CallStatus { return CallStatus{SessionID: r.SessionID, State: CallConnected} })
	// Reject reports that the ringing recipient turned the call down.
	Reject = declareVoid("reject", &Route{Method: "POST", Path: "/calls/{SESSION_ID}/reject", OptionalBody: true},
		func(e *Engine, ctx context.Context, acc string, r RejectRequest) error {
			return e.Reject(ctx, acc, r.SessionID, r.RecipientID, r.Reason)
		},
		func(r RejectRequest) CallStatus { return CallStatus{SessionID: r.SessionID, State: CallWaiting} })
	// Finalize closes a call's disposition window.
	Finalize = declareVoid("finalize", &Route{Method: "POST", Path: "/calls/{SESSION_ID}/finalize", OptionalBody: true},
		func(e *Engine, ctx context.Context, acc string, r FinalizeRequest) error {
			return e.Finalize(ctx, acc, r.SessionID, r.Finalization)
		},
		func(r FinalizeRequest) CallStatus { return CallStatus{SessionID: r.SessionID} })

	// StartWiretap lets a supervisor monitor a recipient's call.
	StartWiretap = declareVoid("start_wiretap", &Route{Method: "POST", Path: "/wiretaps", Action: "start"},
		(*Engine).StartWiretap,
		func(w Wiretap) WiretapStatus { return w.status("monitoring") })
	// StopWiretap ends a supervisor's monitoring.
	StopWiretap = declareVoid("stop_wiretap", &Route{Method: "POST", Path: "/wiretaps", Action: "stop"},
		(*Engine).StopWiretap,
		func(w Wiretap) WiretapStatus { return w.status("stopped") })
	// FailWiretap ends monitoring that could not be set up.
	FailWiretap = declareVoid("fail_wiretap", nil,
		func(e *Engine, ctx context.Context, acc string, r FailWiretapRequest) error {
			return e.FailWiretap(ctx, acc, r.Wiretap, r.Reason)
		}, none)

	// GetSnapshot reports the account's state and the stream sequence it
	// is consistent with.
	GetSnapshot = declare("snapshot", &Route{Method: "GET", Path: "/qubicle_state"},
		func(e *Engine, ctx context.Context, acc string, _ None) (Snapshot, error) {
			return e.Snapshot(ctx, acc)
		})
	// GetStats reports the account's statistics and the stream sequence
	// they are consistent with.
	GetStats = declare("stats", &Route{Method: "GET", Path: "/qubicle_stats"},
		func(e *Engine, ctx context.Context, acc string, _ None) (StatsReport, error) {
			return e.Stats(ctx, acc)
		})
)

// None is the request of a command that takes nothing but the account,
// and the reply of one that answers nothing but success.
type None struct{}

// QueueRef names a queue.
type QueueRef struct {
	QueueID string `json:"-" path:"QUEUE_ID"`
}

// UpdateQueueRequest is UpdateQueue's: the queue and its new settings.
type UpdateQueueRequest struct {
	QueueID string `json:"-" path:"QUEUE_ID"`
	QueueConfig
}

// RecipientRef names a recipient.
type RecipientRef struct {
	RecipientID string `json:"-" path:"RECIPIENT_ID"`
}

// UpdateRecipientRequest is UpdateRecipient's: the recipient, their new
// name and queues.
type UpdateRecipientRequest struct {
	RecipientID string `json:"-" path:"RECIPIENT_ID"`
	RecipientConfig
}

// SetStatusRequest is SetStatus's: the recipient and the action.
type SetStatusRequest struct {
	RecipientID string `json:"-" path:"RECIPIENT_ID"`
	StatusRequest
}

// ExternalCallRequest is StartExternalCall's and EndExternalCall's, which
// share a route: the recipient, the call to start (SessionID, Direction,
// Number) or who ended it (HangupBy).
type ExternalCallRequest struct {
	RecipientID string `json:"-" path:"RECIPIENT_ID"`
	ExternalCall
	HangupBy event.Party `json:"hangup_by,omitempty" wire:"value"`
}

// HangupRequest is Hangup's: the call and who hung up.
type HangupRequest struct {
	SessionID string      `json:"session_id" wire:"id"`
	HangupBy  event.Party `json:"hangup_by,omitempty" wire:"value"`
}

// EndCallRequest is EndCall's: the call and how it ended.
type EndCallRequest struct {
	SessionID string `json:"-" path:"SESSION_ID"`
	CallEnd
}

// AcceptRequest is Accept's: the call and, when several recipients ring,
// the one who answered.
type AcceptRequest struct {
	SessionID   string `json:"-" path:"SESSION_ID"`
	RecipientID string `json:"recipient_id" wire:"other"`
}

// RejectRequest is Reject's: the call, the recipient who turned it down
// and why (declined when empty).
type RejectRequest struct {
	SessionID   string             `json:"-" path:"SESSION_ID"`
	RecipientID string             `json:"recipient_id" wire:"other"`
	Reason      event.RejectReason `json:"reason" wire:"value"`
}

// FinalizeRequest is Finalize's: the call and its disposition.
type FinalizeRequest struct {
	SessionID string `json:"-" path:"SESSION_ID"`
	Finalization
}

// FailWiretapRequest is FailWiretap's: the monitoring and why it could
// not be set up.
type FailWiretapRequest struct {
	Wiretap
	Reason event.WiretapFailReason `json:"reason" wire:"value"`
}

// Deleted answers the removal of a queue or recipient: its id.
type Deleted struct {
	ID string `json:"id"`
}

// CallStatus answers a change to a call: the call and, after an accept
// or reject, the state it is in (CallConnected, CallWaiting).
type CallStatus struct {
	SessionID string `json:"session_id"`
	State     string `json:"state,omitempty"`
}

// ExternalCallStatus answers the end of an external call.
type ExternalCallStatus struct {
	RecipientID string `json:"recipient_id"`
	State       string `json:"state"`
}

// WiretapStatus answers a wiretap started (state monitoring) or stopped
// (stopped), with the mode it has (listen when the request left it out).
type WiretapStatus struct {
	Mode         event.WiretapMode `json:"mode"`
	RecipientID  string            `json:"recipient_id"`
	State        string            `json:"state"`
	SupervisorID string            `json:"supervisor_id"`
}

func (w Wiretap) status(state string) WiretapStatus {
	mode := w.Mode
	if mode == "" {
		mode = event.WiretapListen
	}
	return WiretapStatus{Mode: mode, RecipientID: w.RecipientID, State: state, SupervisorID: w.SupervisorID}
}
