package event

// enum is the table of one string enum type: its documented values in
// documentation order, each with the sentence generated documents show
// for it. The type's list and its documentation read this one table. Its
// Valid method stays a switch over the constants: Marshal calls it for
// every enum field of every event, and a switch compiles to compares
// against constants, several times faster than a scan of the table
// (TestEnumTablesAgreeWithValid holds the two together). Tables are never
// modified.
type enum[T ~string] []struct {
	value T
	doc   string
}

// values returns a fresh slice of the documented values, in order.
func (e enum[T]) values() []T {
	out := make([]T, len(e))
	for i, v := range e {
		out[i] = v.value
	}
	return out
}

// doc returns the sentence documenting v, or "" when v is not documented.
func (e enum[T]) doc(v T) string {
	for _, d := range e {
		if d.value == v {
			return d.doc
		}
	}
	return ""
}

// field describes a required string field holding one of e's values.
func (e enum[T]) field(name, desc string) Field { return enumOf(name, desc, e.values(), e.doc) }

// State is a recipient's state. A recipient is in exactly one state at a
// time; every recipient event that can change it carries both the new state
// ("state") and the one before ("previous_state").
type State string

// Recipient states.
const (
	// StateLoggedOut: not logged in; receives nothing.
	StateLoggedOut State = "logged_out"
	// StateReady: logged in and available for queue calls.
	StateReady State = "ready"
	// StateAway: logged in but not available (break, meeting, …).
	StateAway State = "away"
	// StateOffered: a queue call is ringing the recipient.
	StateOffered State = "offered"
	// StateBusy: handling a queue call.
	StateBusy State = "busy"
	// StateWrapup: in the post-call wrap-up window; not available.
	StateWrapup State = "wrapup"
	// StateExternalCall: on a call that did not come from a queue.
	StateExternalCall State = "external_call"
)

var states = enum[State]{
	{StateLoggedOut, "not logged in; receives nothing"},
	{StateReady, "available for queue calls"},
	{StateAway, "logged in but unavailable"},
	{StateOffered, "a queue call is ringing the recipient"},
	{StateBusy, "handling a queue call"},
	{StateWrapup, "in the wrap-up window after a call"},
	{StateExternalCall, "on a call that did not come from a queue"},
}

// States lists every recipient state in documentation order.
func States() []State { return states.values() }

// Valid reports whether s is one of the documented states.
func (s State) Valid() bool {
	switch s {
	case StateLoggedOut, StateReady, StateAway, StateOffered, StateBusy, StateWrapup, StateExternalCall:
		return true
	}
	return false
}

// Description returns the sentence documenting s, as docs/events.md shows it.
func (s State) Description() string { return states.doc(s) }

// Strategy is how a queue picks the recipient for its next caller.
type Strategy string

// Queue strategies.
const (
	// StrategyMostIdle offers the call to the ready recipient idle longest.
	StrategyMostIdle Strategy = "most_idle"
	// StrategyRoundRobin offers calls to ready recipients in turn.
	StrategyRoundRobin Strategy = "round_robin"
	// StrategyFewestCalls offers the call to the recipient who took fewest.
	StrategyFewestCalls Strategy = "fewest_calls"
	// StrategyRingAll offers the call to every ready recipient at once.
	StrategyRingAll Strategy = "ring_all"
)

var strategies = enum[Strategy]{
	{StrategyMostIdle, "the ready recipient idle longest"},
	{StrategyRoundRobin, "ready recipients in turn"},
	{StrategyFewestCalls, "the ready recipient who took fewest calls"},
	{StrategyRingAll, "every ready recipient at once; first to answer takes it"},
}

// Strategies lists every queue strategy.
func Strategies() []Strategy { return strategies.values() }

// Valid reports whether s is a documented strategy.
func (s Strategy) Valid() bool {
	switch s {
	case StrategyMostIdle, StrategyRoundRobin, StrategyFewestCalls, StrategyRingAll:
		return true
	}
	return false
}

// QueueDeleteReason says why a queue stopped running.
type QueueDeleteReason string

