package event

// Limits on free-text fields, in characters; they keep one event well under
// the 64 KiB payload limit.
const (
	maxShortText = 256  // names, numbers, reasons, dispositions
	maxNotes     = 4096 // interaction notes
)

// ---- queue events -------------------------------------------------------

// QueueCreate is queue.create: a queue has started running.
type QueueCreate struct {
	Envelope
	QueueName     string   `json:"queue_name"`
	Strategy      Strategy `json:"strategy"`
	MaxWaitS      int      `json:"max_wait_s"`
	MaxSize       int      `json:"max_size"`
	OfferTimeoutS int      `json:"offer_timeout_s"`
	WrapupS       int      `json:"wrapup_s"`
}

// QueueDelete is queue.delete: a queue is no longer running.
type QueueDelete struct {
	Envelope
	QueueName string            `json:"queue_name"`
	Reason    QueueDeleteReason `json:"reason"`
	Waiting   int               `json:"waiting"`
}

// QueueJoin is queue.join: a caller entered a queue.
type QueueJoin struct {
	Envelope
	CallerIDName   string `json:"caller_id_name,omitempty"`
	CallerIDNumber string `json:"caller_id_number"`
	Position       int    `json:"position"`
	EstimatedWaitS int    `json:"estimated_wait_s"`
}

// QueueLeave is queue.leave: a caller left a queue.
type QueueLeave struct {
	Envelope
	Reason         LeaveReason `json:"reason"`
	Position       int         `json:"position"`
	WaitDurationMS int64       `json:"wait_duration_ms"`
}

// QueueDelivered is queue.delivered: a queued call was connected to a recipient.
type QueueDelivered struct {
	Envelope
	Position       int   `json:"position"`
	WaitDurationMS int64 `json:"wait_duration_ms"`
}

// ---- recipient events ---------------------------------------------------

// Transition is the state change a recipient event reports; embedded in
// every recipient event that can change the state.
type Transition struct {
	State         State `json:"state"`
	PreviousState State `json:"previous_state"`
}

// RecipientCreate is recipient.create: a recipient logged in.
type RecipientCreate struct {
	Envelope
	Transition
	RecipientName string   `json:"recipient_name,omitempty"`
	Queues        []string `json:"queues"`
}

// RecipientDelete is recipient.delete: a recipient logged out.
type RecipientDelete struct {
	Envelope
	Transition
	Reason LogoutReason `json:"reason"`
}

// RecipientReady is recipient.ready: a recipient became available for queue calls.
type RecipientReady struct {
	Envelope
	Transition
}

// RecipientAway is recipient.away: a recipient became unavailable.
type RecipientAway struct {
	Envelope
	Transition
	Reason string `json:"reason,omitempty"`
}

// RecipientPause is recipient.pause: a recipient stopped taking calls from one queue.
type RecipientPause struct {
	Envelope
	Transition
	Reason       string   `json:"reason,omitempty"`
	PausedQueues []string `json:"paused_queues"`
}

// RecipientResume is recipient.resume: a recipient takes calls from a paused queue again.
type RecipientResume struct {
	Envelope
	Transition
	PausedDurationMS int64    `json:"paused_duration_ms"`
	PausedQueues     []string `json:"paused_queues"`
}

// RecipientWrapupStart is recipient.wrapup_start: the wrap-up window after a call began.
type RecipientWrapupStart struct {
	Envelope
	Transition
	WrapupS int `json:"wrapup_s"`
}

// RecipientWrapupComplete is recipient.wrapup_complete: the wrap-up window ended.
type RecipientWrapupComplete struct {
	Envelope
	Transition
	WrapupDurationMS int64 `json:"wrapup_duration_ms"`
}

// RecipientOffer is recipient.offer: a queue call is ringing the recipient.
type RecipientOffer struct {
	Envelope
	Transition
	CallerIDName   string `json:"caller_id_name,omitempty"`
	CallerIDNumber string `json:"caller_id_number"`
	TimeoutS       int    `json:"timeout_s"`
	WaitDurationMS int64  `json:"wait_duration_ms"`
}

// RecipientReject is recipient.reject: the recipient did not take an offered call.
type RecipientReject struct {
	Envelope
	Transition
	Reason         RejectReason `json:"reason"`
	RingDurationMS int64        `json:"ring_duration_ms"`
}

