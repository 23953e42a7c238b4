package engine

import (
	"context"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ccevents/ccevents/internal/event"
)

// Arrive reports a call arriving in a queue: session.create, then
// queue.join with the caller's position and estimated wait, then offers as
// recipients are eligible. A full queue takes the caller in and out at
// once (leave queue_full) and ends the call.
func (e *Engine) Arrive(ctx context.Context, accountID string, c Arrival) (Call, error) {
	if err := checkSessionID(c.SessionID); err != nil {
		return Call{}, err
	}
	if c.QueueID == "" {
		return Call{}, invalidf("queue_id is required: the queue the call arrives in")
	}
	c.CallerIDNumber = strings.TrimSpace(c.CallerIDNumber)
	if c.CallerIDNumber == "" {
		c.CallerIDNumber = "anonymous"
	}
	for name, v := range map[string]string{"caller_id_name": c.CallerIDName, "caller_id_number": c.CallerIDNumber, "callee": c.Callee} {
		if utf8.RuneCountInString(v) > maxNameLen {
			return Call{}, invalidf("%s is longer than %d characters", name, maxNameLen)
		}
	}
	if c.SessionID == "" {
		c.SessionID = event.NewEventID()
	}
	return reply(ctx, e.do, accountID, func(a *account) (Call, error) {
		q, err := a.queue(c.QueueID)
		if err != nil {
			return Call{}, err
		}
		if err := a.admit(c.SessionID); err != nil {
			return Call{}, err
		}
		callee := c.Callee
		if callee == "" {
			callee = q.cfg.ID
		}
		a.joins++
		s := &session{
			id: c.SessionID, queue: q, queueID: q.cfg.ID,
			callerName: c.CallerIDName, callerNumber: c.CallerIDNumber, callee: callee,
			direction: event.Inbound, order: a.joins, created: a.now, joined: a.now,
			wrapupS: q.cfg.WrapupS, finalizeS: q.cfg.FinalizeTimeoutS,
		}
		a.sessions[s.id] = s
		a.persistSession(s)
		a.emit(&event.SessionCreate{
			Envelope:     event.Envelope{SessionID: s.id, QueueID: q.cfg.ID},
			CallerIDName: s.callerName, CallerIDNumber: s.callerNumber, Callee: callee, Direction: event.Inbound,
		})
		q.waiting = append(q.waiting, s)
		pos := len(q.waiting)
		est := a.estimatedWait(q, pos)
		a.emit(&event.QueueJoin{Envelope: a.ids(s, nil), CallerIDName: s.callerName, CallerIDNumber: s.callerNumber, Position: pos, EstimatedWaitS: est})
		out := Call{SessionID: s.id, QueueID: q.cfg.ID, State: CallWaiting, Position: pos, EstimatedWaitS: est}
		if q.cfg.MaxSize > 0 && pos > q.cfg.MaxSize {
			a.endWaiting(s, event.LeaveQueueFull, event.RescindQueueTimeout, event.PartySystem, event.CauseNormalCircuitCongestion)
			out.State, out.LeaveReason = CallEnded, event.LeaveQueueFull
			return out, nil
		}
		if q.cfg.MaxWaitS > 0 {
			s.maxWait = a.after(time.Duration(q.cfg.MaxWaitS)*time.Second, func() {
				if s.phase != phaseWaiting || a.sessions[s.id] != s || s.queue == nil {
					return
				}
				a.endWaiting(s, event.LeaveTimeout, event.RescindQueueTimeout, event.PartySystem, event.CauseAllottedTimeout)
				a.dispatch()
			})
		}
		a.dispatch()
		return out, nil
	})
}

// Hangup reports that a call ended. While the caller waits (or it rings)
// only the caller can hang up: the caller abandons (rescind, leave
// abandoned, session.delete ORIGINATOR_CANCEL). A connected call ends with
// recipient.hangup, wrap-up and the finalize window; session.delete
// follows when both close. by is caller, recipient or system; empty means
// caller.
func (e *Engine) Hangup(ctx context.Context, accountID, sessionID string, by event.Party) error {
	return e.EndCall(ctx, accountID, sessionID, CallEnd{HangupBy: by})
}