// Queue delete reasons.
const (
	// QueueDeleted: an administrator removed the queue.
	QueueDeleted QueueDeleteReason = "deleted"
	// QueueShutdown: the engine running the queue is shutting down.
	QueueShutdown QueueDeleteReason = "shutdown"
)

var queueDeleteReasons = enum[QueueDeleteReason]{
	{QueueDeleted, "an administrator removed the queue"},
	{QueueShutdown, "the engine running the queue is shutting down"},
}

// QueueDeleteReasons lists every queue delete reason.
func QueueDeleteReasons() []QueueDeleteReason { return queueDeleteReasons.values() }

// Valid reports whether r is a documented reason.
func (r QueueDeleteReason) Valid() bool { return r == QueueDeleted || r == QueueShutdown }

// LeaveReason says why a caller left a queue.
type LeaveReason string

// Queue leave reasons.
const (
	// LeaveAbandoned: the caller hung up while waiting.
	LeaveAbandoned LeaveReason = "abandoned"
	// LeaveTimeout: the caller reached the queue's maximum wait.
	LeaveTimeout LeaveReason = "timeout"
	// LeaveDelivered: the caller was connected to a recipient.
	LeaveDelivered LeaveReason = "delivered"
	// LeaveExited: the caller chose to leave (e.g. pressed a key for voicemail).
	LeaveExited LeaveReason = "exited"
	// LeaveTransferred: the call was moved elsewhere by a rule or supervisor.
	LeaveTransferred LeaveReason = "transferred"
	// LeaveQueueDeleted: the queue stopped running with the caller in it.
	LeaveQueueDeleted LeaveReason = "queue_deleted"
	// LeaveQueueFull: the queue was at its maximum size when the caller arrived.
	LeaveQueueFull LeaveReason = "queue_full"
)

var leaveReasons = enum[LeaveReason]{
	{LeaveAbandoned, "the caller hung up while waiting"},
	{LeaveTimeout, "the caller reached the queue's maximum wait"},
	{LeaveDelivered, "the caller was connected to a recipient"},
	{LeaveExited, "the caller chose to leave (e.g. pressed a key for voicemail)"},
	{LeaveTransferred, "the call was moved elsewhere by a rule or supervisor"},
	{LeaveQueueDeleted, "the queue stopped running"},
	{LeaveQueueFull, "the queue was full when the caller arrived"},
}

// LeaveReasons lists every queue leave reason.
func LeaveReasons() []LeaveReason { return leaveReasons.values() }

// Valid reports whether r is a documented reason.
func (r LeaveReason) Valid() bool {
	switch r {
	case LeaveAbandoned, LeaveTimeout, LeaveDelivered, LeaveExited, LeaveTransferred, LeaveQueueDeleted, LeaveQueueFull:
		return true
	}
	return false
}

// LogoutReason says why a recipient logged out.
type LogoutReason string

// Recipient logout reasons.
const (
	// LogoutRequested: the recipient logged out.
	LogoutRequested LogoutReason = "logout"
	// LogoutForced: a supervisor or administrator logged the recipient out.
	LogoutForced LogoutReason = "forced"
	// LogoutDeleted: the recipient was removed.
	LogoutDeleted LogoutReason = "deleted"
	// LogoutShutdown: the engine holding the recipient is shutting down.
	LogoutShutdown LogoutReason = "shutdown"
)

var logoutReasons = enum[LogoutReason]{
	{LogoutRequested, "the recipient logged out"},
	{LogoutForced, "a supervisor or administrator logged the recipient out"},
	{LogoutDeleted, "the recipient was removed"},
	{LogoutShutdown, "the engine holding the recipient is shutting down"},
}

// LogoutReasons lists every logout reason.
func LogoutReasons() []LogoutReason { return logoutReasons.values() }

// Valid reports whether r is a documented reason.
func (r LogoutReason) Valid() bool {
	switch r {
	case LogoutRequested, LogoutForced, LogoutDeleted, LogoutShutdown:
		return true
	}
	return false
}

// RejectReason says why an offered call was not taken by the recipient.
type RejectReason string