// RecipientRescind is recipient.rescind: the engine withdrew an offer.
type RecipientRescind struct {
	Envelope
	Transition
	Reason         RescindReason `json:"reason"`
	RingDurationMS int64         `json:"ring_duration_ms"`
}

// RecipientDelivered is recipient.delivered: the recipient answered an offered call.
type RecipientDelivered struct {
	Envelope
	Transition
	CallerIDName   string `json:"caller_id_name,omitempty"`
	CallerIDNumber string `json:"caller_id_number"`
	WaitDurationMS int64  `json:"wait_duration_ms"`
	RingDurationMS int64  `json:"ring_duration_ms"`
}

// RecipientHangup is recipient.hangup: the call the recipient handled ended.
type RecipientHangup struct {
	Envelope
	Transition
	HangupBy   Party `json:"hangup_by"`
	DurationMS int64 `json:"duration_ms"`
}

// RecipientExternalCallStart is recipient.external_call_start: the recipient
// began a call that did not come from a queue.
type RecipientExternalCallStart struct {
	Envelope
	Transition
	Direction Direction `json:"direction"`
	Number    string    `json:"number,omitempty"`
}

// RecipientExternalCallEnd is recipient.external_call_end: that call ended.
type RecipientExternalCallEnd struct {
	Envelope
	Transition
	Direction  Direction `json:"direction"`
	DurationMS int64     `json:"duration_ms"`
}

// ActiveSession is one call a recipient is on, as listed by recipient.sync.
type ActiveSession struct {
	SessionID string    `json:"session_id"`
	QueueID   string    `json:"queue_id,omitempty"`
	Direction Direction `json:"direction"`
	StartedAt string    `json:"started_at"`
}

// RecipientSync is recipient.sync: the recipient's full current state,
// sent periodically and on request so clients can correct drift.
type RecipientSync struct {
	Envelope
	State          State           `json:"state"`
	StateSince     string          `json:"state_since"`
	StateSinceMS   int64           `json:"state_since_ms"`
	Queues         []string        `json:"queues"`
	PausedQueues   []string        `json:"paused_queues"`
	ActiveSessions []ActiveSession `json:"active_sessions"`
}

// RecipientWiretapStart is recipient.wiretap_start: a supervisor began
// monitoring the recipient's call.
type RecipientWiretapStart struct {
	Envelope
	SupervisorID string      `json:"supervisor_id"`
	Mode         WiretapMode `json:"mode"`
}

// RecipientWiretapStop is recipient.wiretap_stop: monitoring ended.
type RecipientWiretapStop struct {
	Envelope
	SupervisorID string      `json:"supervisor_id"`
	Mode         WiretapMode `json:"mode"`
	DurationMS   int64       `json:"duration_ms"`
}

// RecipientWiretapFailed is recipient.wiretap_failed: a monitoring attempt failed.
type RecipientWiretapFailed struct {
	Envelope
	SupervisorID string            `json:"supervisor_id"`
	Mode         WiretapMode       `json:"mode"`
	Reason       WiretapFailReason `json:"reason"`
}

// RecipientInteractionFinalizeStart is recipient.interaction_finalize_start:
// the window for recording a call's disposition and notes opened.
type RecipientInteractionFinalizeStart struct {
	Envelope
	TimeoutS int `json:"timeout_s"`
}

// RecipientInteractionFinalizeEnd is recipient.interaction_finalize_end:
// that window closed.
type RecipientInteractionFinalizeEnd struct {
	Envelope
	Disposition string `json:"disposition,omitempty"`
	Notes       string `json:"notes,omitempty"`
	DurationMS  int64  `json:"duration_ms"`
	TimedOut    bool   `json:"timed_out"`
}

// ---- session events -----------------------------------------------------

// SessionCreate is session.create: a call session was established.
type SessionCreate struct {
	Envelope
	CallerIDName   string    `json:"caller_id_name,omitempty"`
	CallerIDNumber string    `json:"caller_id_number"`
	Callee         string    `json:"callee"`
	Direction      Direction `json:"direction"`
}

// SessionDelete is session.delete: a call session ended.
type SessionDelete struct {
	Envelope
	DisconnectCauseCode int   `json:"disconnect_cause_code"`
	DisconnectCause     Cause `json:"disconnect_cause"`
	HangupBy            Party `json:"hangup_by"`
	DurationMS          int64 `json:"duration_ms"`
}

// ---- encoding of own fields ---------------------------------------------
//
// Each appendFields writes the event's own fields in catalogue order and
// checks them; the envelope is written by the caller. Tests hold these in
// step with the catalogue (TestStructTagsMatchCatalogue, round trips).

