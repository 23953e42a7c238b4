package engine

import (
	"context"
	"encoding/json"

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

// EndCall reports that a call ended with a cause; see Engine.EndCall.
func (r *Router) EndCall(ctx context.Context, accountID, sessionID string, end CallEnd) error {
	_, err := route(ctx, r, request{Op: opEndCall, AccountID: accountID, ID: sessionID}, end, func(ctx context.Context, e *Engine) (none, error) {
		return void(e.EndCall(ctx, accountID, sessionID, end))
	})
	return err
}

const opEndCall = "end_call"

// answerEndCall runs an end_call command that came over the wire.
func (e *Engine) answerEndCall(ctx context.Context, req request) error {
	var end CallEnd
	if len(req.Body) > 0 && json.Unmarshal(req.Body, &end) != nil {
		return invalidf("the command's arguments could not be read")
	}
	return e.EndCall(ctx, req.AccountID, req.ID, end)
}