// Recipient reject reasons.
const (
	// RejectDeclined: the recipient declined the call.
	RejectDeclined RejectReason = "declined"
	// RejectTimeout: the recipient did not answer within the offer timeout.
	RejectTimeout RejectReason = "timeout"
	// RejectBusy: the recipient's device reported busy.
	RejectBusy RejectReason = "busy"
	// RejectUnreachable: the recipient's device could not be reached; the
	// recipient goes away.
	RejectUnreachable RejectReason = "unreachable"
)

var rejectReasons = enum[RejectReason]{
	{RejectDeclined, "the recipient declined the call"},
	{RejectTimeout, "the recipient did not answer within the offer timeout"},
	{RejectBusy, "the recipient's device reported busy"},
	{RejectUnreachable, "the recipient's device could not be reached; the recipient goes away"},
}

// RejectReasons lists every reject reason.
func RejectReasons() []RejectReason { return rejectReasons.values() }

// Valid reports whether r is a documented reason.
func (r RejectReason) Valid() bool {
	switch r {
	case RejectDeclined, RejectTimeout, RejectBusy, RejectUnreachable:
		return true
	}
	return false
}

// RescindReason says why the engine withdrew an offer.
type RescindReason string

// Recipient rescind reasons.
const (
	// RescindAbandoned: the caller hung up while the offer was ringing.
	RescindAbandoned RescindReason = "abandoned"
	// RescindAnsweredElsewhere: another recipient took the call.
	RescindAnsweredElsewhere RescindReason = "answered_elsewhere"
	// RescindQueueTimeout: the caller reached the queue's maximum wait.
	RescindQueueTimeout RescindReason = "queue_timeout"
	// RescindTransferred: the call was moved elsewhere.
	RescindTransferred RescindReason = "transferred"
	// RescindQueueDeleted: the queue stopped running.
	RescindQueueDeleted RescindReason = "queue_deleted"
	// RescindRecipientUnavailable: the recipient went away, paused the queue or logged out.
	RescindRecipientUnavailable RescindReason = "recipient_unavailable"
)

var rescindReasons = enum[RescindReason]{
	{RescindAbandoned, "the caller hung up while the offer rang"},
	{RescindAnsweredElsewhere, "another recipient took the call"},
	{RescindQueueTimeout, "the caller reached the queue's maximum wait"},
	{RescindTransferred, "the call was moved elsewhere"},
	{RescindQueueDeleted, "the queue stopped running"},
	{RescindRecipientUnavailable, "the recipient went away, paused the queue or logged out"},
}

// RescindReasons lists every rescind reason.
func RescindReasons() []RescindReason { return rescindReasons.values() }

// Valid reports whether r is a documented reason.
func (r RescindReason) Valid() bool {
	switch r {
	case RescindAbandoned, RescindAnsweredElsewhere, RescindQueueTimeout, RescindTransferred, RescindQueueDeleted, RescindRecipientUnavailable:
		return true
	}
	return false
}

// Party names who ended a call.
type Party string

// Parties that end calls.
const (
	// PartyCaller: the caller (remote party) hung up.
	PartyCaller Party = "caller"
	// PartyRecipient: the recipient hung up.
	PartyRecipient Party = "recipient"
	// PartySystem: the platform ended the call (timeout, transfer, failure).
	PartySystem Party = "system"
)

var parties = enum[Party]{
	{PartyCaller, "the caller (remote party) hung up"},
	{PartyRecipient, "the recipient hung up"},
	{PartySystem, "the platform ended the call (timeout, transfer, failure)"},
}

// Parties lists every party.
func Parties() []Party { return parties.values() }

// Valid reports whether p is a documented party.
func (p Party) Valid() bool { return p == PartyCaller || p == PartyRecipient || p == PartySystem }

// Direction is the direction of a call relative to the contact center.
type Direction string

// Call directions.
const (
	// Inbound: the call came into the contact center.
	Inbound Direction = "inbound"
	// Outbound: the contact center placed the call.
	Outbound Direction = "outbound"
)

