// This file holds each event type's identity and the envelope ids it
// carries: regular boilerplate, written once from a table.

package event

// Family returns queue.
func (*QueueCreate) Family() Family { return Queue }

// Name returns "create".
func (*QueueCreate) Name() string { return "create" }

func (*QueueCreate) event() string { return "queue.create" }
func (*QueueCreate) ids() idSet    { return idSet{allowed: idQueue, required: idQueue} }

// Family returns queue.
func (*QueueDelete) Family() Family { return Queue }

// Name returns "delete".
func (*QueueDelete) Name() string { return "delete" }

func (*QueueDelete) event() string { return "queue.delete" }
func (*QueueDelete) ids() idSet    { return idSet{allowed: idQueue, required: idQueue} }

// Family returns queue.
func (*QueueJoin) Family() Family { return Queue }

// Name returns "join".
func (*QueueJoin) Name() string { return "join" }

func (*QueueJoin) event() string { return "queue.join" }
func (*QueueJoin) ids() idSet {
	return idSet{allowed: idQueue | idSession, required: idQueue | idSession}
}

// Family returns queue.
func (*QueueLeave) Family() Family { return Queue }

// Name returns "leave".
func (*QueueLeave) Name() string { return "leave" }

func (*QueueLeave) event() string { return "queue.leave" }
func (*QueueLeave) ids() idSet {
	return idSet{allowed: idQueue | idRecipient | idSession, required: idQueue | idSession}
}

// Family returns queue.
func (*QueueDelivered) Family() Family { return Queue }

// Name returns "delivered".
func (*QueueDelivered) Name() string { return "delivered" }

func (*QueueDelivered) event() string { return "queue.delivered" }
func (*QueueDelivered) ids() idSet {
	return idSet{allowed: idQueue | idRecipient | idSession, required: idQueue | idRecipient | idSession}
}

// Family returns recipient.
func (*RecipientCreate) Family() Family { return Recipient }

// Name returns "create".
func (*RecipientCreate) Name() string { return "create" }

func (*RecipientCreate) event() string { return "recipient.create" }
func (*RecipientCreate) ids() idSet    { return idSet{allowed: idRecipient, required: idRecipient} }

// Family returns recipient.
func (*RecipientDelete) Family() Family { return Recipient }

// Name returns "delete".
func (*RecipientDelete) Name() string { return "delete" }

func (*RecipientDelete) event() string { return "recipient.delete" }
func (*RecipientDelete) ids() idSet    { return idSet{allowed: idRecipient, required: idRecipient} }

// Family returns recipient.
func (*RecipientReady) Family() Family { return Recipient }

// Name returns "ready".
func (*RecipientReady) Name() string { return "ready" }

func (*RecipientReady) event() string { return "recipient.ready" }
func (*RecipientReady) ids() idSet    { return idSet{allowed: idRecipient, required: idRecipient} }

// Family returns recipient.
func (*RecipientAway) Family() Family { return Recipient }

// Name returns "away".
func (*RecipientAway) Name() string { return "away" }

func (*RecipientAway) event() string { return "recipient.away" }
func (*RecipientAway) ids() idSet    { return idSet{allowed: idRecipient, required: idRecipient} }

// Family returns recipient.
func (*RecipientPause) Family() Family { return Recipient }

// Name returns "pause".
func (*RecipientPause) Name() string { return "pause" }

func (*RecipientPause) event() string { return "recipient.pause" }
func (*RecipientPause) ids() idSet {
	return idSet{allowed: idQueue | idRecipient, required: idQueue | idRecipient}
}

// Family returns recipient.
func (*RecipientResume) Family() Family { return Recipient }

// Name returns "resume".
func (*RecipientResume) Name() string { return "resume" }

func (*RecipientResume) event() string { return "recipient.resume" }
func (*RecipientResume) ids() idSet {
	return idSet{allowed: idQueue | idRecipient, required: idQueue | idRecipient}
}

// Family returns recipient.
func (*RecipientWrapupStart) Family() Family { return Recipient }

// Name returns "wrapup_start".
func (*RecipientWrapupStart) Name() string { return "wrapup_start" }

func (*RecipientWrapupStart) event() string { return "recipient.wrapup_start" }
func (*RecipientWrapupStart) ids() idSet {
	return idSet{allowed: idQueue | idRecipient | idSession, required: idRecipient | idSession}
}

// Family returns recipient.
func (*RecipientWrapupComplete) Family() Family { return Recipient }

// Name returns "wrapup_complete".
func (*RecipientWrapupComplete) Name() string { return "wrapup_complete" }