func (p *QueueCreate) appendFields(e encoder) encoder {
	e.text("queue_name", p.QueueName, true, maxShortText)
	enumField(&e, "strategy", "strategy", p.Strategy, Strategies)
	e.int("max_wait_s", int64(p.MaxWaitS), 0)
	e.int("max_size", int64(p.MaxSize), 0)
	e.int("offer_timeout_s", int64(p.OfferTimeoutS), 1)
	e.int("wrapup_s", int64(p.WrapupS), 0)
	return e
}

func (p *QueueDelete) appendFields(e encoder) encoder {
	e.text("queue_name", p.QueueName, true, maxShortText)
	enumField(&e, "reason", "reason", p.Reason, QueueDeleteReasons)
	e.int("waiting", int64(p.Waiting), 0)
	return e
}

func (p *QueueJoin) appendFields(e encoder) encoder {
	e.text("caller_id_name", p.CallerIDName, false, maxShortText)
	e.text("caller_id_number", p.CallerIDNumber, true, maxShortText)
	e.int("position", int64(p.Position), 1)
	e.int("estimated_wait_s", int64(p.EstimatedWaitS), 0)
	return e
}

func (p *QueueLeave) appendFields(e encoder) encoder {
	enumField(&e, "reason", "reason", p.Reason, LeaveReasons)
	e.int("position", int64(p.Position), 1)
	e.int("wait_duration_ms", p.WaitDurationMS, 0)
	return e
}

func (p *QueueDelivered) appendFields(e encoder) encoder {
	e.int("position", int64(p.Position), 1)
	e.int("wait_duration_ms", p.WaitDurationMS, 0)
	return e
}

func (p *RecipientCreate) appendFields(e encoder) encoder {
	e.transition(p.Transition)
	e.text("recipient_name", p.RecipientName, false, maxShortText)
	e.idList("queues", p.Queues)
	return e
}

func (p *RecipientDelete) appendFields(e encoder) encoder {
	e.transition(p.Transition)
	enumField(&e, "reason", "reason", p.Reason, LogoutReasons)
	return e
}

func (p *RecipientReady) appendFields(e encoder) encoder {
	e.transition(p.Transition)
	return e
}

func (p *RecipientAway) appendFields(e encoder) encoder {
	e.transition(p.Transition)
	e.text("reason", p.Reason, false, maxShortText)
	return e
}

func (p *RecipientPause) appendFields(e encoder) encoder {
	e.transition(p.Transition)
	e.text("reason", p.Reason, false, maxShortText)
	e.idList("paused_queues", p.PausedQueues)
	return e
}

func (p *RecipientResume) appendFields(e encoder) encoder {
	e.transition(p.Transition)
	e.int("paused_duration_ms", p.PausedDurationMS, 0)
	e.idList("paused_queues", p.PausedQueues)
	return e
}

func (p *RecipientWrapupStart) appendFields(e encoder) encoder {
	e.transition(p.Transition)
	e.int("wrapup_s", int64(p.WrapupS), 0)
	return e
}

func (p *RecipientWrapupComplete) appendFields(e encoder) encoder {
	e.transition(p.Transition)
	e.int("wrapup_duration_ms", p.WrapupDurationMS, 0)
	return e
}

func (p *RecipientOffer) appendFields(e encoder) encoder {
	e.transition(p.Transition)
	e.text("caller_id_name", p.CallerIDName, false, maxShortText)
	e.text("caller_id_number", p.CallerIDNumber, true, maxShortText)
	e.int("timeout_s", int64(p.TimeoutS), 1)
	e.int("wait_duration_ms", p.WaitDurationMS, 0)
	return e
}

func (p *RecipientReject) appendFields(e encoder) encoder {
	e.transition(p.Transition)
	enumField(&e, "reason", "reason", p.Reason, RejectReasons)
	e.int("ring_duration_ms", p.RingDurationMS, 0)
	return e
}

func (p *RecipientRescind) appendFields(e encoder) encoder {
	e.transition(p.Transition)
	enumField(&e, "reason", "reason", p.Reason, RescindReasons)
	e.int("ring_duration_ms", p.RingDurationMS, 0)
	return e
}