var directions = enum[Direction]{
	{Inbound, "the call came into the contact center"},
	{Outbound, "the contact center placed the call"},
}

// Directions lists both directions.
func Directions() []Direction { return directions.values() }

// Valid reports whether d is a documented direction.
func (d Direction) Valid() bool { return d == Inbound || d == Outbound }

// WiretapMode is how a supervisor monitors a call.
type WiretapMode string

// Wiretap modes.
const (
	// WiretapListen: the supervisor hears both parties; nobody hears the supervisor.
	WiretapListen WiretapMode = "listen"
	// WiretapWhisper: the supervisor hears both parties and only the recipient hears the supervisor.
	WiretapWhisper WiretapMode = "whisper"
	// WiretapBarge: the supervisor joins the call; both parties hear them.
	WiretapBarge WiretapMode = "barge"
)

var wiretapModes = enum[WiretapMode]{
	{WiretapListen, "hears both parties; nobody hears the supervisor"},
	{WiretapWhisper, "hears both parties; only the recipient hears the supervisor"},
	{WiretapBarge, "joins the call; both parties hear the supervisor"},
}

// WiretapModes lists every wiretap mode.
func WiretapModes() []WiretapMode { return wiretapModes.values() }

// Valid reports whether m is a documented mode.
func (m WiretapMode) Valid() bool {
	return m == WiretapListen || m == WiretapWhisper || m == WiretapBarge
}

// WiretapFailReason says why a monitoring attempt failed.
type WiretapFailReason string

// Wiretap failure reasons.
const (
	// WiretapNoActiveSession: the recipient was not on a call.
	WiretapNoActiveSession WiretapFailReason = "no_active_session"
	// WiretapNotPermitted: the supervisor may not monitor this recipient.
	WiretapNotPermitted WiretapFailReason = "not_permitted"
	// WiretapAlreadyMonitored: another supervisor is already monitoring the call.
	WiretapAlreadyMonitored WiretapFailReason = "already_monitored"
	// WiretapSupervisorUnreachable: the supervisor's device could not be reached.
	WiretapSupervisorUnreachable WiretapFailReason = "supervisor_unreachable"
	// WiretapSessionEnded: the call ended while monitoring was being set up.
	WiretapSessionEnded WiretapFailReason = "session_ended"
)

var wiretapFailReasons = enum[WiretapFailReason]{
	{WiretapNoActiveSession, "the recipient was not on a call"},
	{WiretapNotPermitted, "the supervisor may not monitor this recipient"},
	{WiretapAlreadyMonitored, "another supervisor already monitors the call"},
	{WiretapSupervisorUnreachable, "the supervisor's device could not be reached"},
	{WiretapSessionEnded, "the call ended while monitoring was being set up"},
}

// WiretapFailReasons lists every wiretap failure reason.
func WiretapFailReasons() []WiretapFailReason { return wiretapFailReasons.values() }

// Valid reports whether r is a documented reason.
func (r WiretapFailReason) Valid() bool {
	switch r {
	case WiretapNoActiveSession, WiretapNotPermitted, WiretapAlreadyMonitored, WiretapSupervisorUnreachable, WiretapSessionEnded:
		return true
	}
	return false
}

// Cause is the name of a call's disconnection cause: a Q.850 cause, or one
// of the platform causes above 127, named as FreeSWITCH and Kazoo name them.
// session.delete carries the name and its code (Cause.Code, CauseName).
type Cause string