func (*RecipientWrapupComplete) event() string { return "recipient.wrapup_complete" }
func (*RecipientWrapupComplete) ids() idSet {
	return idSet{allowed: idQueue | idRecipient | idSession, required: idRecipient | idSession}
}

// Family returns recipient.
func (*RecipientOffer) Family() Family { return Recipient }

// Name returns "offer".
func (*RecipientOffer) Name() string { return "offer" }

func (*RecipientOffer) event() string { return "recipient.offer" }
func (*RecipientOffer) ids() idSet {
	return idSet{allowed: idQueue | idRecipient | idSession, required: idQueue | idRecipient | idSession}
}

// Family returns recipient.
func (*RecipientReject) Family() Family { return Recipient }

// Name returns "reject".
func (*RecipientReject) Name() string { return "reject" }

func (*RecipientReject) event() string { return "recipient.reject" }
func (*RecipientReject) ids() idSet {
	return idSet{allowed: idQueue | idRecipient | idSession, required: idQueue | idRecipient | idSession}
}

// Family returns recipient.
func (*RecipientRescind) Family() Family { return Recipient }

// Name returns "rescind".
func (*RecipientRescind) Name() string { return "rescind" }

func (*RecipientRescind) event() string { return "recipient.rescind" }
func (*RecipientRescind) ids() idSet {
	return idSet{allowed: idQueue | idRecipient | idSession, required: idQueue | idRecipient | idSession}
}

// Family returns recipient.
func (*RecipientDelivered) Family() Family { return Recipient }

// Name returns "delivered".
func (*RecipientDelivered) Name() string { return "delivered" }

func (*RecipientDelivered) event() string { return "recipient.delivered" }
func (*RecipientDelivered) ids() idSet {
	return idSet{allowed: idQueue | idRecipient | idSession, required: idQueue | idRecipient | idSession}
}

// Family returns recipient.
func (*RecipientHangup) Family() Family { return Recipient }

// Name returns "hangup".
func (*RecipientHangup) Name() string { return "hangup" }

func (*RecipientHangup) event() string { return "recipient.hangup" }
func (*RecipientHangup) ids() idSet {
	return idSet{allowed: idQueue | idRecipient | idSession, required: idRecipient | idSession}
}

// Family returns recipient.
func (*RecipientExternalCallStart) Family() Family { return Recipient }

// Name returns "external_call_start".
func (*RecipientExternalCallStart) Name() string { return "external_call_start" }

func (*RecipientExternalCallStart) event() string { return "recipient.external_call_start" }
func (*RecipientExternalCallStart) ids() idSet {
	return idSet{allowed: idRecipient | idSession, required: idRecipient | idSession}
}

// Family returns recipient.
func (*RecipientExternalCallEnd) Family() Family { return Recipient }

// Name returns "external_call_end".
func (*RecipientExternalCallEnd) Name() string { return "external_call_end" }

func (*RecipientExternalCallEnd) event() string { return "recipient.external_call_end" }
func (*RecipientExternalCallEnd) ids() idSet {
	return idSet{allowed: idRecipient | idSession, required: idRecipient | idSession}
}

// Family returns recipient.
func (*RecipientSync) Family() Family { return Recipient }

// Name returns "sync".
func (*RecipientSync) Name() string { return "sync" }

func (*RecipientSync) event() string { return "recipient.sync" }
func (*RecipientSync) ids() idSet    { return idSet{allowed: idRecipient, required: idRecipient} }

// Family returns recipient.
func (*RecipientWiretapStart) Family() Family { return Recipient }

// Name returns "wiretap_start".
func (*RecipientWiretapStart) Name() string { return "wiretap_start" }

func (*RecipientWiretapStart) event() string { return "recipient.wiretap_start" }
func (*RecipientWiretapStart) ids() idSet {
	return idSet{allowed: idRecipient | idSession, required: idRecipient | idSession}
}

// Family returns recipient.
func (*RecipientWiretapStop) Family() Family { return Recipient }

// Name returns "wiretap_stop".
func (*RecipientWiretapStop) Name() string { return "wiretap_stop" }

func (*RecipientWiretapStop) event() string { return "recipient.wiretap_stop" }
func (*RecipientWiretapStop) ids() idSet {
	return idSet{allowed: idRecipient | idSession, required: idRecipient | idSession}
}

// Family returns recipient.
func (*RecipientWiretapFailed) Family() Family { return Recipient }

// Name returns "wiretap_failed".
func (*RecipientWiretapFailed) Name() string { return "wiretap_failed" }

