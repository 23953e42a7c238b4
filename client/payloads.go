// The catalogue's payload types, re-exported as aliases: package event is
// internal to ccevents, and aliases let code outside the module name, switch
// on and construct the very same types the gateway encodes.

package client

import "github.com/ccevents/ccevents/internal/event"

// Payload is implemented by every typed event payload (*QueueJoin,
// *RecipientReady, …). Its Env method returns the correlation fields.
type Payload = event.Payload

// Envelope holds the correlation fields every payload carries: account_id,
// event, event_id, timestamp, timestamp_ms, sequence and the entity ids.
type Envelope = event.Envelope

// Transition is the state and previous_state a recipient event reports.
type Transition = event.Transition

// ActiveSession is one call a recipient is on, as listed by RecipientSync.
type ActiveSession = event.ActiveSession

// Payload types, one per event of the catalogue.
type (
	// QueueCreate is queue.create: a queue has started running.
	QueueCreate = event.QueueCreate
	// QueueDelete is queue.delete: a queue stopped running.
	QueueDelete = event.QueueDelete
	// QueueJoin is queue.join: a caller entered a queue.
	QueueJoin = event.QueueJoin
	// QueueLeave is queue.leave: a caller left a queue, for the reason given.
	QueueLeave = event.QueueLeave
	// QueueDelivered is queue.delivered: a queued caller was connected to a recipient.
	QueueDelivered = event.QueueDelivered
	// RecipientCreate is recipient.create: a recipient logged in.
	RecipientCreate = event.RecipientCreate
	// RecipientDelete is recipient.delete: a recipient logged out.
	RecipientDelete = event.RecipientDelete
	// RecipientReady is recipient.ready: a recipient became available for queue calls.
	RecipientReady = event.RecipientReady
	// RecipientAway is recipient.away: a recipient became unavailable.
	RecipientAway = event.RecipientAway
	// RecipientPause is recipient.pause: a recipient stopped taking calls from one queue.
	RecipientPause = event.RecipientPause
	// RecipientResume is recipient.resume: a recipient takes calls from a paused queue again.
	RecipientResume = event.RecipientResume
	// RecipientWrapupStart is recipient.wrapup_start: the wrap-up window after a call began.
	RecipientWrapupStart = event.RecipientWrapupStart
	// RecipientWrapupComplete is recipient.wrapup_complete: the wrap-up window ended.
	RecipientWrapupComplete = event.RecipientWrapupComplete
	// RecipientOffer is recipient.offer: a queue call is ringing the recipient.
	RecipientOffer = event.RecipientOffer
	// RecipientReject is recipient.reject: the recipient did not take an offered call.
	RecipientReject = event.RecipientReject
	// RecipientRescind is recipient.rescind: the engine withdrew an offer.
	RecipientRescind = event.RecipientRescind
	// RecipientDelivered is recipient.delivered: the recipient answered an offered call.
	RecipientDelivered = event.RecipientDelivered
	// RecipientHangup is recipient.hangup: the call the recipient handled ended.
	RecipientHangup = event.RecipientHangup
	// RecipientExternalCallStart is recipient.external_call_start: the recipient began a non-queue call.
	RecipientExternalCallStart = event.RecipientExternalCallStart
	// RecipientExternalCallEnd is recipient.external_call_end: that call ended.
	RecipientExternalCallEnd = event.RecipientExternalCallEnd
	// RecipientSync is recipient.sync: the recipient's full current state, sent periodically.
	RecipientSync = event.RecipientSync
	// RecipientWiretapStart is recipient.wiretap_start: a supervisor began monitoring the recipient's call.
	RecipientWiretapStart = event.RecipientWiretapStart
	// RecipientWiretapStop is recipient.wiretap_stop: monitoring ended.
	RecipientWiretapStop = event.RecipientWiretapStop
	// RecipientWiretapFailed is recipient.wiretap_failed: a monitoring attempt failed.
	RecipientWiretapFailed = event.RecipientWiretapFailed
	// RecipientInteractionFinalizeStart is recipient.interaction_finalize_start: the disposition and notes window opened.
	RecipientInteractionFinalizeStart = event.RecipientInteractionFinalizeStart
	// RecipientInteractionFinalizeEnd is recipient.interaction_finalize_end: that window closed.
	RecipientInteractionFinalizeEnd = event.RecipientInteractionFinalizeEnd
	// SessionCreate is session.create: a call session was established.
	SessionCreate = event.SessionCreate
	// SessionDelete is session.delete: a call session ended.
	SessionDelete = event.SessionDelete
	// StatsQueue is stats.queue: a queue's statistics changed.
	StatsQueue = event.StatsQueue
	// StatsAccount is stats.account: the account's statistics changed.
	StatsAccount = event.StatsAccount
)

// Statistics carried by StatsQueue and StatsAccount, and by Snapshot.Stats.
type (
	// Figures are a queue's or the account's statistics at one time.
	Figures = event.Figures
	// QueueFigures are a queue's Figures with the settings they are
	// measured against.
	QueueFigures = event.QueueFigures
	// StatsWindow holds one window's totals (last 15 minutes, last hour,
	// today) and the service level, abandon rate, ASA, AHT and occupancy
	// that follow from them.
	StatsWindow = event.StatsWindow
	// RecipientCounts counts logged-in recipients by state.
	RecipientCounts = event.RecipientCounts
)

// Value types of payload fields; each is a string.
type (
	// State is a recipient's state (ready, away, busy, …).
	State = event.State
	// Strategy is how a queue picks the recipient for its next caller.
	Strategy = event.Strategy
	// QueueDeleteReason says why a queue stopped running.
	QueueDeleteReason = event.QueueDeleteReason
	// LeaveReason says why a caller left a queue.
	LeaveReason = event.LeaveReason
	// LogoutReason says why a recipient logged out.
	LogoutReason = event.LogoutReason
	// RejectReason says why an offered call was not taken.
	RejectReason = event.RejectReason
	// RescindReason says why the engine withdrew an offer.
	RescindReason = event.RescindReason
	// Party is who ended a call.
	Party = event.Party
	// Direction says whether a call came in or went out.
	Direction = event.Direction
	// WiretapMode is how a monitoring supervisor takes part in a call.
	WiretapMode = event.WiretapMode
	// WiretapFailReason says why monitoring failed.
	WiretapFailReason = event.WiretapFailReason
	// Cause is a session's disconnection cause (Q.850 style name).
	Cause = event.Cause
)

// Recipient states.
const (
	StateLoggedOut    = event.StateLoggedOut
	StateReady        = event.StateReady
	StateAway         = event.StateAway
	StateOffered      = event.StateOffered
	StateBusy         = event.StateBusy
	StateWrapup       = event.StateWrapup
	StateExternalCall = event.StateExternalCall
)

// Why a caller left a queue.
const (
	LeaveAbandoned    = event.LeaveAbandoned
	LeaveTimeout      = event.LeaveTimeout
	LeaveDelivered    = event.LeaveDelivered
	LeaveExited       = event.LeaveExited
	LeaveTransferred  = event.LeaveTransferred
	LeaveQueueDeleted = event.LeaveQueueDeleted
	LeaveQueueFull    = event.LeaveQueueFull
)

// Call directions.
const (
	Inbound  = event.Inbound
	Outbound = event.Outbound
)