func (p *RecipientDelivered) appendFields(e encoder) encoder {
	e.transition(p.Transition)
	e.text("caller_id_name", p.CallerIDName, false, maxShortText)
	e.text("caller_id_number", p.CallerIDNumber, true, maxShortText)
	e.int("wait_duration_ms", p.WaitDurationMS, 0)
	e.int("ring_duration_ms", p.RingDurationMS, 0)
	return e
}

func (p *RecipientHangup) appendFields(e encoder) encoder {
	e.transition(p.Transition)
	enumField(&e, "hangup_by", "hangup_by", p.HangupBy, Parties)
	e.int("duration_ms", p.DurationMS, 0)
	return e
}

func (p *RecipientExternalCallStart) appendFields(e encoder) encoder {
	e.transition(p.Transition)
	enumField(&e, "direction", "direction", p.Direction, Directions)
	e.text("number", p.Number, false, maxShortText)
	return e
}

func (p *RecipientExternalCallEnd) appendFields(e encoder) encoder {
	e.transition(p.Transition)
	enumField(&e, "direction", "direction", p.Direction, Directions)
	e.int("duration_ms", p.DurationMS, 0)
	return e
}

func (p *RecipientSync) appendFields(e encoder) encoder {
	enumField(&e, "state", "state", p.State, States)
	e.timestamp("state_since", p.StateSince)
	e.int("state_since_ms", p.StateSinceMS, 0)
	e.idList("queues", p.Queues)
	e.idList("paused_queues", p.PausedQueues)
	e.key("active_sessions")
	e.b = append(e.b, '[')
	for i := range p.ActiveSessions {
		s := &p.ActiveSessions[i]
		if i > 0 {
			e.b = append(e.b, ',')
		}
		e.b = append(e.b, '{')
		e.first = true
		e.entity("active_sessions[].session_id", "session_id", s.SessionID, true)
		e.entity("active_sessions[].queue_id", "queue_id", s.QueueID, false)
		enumField(&e, "active_sessions[].direction", "direction", s.Direction, Directions)
		e.timestampAs("active_sessions[].started_at", "started_at", s.StartedAt)
		e.b = append(e.b, '}')
	}
	e.b = append(e.b, ']')
	return e
}

func (p *RecipientWiretapStart) appendFields(e encoder) encoder {
	e.entity("supervisor_id", "supervisor_id", p.SupervisorID, true)
	enumField(&e, "mode", "mode", p.Mode, WiretapModes)
	return e
}

func (p *RecipientWiretapStop) appendFields(e encoder) encoder {
	e.entity("supervisor_id", "supervisor_id", p.SupervisorID, true)
	enumField(&e, "mode", "mode", p.Mode, WiretapModes)
	e.int("duration_ms", p.DurationMS, 0)
	return e
}

func (p *RecipientWiretapFailed) appendFields(e encoder) encoder {
	e.entity("supervisor_id", "supervisor_id", p.SupervisorID, true)
	enumField(&e, "mode", "mode", p.Mode, WiretapModes)
	enumField(&e, "reason", "reason", p.Reason, WiretapFailReasons)
	return e
}

func (p *RecipientInteractionFinalizeStart) appendFields(e encoder) encoder {
	e.int("timeout_s", int64(p.TimeoutS), 0)
	return e
}

func (p *RecipientInteractionFinalizeEnd) appendFields(e encoder) encoder {
	e.text("disposition", p.Disposition, false, maxShortText)
	e.text("notes", p.Notes, false, maxNotes)
	e.int("duration_ms", p.DurationMS, 0)
	e.bool("timed_out", p.TimedOut)
	return e
}

func (p *SessionCreate) appendFields(e encoder) encoder {
	e.text("caller_id_name", p.CallerIDName, false, maxShortText)
	e.text("caller_id_number", p.CallerIDNumber, true, maxShortText)
	e.text("callee", p.Callee, true, maxShortText)
	enumField(&e, "direction", "direction", p.Direction, Directions)
	return e
}

func (p *SessionDelete) appendFields(e encoder) encoder {
	e.int("disconnect_cause_code", int64(p.DisconnectCauseCode), 1)
	enumField(&e, "disconnect_cause", "disconnect_cause", p.DisconnectCause, Causes)
	if e.err == nil && p.DisconnectCause.Code() != p.DisconnectCauseCode {
		e.fail("disconnect_cause_code", causeMismatch(p.DisconnectCauseCode, p.DisconnectCause))
	}
	enumField(&e, "hangup_by", "hangup_by", p.HangupBy, Parties)
	e.int("duration_ms", p.DurationMS, 0)
	return e
}