func (*RecipientWiretapFailed) event() string { return "recipient.wiretap_failed" }
func (*RecipientWiretapFailed) ids() idSet {
	return idSet{allowed: idRecipient | idSession, required: idRecipient}
}

// Family returns recipient.
func (*RecipientInteractionFinalizeStart) Family() Family { return Recipient }

// Name returns "interaction_finalize_start".
func (*RecipientInteractionFinalizeStart) Name() string { return "interaction_finalize_start" }

func (*RecipientInteractionFinalizeStart) event() string {
	return "recipient.interaction_finalize_start"
}
func (*RecipientInteractionFinalizeStart) ids() idSet {
	return idSet{allowed: idQueue | idRecipient | idSession, required: idRecipient | idSession}
}

// Family returns recipient.
func (*RecipientInteractionFinalizeEnd) Family() Family { return Recipient }

// Name returns "interaction_finalize_end".
func (*RecipientInteractionFinalizeEnd) Name() string { return "interaction_finalize_end" }

func (*RecipientInteractionFinalizeEnd) event() string { return "recipient.interaction_finalize_end" }
func (*RecipientInteractionFinalizeEnd) ids() idSet {
	return idSet{allowed: idQueue | idRecipient | idSession, required: idRecipient | idSession}
}

// Family returns session.
func (*SessionCreate) Family() Family { return Session }

// Name returns "create".
func (*SessionCreate) Name() string { return "create" }

func (*SessionCreate) event() string { return "session.create" }
func (*SessionCreate) ids() idSet {
	return idSet{allowed: idQueue | idRecipient | idSession, required: idSession}
}

// Family returns session.
func (*SessionDelete) Family() Family { return Session }

// Name returns "delete".
func (*SessionDelete) Name() string { return "delete" }

func (*SessionDelete) event() string { return "session.delete" }
func (*SessionDelete) ids() idSet {
	return idSet{allowed: idQueue | idRecipient | idSession, required: idSession}
}

// kinds lists every event type in catalogue order with a constructor for its
// zero value. It is never modified.
var kinds = [...]struct {
	family Family
	name   string
	new    func() Payload
}{
	{Queue, "create", func() Payload { return new(QueueCreate) }},
	{Queue, "delete", func() Payload { return new(QueueDelete) }},
	{Queue, "join", func() Payload { return new(QueueJoin) }},
	{Queue, "leave", func() Payload { return new(QueueLeave) }},
	{Queue, "delivered", func() Payload { return new(QueueDelivered) }},
	{Recipient, "create", func() Payload { return new(RecipientCreate) }},
	{Recipient, "delete", func() Payload { return new(RecipientDelete) }},
	{Recipient, "ready", func() Payload { return new(RecipientReady) }},
	{Recipient, "away", func() Payload { return new(RecipientAway) }},
	{Recipient, "pause", func() Payload { return new(RecipientPause) }},
	{Recipient, "resume", func() Payload { return new(RecipientResume) }},
	{Recipient, "wrapup_start", func() Payload { return new(RecipientWrapupStart) }},
	{Recipient, "wrapup_complete", func() Payload { return new(RecipientWrapupComplete) }},
	{Recipient, "offer", func() Payload { return new(RecipientOffer) }},
	{Recipient, "reject", func() Payload { return new(RecipientReject) }},
	{Recipient, "rescind", func() Payload { return new(RecipientRescind) }},
	{Recipient, "delivered", func() Payload { return new(RecipientDelivered) }},
	{Recipient, "hangup", func() Payload { return new(RecipientHangup) }},
	{Recipient, "external_call_start", func() Payload { return new(RecipientExternalCallStart) }},
	{Recipient, "external_call_end", func() Payload { return new(RecipientExternalCallEnd) }},
	{Recipient, "sync", func() Payload { return new(RecipientSync) }},
	{Recipient, "wiretap_start", func() Payload { return new(RecipientWiretapStart) }},
	{Recipient, "wiretap_stop", func() Payload { return new(RecipientWiretapStop) }},
	{Recipient, "wiretap_failed", func() Payload { return new(RecipientWiretapFailed) }},
	{Recipient, "interaction_finalize_start", func() Payload { return new(RecipientInteractionFinalizeStart) }},
	{Recipient, "interaction_finalize_end", func() Payload { return new(RecipientInteractionFinalizeEnd) }},
	{Session, "create", func() Payload { return new(SessionCreate) }},
	{Session, "delete", func() Payload { return new(SessionDelete) }},
	{Stats, "queue", func() Payload { return new(StatsQueue) }},
	{Stats, "account", func() Payload { return new(StatsAccount) }},
}