// Disconnection causes.
const (
	CauseUnallocatedNumber       Cause = "UNALLOCATED_NUMBER"        // 1: the number does not exist
	CauseNormalClearing          Cause = "NORMAL_CLEARING"           // 16: a party hung up normally
	CauseUserBusy                Cause = "USER_BUSY"                 // 17: the called party was busy
	CauseNoUserResponse          Cause = "NO_USER_RESPONSE"          // 18: the called device did not respond
	CauseNoAnswer                Cause = "NO_ANSWER"                 // 19: it rang but nobody answered
	CauseCallRejected            Cause = "CALL_REJECTED"             // 21: the called party refused the call
	CauseDestinationOutOfOrder   Cause = "DESTINATION_OUT_OF_ORDER"  // 27: the called device is unreachable
	CauseInvalidNumberFormat     Cause = "INVALID_NUMBER_FORMAT"     // 28: the dialled number is malformed
	CauseNormalUnspecified       Cause = "NORMAL_UNSPECIFIED"        // 31: normal end, no specific cause
	CauseNormalCircuitCongestion Cause = "NORMAL_CIRCUIT_CONGESTION" // 34: no circuit or channel available
	CauseNetworkOutOfOrder       Cause = "NETWORK_OUT_OF_ORDER"      // 38: the network failed
	CauseNormalTemporaryFailure  Cause = "NORMAL_TEMPORARY_FAILURE"  // 41: a temporary failure; retry may work
	CauseRecoveryOnTimerExpire   Cause = "RECOVERY_ON_TIMER_EXPIRE"  // 102: a signalling timer expired
	CauseInterworking            Cause = "INTERWORKING"              // 127: a failure between networks
	CauseOriginatorCancel        Cause = "ORIGINATOR_CANCEL"         // 487: the caller hung up before answer
	CauseSystemShutdown          Cause = "SYSTEM_SHUTDOWN"           // 501: the platform shut down
	CauseBlindTransfer           Cause = "BLIND_TRANSFER"            // 600: the call was transferred away
	CauseAllottedTimeout         Cause = "ALLOTTED_TIMEOUT"          // 602: the call reached its time limit
	CauseMediaTimeout            Cause = "MEDIA_TIMEOUT"             // 604: no media arrived for too long
)

// causes pairs codes with names in ascending code order; it is the single
// table behind Causes, CauseName and Cause.Code.
var causes = [...]struct {
	code int
	name Cause
	desc string
}{
	{1, CauseUnallocatedNumber, "the number does not exist"},
	{16, CauseNormalClearing, "a party hung up normally"},
	{17, CauseUserBusy, "the called party was busy"},
	{18, CauseNoUserResponse, "the called device did not respond"},
	{19, CauseNoAnswer, "it rang but nobody answered"},
	{21, CauseCallRejected, "the called party refused the call"},
	{27, CauseDestinationOutOfOrder, "the called device is unreachable"},
	{28, CauseInvalidNumberFormat, "the dialled number is malformed"},
	{31, CauseNormalUnspecified, "normal end without a more specific cause"},
	{34, CauseNormalCircuitCongestion, "no circuit or channel was available"},
	{38, CauseNetworkOutOfOrder, "the network failed"},
	{41, CauseNormalTemporaryFailure, "a temporary failure; retrying may work"},
	{102, CauseRecoveryOnTimerExpire, "a signalling timer expired"},
	{127, CauseInterworking, "a failure between networks"},
	{487, CauseOriginatorCancel, "the caller hung up before the call was answered"},
	{501, CauseSystemShutdown, "the platform shut down"},
	{600, CauseBlindTransfer, "the call was transferred away"},
	{602, CauseAllottedTimeout, "the call reached its time limit"},
	{604, CauseMediaTimeout, "no media arrived for too long"},
}

// Causes lists every documented cause in ascending code order.
func Causes() []Cause {
	out := make([]Cause, len(causes))
	for i, c := range causes {
		out[i] = c.name
	}
	return out
}

// CauseName returns the name of the documented cause with the given code,
// or "" when the code is not in the documented set.
func CauseName(code int) string {
	for _, c := range causes {
		if c.code == code {
			return string(c.name)
		}
	}
	return ""
}

// Code returns the numeric code of c, or 0 when c is not documented.
func (c Cause) Code() int {
	for _, k := range causes {
		if k.name == c {
			return k.code
		}
	}
	return 0
}

// Valid reports whether c is a documented cause.
func (c Cause) Valid() bool { return c.Code() != 0 }

// Description returns the sentence documenting c, as docs/events.md shows it.
func (c Cause) Description() string {
	for _, k := range causes {
		if k.name == c {
			return k.desc
		}
	}
	return ""
}