// Accept reports that a recipient answered a call offered to them:
// queue.delivered, recipient.delivered, then queue.leave delivered; other
// recipients still ringing (ring_all) get a rescind. recipientID may be
// empty when exactly one recipient is being offered the call.
func (e *Engine) Accept(ctx context.Context, accountID, sessionID, recipientID string) error {
	return e.do(ctx, accountID, func(a *account) error {
		o, err := a.offerFor(sessionID, recipientID, "accept")
		if err != nil {
			return err
		}
		a.deliver(o)
		a.dispatch()
		return nil
	})
}

// Reject reports that a recipient turned down a call offered to them
// (recipient.reject); the call is offered to the next eligible recipient.
// reason is declined (the default), busy, unreachable or timeout.
func (e *Engine) Reject(ctx context.Context, accountID, sessionID, recipientID string, reason event.RejectReason) error {
	if reason == "" {
		reason = event.RejectDeclined
	}
	if !reason.Valid() {
		return invalidf("reason must be declined, timeout, busy or unreachable; got %q", short(string(reason)))
	}
	return e.do(ctx, accountID, func(a *account) error {
		o, err := a.offerFor(sessionID, recipientID, "reject")
		if err != nil {
			return err
		}
		a.reject(o, reason)
		a.dispatch()
		return nil
	})
}

func (a *account) offerFor(sessionID, recipientID, verb string) (*offer, error) {
	s, err := a.session(sessionID)
	if err != nil {
		return nil, err
	}
	if s.phase != phaseWaiting {
		return nil, conflictf("call %s is not ringing anyone; there is nothing to %s", s.id, verb)
	}
	if recipientID == "" {
		switch len(s.offers) {
		case 0:
			return nil, conflictf("call %s is not ringing anyone; there is nothing to %s", s.id, verb)
		case 1:
			return s.offers[0], nil
		}
		return nil, invalidf("call %s is ringing %d recipients; say which one is to %s (recipient_id)", s.id, len(s.offers), verb)
	}
	r, err := a.recipient(recipientID)
	if err != nil {
		return nil, err
	}
	o := s.offerTo(r)
	if o == nil {
		return nil, conflictf("call %s is not being offered to recipient %s", s.id, r.cfg.ID)
	}
	return o, nil
}

// Finalize closes a call's disposition/notes window, which opens when the
// call ends (recipient.interaction_finalize_end with timed_out false).
func (e *Engine) Finalize(ctx context.Context, accountID, sessionID string, f Finalization) error {
	if utf8.RuneCountInString(f.Disposition) > maxNameLen {
		return invalidf("disposition is longer than %d characters", maxNameLen)
	}
	if utf8.RuneCountInString(f.Notes) > maxNotesLen {
		return invalidf("notes are longer than %d characters", maxNotesLen)
	}
	return e.do(ctx, accountID, func(a *account) error {
		s, err := a.session(sessionID)
		if err != nil {
			return err
		}
		if s.external {
			return conflictf("call %s is an external call; only queue calls have a finalize window", s.id)
		}
		if !s.finalizeOpen {
			if s.phase == phaseEnded {
				return conflictf("the finalize window of call %s has already closed", s.id)
			}
			return conflictf("the finalize window of call %s opens when the call ends", s.id)
		}
		if f.RecipientID != "" && f.RecipientID != s.recipient.cfg.ID {
			return conflictf("call %s was handled by recipient %s, not %s", s.id, s.recipient.cfg.ID, short(f.RecipientID))
		}
		a.closeFinalize(s, f.Disposition, f.Notes, false)
		return nil
	})
}

