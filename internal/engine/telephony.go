package engine

import (
	"context"

	"github.com/ccevents/ccevents/internal/event"
)

// CallEnd is how a call ended as a telephony adapter saw it: who hung up
// and, when the signalling said (a SIP Reason header, a failure status),
// the disconnection cause session.delete is to carry.
type CallEnd struct {
	// HangupBy is caller (the default), recipient or system.
	HangupBy event.Party `json:"hangup_by,omitempty"`
	// Cause is the disconnection cause; empty leaves it to the engine:
	// ORIGINATOR_CANCEL for a caller who gives up waiting, NORMAL_CLEARING
	// for a call that was answered.
	Cause event.Cause `json:"disconnect_cause,omitempty"`
}

// EndCall reports that a call ended, like Hangup, with the disconnection
// cause the telephony saw. A queue call still waiting can only end by the
// caller; an external call ends like EndExternalCall.
func (e *Engine) EndCall(ctx context.Context, accountID, sessionID string, end CallEnd) error {
	by, err := hangupBy(end.HangupBy, event.PartyCaller)
	if err != nil {
		return err
	}
	if end.Cause != "" && !end.Cause.Valid() {
		return invalidf("disconnect_cause %q is not one of the documented causes (see the events catalogue)", short(string(end.Cause)))
	}
	cause := func(def event.Cause) event.Cause {
		if end.Cause != "" {
			return end.Cause
		}
		return def
	}
	return e.do(ctx, accountID, func(a *account) error {
		s, err := a.session(sessionID)
		if err != nil {
			return err
		}
		switch s.phase {
		case phaseWaiting:
			if by != event.PartyCaller {
				return conflictf("call %s has not been answered; only the caller can hang up before a recipient answers", s.id)
			}
			a.endWaiting(s, event.LeaveAbandoned, event.RescindAbandoned, by, cause(event.CauseOriginatorCancel))
		case phaseConnected:
			if s.external {
				a.endExternal(s.recipient, by, cause(event.CauseNormalClearing))
			} else {
				a.hangup(s, by, false)
				// session.delete follows when wrap-up and finalize close.
				s.cause = cause(s.cause)
			}
		default:
			return conflictf("call %s has already ended", s.id)
		}
		a.dispatch()
		return nil
	})
}

// FailWiretap reports that monitoring a supervisor asked for could not be
// set up after it started (the supervisor's phone did not answer, the call
// ended while it rang): recipient.wiretap_failed with the reason ends the
// monitoring recipient.wiretap_start began. reason is
// supervisor_unreachable, session_ended or not_permitted.
func (e *Engine) FailWiretap(ctx context.Context, accountID string, w Wiretap, reason event.WiretapFailReason) error {
	if err := w.check(); err != nil {
		return err
	}
	switch reason {
	case event.WiretapSupervisorUnreachable, event.WiretapSessionEnded, event.WiretapNotPermitted:
	default:
		return invalidf("reason must be supervisor_unreachable, session_ended or not_permitted; got %q", short(string(reason)))
	}
	return e.doWiretap(ctx, accountID, &w, func(a *account, r *recipient) error {
		s, err := w.monitored(r)
		if err != nil {
			return err
		}
		tap := s.wiretap
		s.wiretap = nil
		a.emit(&event.RecipientWiretapFailed{
			Envelope:     event.Envelope{RecipientID: r.cfg.ID, SessionID: s.id},
			SupervisorID: tap.supervisor, Mode: tap.mode, Reason: reason,
		})
		return nil
	})
}