// StartExternalCall reports that a recipient began a call that did not
// come from a queue: session.create, then recipient.external_call_start.
// The recipient must be logged in and free (ready or away); a call
// ringing them is rescinded first.
func (e *Engine) StartExternalCall(ctx context.Context, accountID, recipientID string, x ExternalCall) (Call, error) {
	if err := checkSessionID(x.SessionID); err != nil {
		return Call{}, err
	}
	if x.Direction == "" {
		x.Direction = event.Outbound
	}
	if !x.Direction.Valid() {
		return Call{}, invalidf("direction must be inbound or outbound; got %q", short(string(x.Direction)))
	}
	x.Number = strings.TrimSpace(x.Number)
	if x.Number == "" {
		return Call{}, invalidf("number is required: the other party of the external call")
	}
	if utf8.RuneCountInString(x.Number) > maxNameLen {
		return Call{}, invalidf("number is longer than %d characters", maxNameLen)
	}
	if x.SessionID == "" {
		x.SessionID = event.NewEventID()
	}
	return reply(ctx, e.do, accountID, func(a *account) (Call, error) {
		r, err := a.recipient(recipientID)
		if err != nil {
			return Call{}, err
		}
		switch r.state {
		case event.StateLoggedOut:
			return Call{}, conflictf("recipient %s is logged out; log in before starting an external call", r.cfg.ID)
		case event.StateBusy, event.StateExternalCall:
			return Call{}, conflictf("recipient %s is already on call %s", r.cfg.ID, r.call.id)
		case event.StateWrapup:
			return Call{}, conflictf("recipient %s is in wrap-up; go ready or away before starting an external call", r.cfg.ID)
		}
		if err := a.admit(x.SessionID); err != nil {
			return Call{}, err
		}
		a.withdraw(r)
		s := &session{
			id: x.SessionID, direction: x.Direction, external: true, phase: phaseConnected,
			created: a.now, joined: a.now, answered: a.now, recipient: r,
		}
		s.callerNumber, s.callee = r.cfg.ID, x.Number
		if x.Direction == event.Inbound {
			s.callerNumber, s.callee = x.Number, r.cfg.ID
		}
		a.sessions[s.id] = s
		a.persistSession(s)
		a.emit(&event.SessionCreate{
			Envelope:       event.Envelope{SessionID: s.id, RecipientID: r.cfg.ID},
			CallerIDNumber: s.callerNumber, Callee: s.callee, Direction: s.direction,
		})
		r.call = s
		tr := a.move(r, event.StateExternalCall)
		a.emit(&event.RecipientExternalCallStart{Envelope: a.ids(s, r), Transition: tr, Direction: s.direction, Number: x.Number})
		a.dispatch()
		return Call{SessionID: s.id, RecipientID: r.cfg.ID, State: CallConnected}, nil
	})
}

// EndExternalCall reports that a recipient's external call ended:
// recipient.external_call_end, then session.delete. by is who hung up:
// recipient (the default), caller or system.
func (e *Engine) EndExternalCall(ctx context.Context, accountID, recipientID string, by event.Party) error {
	by, err := hangupBy(by, event.PartyRecipient)
	if err != nil {
		return err
	}
	return e.do(ctx, accountID, func(a *account) error {
		r, err := a.recipient(recipientID)
		if err != nil {
			return err
		}
		if r.state != event.StateExternalCall {
			return conflictf("recipient %s is not on an external call", r.cfg.ID)
		}
		a.endExternal(r, by, event.CauseNormalClearing)
		a.dispatch()
		return nil
	})
}

// StartWiretap lets a supervisor monitor a recipient's current call
// (recipient.wiretap_start). When there is nothing to monitor, or someone
// already monitors the call, recipient.wiretap_failed goes out and the
// returned error (KindConflict) says why.
func (e *Engine) StartWiretap(ctx context.Context, accountID string, w Wiretap) error {
	return e.doWiretap(ctx, accountID, &w, func(a *account, r *recipient) error {
		s := r.call
		if s == nil {
			a.emit(&event.RecipientWiretapFailed{
				Envelope:     event.Envelope{RecipientID: r.cfg.ID},
				SupervisorID: w.SupervisorID, Mode: w.Mode, Reason: event.WiretapNoActiveSession,
			})
			return conflictf("recipient %s is not on a call; there is nothing to monitor", r.cfg.ID)
		}
		if s.wiretap != nil {
			a.emit(&event.RecipientWiretapFailed{
				Envelope:     event.Envelope{RecipientID: r.cfg.ID, SessionID: s.id},
				SupervisorID: w.SupervisorID, Mode: w.Mode, Reason: event.WiretapAlreadyMonitored,
			})
			return conflictf("call %s is already monitored by supervisor %s", s.id, s.wiretap.supervisor)
		}
		s.wiretap = &wiretap{supervisor: w.SupervisorID, mode: w.Mode, started: a.now}
		a.emit(&event.RecipientWiretapStart{
			Envelope:     event.Envelope{RecipientID: r.cfg.ID, SessionID: s.id},
			SupervisorID: w.SupervisorID, Mode: w.Mode,
		})
		return nil
	})
}

// StopWiretap ends a supervisor's monitoring (recipient.wiretap_stop).
// Monitoring also stops by itself when the call ends.
func (e *Engine) StopWiretap(ctx context.Context, accountID string, w Wiretap) error {
	return e.doWiretap(ctx, accountID, &w, func(a *account, r *recipient) error {
		s, err := w.monitored(r)
		if err != nil {
			return err
		}
		a.stopWiretap(s)
		return nil
	})
}

// doWiretap checks w and runs op on the recipient it names under the
// account's lock (see do).
func (e *Engine) doWiretap(ctx context.Context, accountID string, w *Wiretap, op func(a *account, r *recipient) error) error {
	if err := w.check(); err != nil {
		return err
	}
	return e.do(ctx, accountID, func(a *account) error {
		r, err := a.recipient(w.RecipientID)
		if err != nil {
			return err
		}
		return op(a, r)
	})
}

// monitored is r's call, when w's supervisor monitors it.
func (w *Wiretap) monitored(r *recipient) (*session, error) {
	if s := r.call; s != nil && s.wiretap != nil && s.wiretap.supervisor == w.SupervisorID {
		return s, nil
	}
	return nil, conflictf("supervisor %s is not monitoring recipient %s", w.SupervisorID, r.cfg.ID)
}

func (w *Wiretap) check() error {
	if w.RecipientID == "" {
		return invalidf("recipient_id is required: the recipient whose call to monitor")
	}
	if !event.ValidEntityID(w.SupervisorID) {
		return invalidf("supervisor_id must be 1-64 characters of A-Z a-z 0-9 _ -, got %q", short(w.SupervisorID))
	}
	if w.Mode == "" {
		w.Mode = event.WiretapListen
	}
	if !w.Mode.Valid() {
		return invalidf("mode must be listen, whisper or barge; got %q", short(string(w.Mode)))
	}
	return nil
}

// checkSessionID checks a call id an adapter chose; empty is fine (the
// engine picks one).
func checkSessionID(id string) error {
	if id != "" && !event.ValidEntityID(id) {
		return invalidf("session_id must be 1-64 characters of A-Z a-z 0-9 _ -, got %q", short(id))
	}
	return nil
}

// hangupBy checks who hung up; empty is def.
func hangupBy(by, def event.Party) (event.Party, error) {
	if by == "" {
		return def, nil
	}
	if !by.Valid() {
		return "", invalidf("hangup_by must be caller, recipient or system; got %q", short(string(by)))
	}
	return by, nil
}

// admit checks that the account can take a new call with this id.
func (a *account) admit(id string) error {
	if a.sessions[id] != nil {
		return conflictf("call %s is already in progress", id)
	}
	if len(a.sessions) >= maxSessions {
		return errorf(KindUnavailable, "account %s has the maximum of %d calls in progress", a.id, maxSessions)
	}
	return nil
}

func (a *account) session(id string) (*session, error) {
	s := a.sessions[id]
	if s == nil {
		return nil, notFoundf("call %s does not exist or has ended", short(id))
	}
	return s, nil
}
