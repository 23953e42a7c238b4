package engine

import (
	"cmp"
	"slices"
	"time"

	"github.com/ccevents/ccevents/internal/event"
)

// This file holds the state changes shared by commands and timers. Each
// runs with the account lock held, changes state and emits the events that
// describe the change, in the order they happen.

func (a *account) emitQueueCreate(q *queue) {
	c := q.cfg
	a.emit(&event.QueueCreate{
		Envelope:  event.Envelope{QueueID: c.ID},
		QueueName: c.Name, Strategy: c.Strategy, MaxWaitS: c.MaxWaitS, MaxSize: c.MaxSize,
		OfferTimeoutS: c.OfferTimeoutS, WrapupS: c.WrapupS,
	})
}

func (a *account) emitSync(r *recipient) {
	p := &event.RecipientSync{
		Envelope:       event.Envelope{RecipientID: r.cfg.ID},
		State:          r.state,
		StateSince:     stamp(r.since),
		StateSinceMS:   r.since.UnixMilli(),
		Queues:         slices.Clone(r.cfg.Queues),
		PausedQueues:   r.pausedList(),
		ActiveSessions: []event.ActiveSession{},
	}
	if s := r.call; s != nil {
		p.ActiveSessions = append(p.ActiveSessions, activeSession(s))
	}
	a.emit(p)
}

func activeSession(s *session) event.ActiveSession {
	as := event.ActiveSession{SessionID: s.id, Direction: s.direction, StartedAt: stamp(s.answered)}
	if !s.external {
		as.QueueID = s.queueID
	}
	return as
}

// scheduleSync arms the periodic recipient.sync of every logged-in recipient.
func (a *account) scheduleSync() {
	if a.e.cfg.SyncInterval <= 0 {
		return
	}
	a.syncTimer = a.after(a.e.cfg.SyncInterval, func() {
		for _, r := range a.sortedRecipients() {
			if r.loggedIn() {
				a.emitSync(r)
			}
		}
		a.scheduleSync()
	})
}

func (a *account) ids(s *session, r *recipient) event.Envelope {
	env := event.Envelope{SessionID: s.id}
	if !s.external {
		env.QueueID = s.queueID
	}
	if r != nil {
		env.RecipientID = r.cfg.ID
	}
	return env
}

// offer rings r with waiting caller s.
func (a *account) offer(s *session, r *recipient) {
	q := s.queue
	o := &offer{s: s, r: r, at: a.now}
	s.offers = append(s.offers, o)
	r.offer = o
	tr := a.move(r, event.StateOffered)
	a.emit(&event.RecipientOffer{
		Envelope: a.ids(s, r), Transition: tr,
		CallerIDName: s.callerName, CallerIDNumber: s.callerNumber,
		TimeoutS: q.cfg.OfferTimeoutS, WaitDurationMS: ms(a.now.Sub(s.joined)),
	})
	o.timer = a.after(time.Duration(q.cfg.OfferTimeoutS)*time.Second, func() {
		if r.offer != o {
			return
		}
		a.reject(o, event.RejectTimeout)
		a.dispatch()
	})
}

func (a *account) dropOffer(o *offer) {
	stopTimer(o.timer)
	o.r.offer = nil
	o.s.offers = slices.DeleteFunc(o.s.offers, func(x *offer) bool { return x == o })
}

// reject ends an offer the recipient did not take; the call is not offered
// to them again until everyone eligible has had it. A recipient who cannot
// be reached goes away (redirection on no answer), so no call is offered to
// them until they say they are ready; the others return to their
// availability, held back from the next offer if they rejected this one
// at machine speed (hold.go).
func (a *account) reject(o *offer, reason event.RejectReason) {
	a.dropOffer(o)
	if o.s.excluded == nil {
		o.s.excluded = map[string]bool{}
	}
	o.s.excluded[o.r.cfg.ID] = true
	if reason == event.RejectUnreachable {
		a.setAvail(o.r, event.StateAway)
	}
	tr := a.move(o.r, o.r.avail)
	a.holdAfterReject(o)
	a.emit(&event.RecipientReject{Envelope: a.ids(o.s, o.r), Transition: tr, Reason: reason, RingDurationMS: ms(a.now.Sub(o.at))})
	if reason == event.RejectUnreachable {
		a.persistRecipient(o.r) // away survives a restart like any away
	}
}

// rescind withdraws an offer; the recipient returns to their availability.
func (a *account) rescind(o *offer, reason event.RescindReason) {
	a.dropOffer(o)
	tr := a.move(o.r, o.r.avail)
	a.emit(&event.RecipientRescind{Envelope: a.ids(o.s, o.r), Transition: tr, Reason: reason, RingDurationMS: ms(a.now.Sub(o.at))})
}

// withdraw rescinds whatever is ringing r because r became unavailable.
func (a *account) withdraw(r *recipient) {
	if r.offer != nil {
		a.rescind(r.offer, event.RescindRecipientUnavailable)
	}
}

// deliver connects the caller of offer o to its recipient.
func (a *account) deliver(o *offer) {
	s, r, q := o.s, o.r, o.s.queue
	pos := q.position(s)
	wait := ms(a.now.Sub(s.joined))
	a.dropOffer(o)
	stopTimer(s.maxWait)
	a.emit(&event.QueueDelivered{Envelope: a.ids(s, r), Position: pos, WaitDurationMS: wait})
	// Today's totals (counted by emit) are stored behind the event.
	a.persistQueue(q)
	tr := a.move(r, event.StateBusy)
	a.emit(&event.RecipientDelivered{
		Envelope: a.ids(s, r), Transition: tr,
		CallerIDName: s.callerName, CallerIDNumber: s.callerNumber,
		WaitDurationMS: wait, RingDurationMS: ms(a.now.Sub(o.at)),
	})
	for _, other := range slices.Clone(s.offers) {
		a.rescind(other, event.RescindAnsweredElsewhere)
	}
	a.emit(&event.QueueLeave{Envelope: a.ids(s, r), Reason: event.LeaveDelivered, Position: pos, WaitDurationMS: wait})
	q.waiting = slices.Delete(q.waiting, pos-1, pos)
	s.phase, s.recipient, s.answered = phaseConnected, r, a.now
	r.call = s
	r.calls++
	a.persistSession(s)
}

// leave takes a waiting caller out of its queue: what rings is rescinded
// with rr, then the caller leaves with lr. The session stays; the caller
// decides whether it ends.
func (a *account) leave(s *session, lr event.LeaveReason, rr event.RescindReason) {
	q := s.queue
	for _, o := range slices.Clone(s.offers) {
		a.rescind(o, rr)
	}
	stopTimer(s.maxWait)
	pos := q.position(s)
	a.emit(&event.QueueLeave{Envelope: a.ids(s, nil), Reason: lr, Position: pos, WaitDurationMS: ms(a.now.Sub(s.joined))})
	q.waiting = slices.Delete(q.waiting, pos-1, pos)
	if lr == event.LeaveAbandoned {
		a.persistQueue(q)
	}
}

// endWaiting removes a waiting caller and ends the session at once.
func (a *account) endWaiting(s *session, lr event.LeaveReason, rr event.RescindReason, by event.Party, cause event.Cause) {
	a.leave(s, lr, rr)
	s.phase, s.ended, s.hangupBy, s.cause = phaseEnded, a.now, by, cause
	a.deleteSession(s)
}

// hangup ends a connected queue call. With wrapup the recipient enters
// wrap-up; the finalize window opens either way. At shutdown neither
// opens and the session ends at once.
func (a *account) hangup(s *session, by event.Party, shutdown bool) {
	r := s.recipient
	a.stopWiretap(s)
	s.phase, s.ended, s.hangupBy, s.cause = phaseEnded, a.now, by, event.CauseNormalClearing
	r.call = nil
	talk := ms(a.now.Sub(s.answered))
	if s.wrapupS > 0 && !shutdown {
		tr := a.move(r, event.StateWrapup)
		a.emit(&event.RecipientHangup{Envelope: a.ids(s, r), Transition: tr, HangupBy: by, DurationMS: talk})
		r.wrapup, r.wrapStart, s.wrapupOpen = s, a.now, true
		a.emit(&event.RecipientWrapupStart{
			Envelope:   a.ids(s, r),
			Transition: event.Transition{State: event.StateWrapup, PreviousState: event.StateWrapup},
			WrapupS:    s.wrapupS,
		})
		r.wrapTimer = a.after(time.Duration(s.wrapupS)*time.Second, func() {
			if r.wrapup != s {
				return
			}
			a.endWrapup(r)
			a.dispatch()
		})
	} else {
		tr := a.move(r, r.avail)
		a.emit(&event.RecipientHangup{Envelope: a.ids(s, r), Transition: tr, HangupBy: by, DurationMS: talk})
		a.finishHandle(r, s)
	}
	if shutdown {
		s.cause = event.CauseSystemShutdown
		a.deleteSession(s)
		return
	}
	s.finalizeOpen, s.finalizeAt = true, a.now
	a.emit(&event.RecipientInteractionFinalizeStart{Envelope: a.ids(s, r), TimeoutS: s.finalizeS})
	s.finalize = a.after(time.Duration(s.finalizeS)*time.Second, func() {
		if !s.finalizeOpen {
			return
		}
		a.closeFinalize(s, "", "", true)
	})
}

// endWrapup ends r's wrap-up; r returns to their availability.
func (a *account) endWrapup(r *recipient) {
	s := r.wrapup
	stopTimer(r.wrapTimer)
	r.wrapup, r.wrapTimer = nil, nil
	tr := a.move(r, r.avail)
	a.emit(&event.RecipientWrapupComplete{Envelope: a.ids(s, r), Transition: tr, WrapupDurationMS: ms(a.now.Sub(r.wrapStart))})
	a.finishHandle(r, s)
	s.wrapupOpen = false
	a.maybeDelete(s)
}

// finishHandle records that r is free again after s.
func (a *account) finishHandle(r *recipient, s *session) {
	r.idleSince = a.now
	if q := a.queues[s.queueID]; q != nil && q == s.queue {
		q.recordHandle(a.now.Sub(s.answered))
	}
}

func (a *account) closeFinalize(s *session, disposition, notes string, timedOut bool) {
	stopTimer(s.finalize)
	s.finalizeOpen = false
	a.emit(&event.RecipientInteractionFinalizeEnd{
		Envelope:    a.ids(s, s.recipient),
		Disposition: disposition, Notes: notes,
		DurationMS: ms(a.now.Sub(s.finalizeAt)), TimedOut: timedOut,
	})
	a.maybeDelete(s)
}

func (a *account) maybeDelete(s *session) {
	if s.phase == phaseEnded && !s.wrapupOpen && !s.finalizeOpen {
		a.deleteSession(s)
	}
}

// deleteSession publishes session.delete, the last event of a session.
func (a *account) deleteSession(s *session) {
	stopTimer(s.maxWait)
	stopTimer(s.finalize)
	code := s.cause.Code()
	a.emit(&event.SessionDelete{
		Envelope:            a.ids(s, s.recipient),
		DisconnectCauseCode: code, DisconnectCause: s.cause,
		HangupBy: s.hangupBy, DurationMS: ms(s.ended.Sub(s.created)),
	})
	delete(a.sessions, s.id)
	a.forgetSession(s)
}

// endExternal ends r's external call.
func (a *account) endExternal(r *recipient, by event.Party, cause event.Cause) {
	s := r.call
	a.stopWiretap(s)
	r.call = nil
	r.idleSince = a.now
	s.phase, s.ended, s.hangupBy, s.cause = phaseEnded, a.now, by, cause
	tr := a.move(r, r.avail)
	a.emit(&event.RecipientExternalCallEnd{Envelope: a.ids(s, r), Transition: tr, Direction: s.direction, DurationMS: ms(a.now.Sub(s.answered))})
	a.deleteSession(s)
}

func (a *account) stopWiretap(s *session) {
	w := s.wiretap
	if w == nil {
		return
	}
	s.wiretap = nil
	a.emit(&event.RecipientWiretapStop{
		Envelope:     event.Envelope{RecipientID: s.recipient.cfg.ID, SessionID: s.id},
		SupervisorID: w.supervisor, Mode: w.mode, DurationMS: ms(a.now.Sub(w.started)),
	})
}

// endAll ends everything running for an unload: waiting callers leave,
// calls end with SYSTEM_SHUTDOWN, open windows close, queues stop.
// Recipients stay logged in (in the store) for whoever loads the account next.
func (a *account) endAll() {
	stopTimer(a.syncTimer)
	queues := a.sortedQueues()
	waiting := make([]int, len(queues))
	for i, q := range queues {
		waiting[i] = len(q.waiting)
		for len(q.waiting) > 0 {
			a.endWaiting(q.waiting[0], event.LeaveQueueDeleted, event.RescindQueueDeleted, event.PartySystem, event.CauseSystemShutdown)
		}
	}
	for _, s := range a.sortedSessions() {
		switch {
		case s.phase == phaseConnected && s.external:
			a.endExternal(s.recipient, event.PartySystem, event.CauseSystemShutdown)
		case s.phase == phaseConnected:
			a.hangup(s, event.PartySystem, true)
		}
	}
	for _, s := range a.sortedSessions() {
		if s.wrapupOpen {
			a.endWrapup(s.recipient)
		}
		if s.finalizeOpen {
			a.closeFinalize(s, "", "", false)
		}
	}
	for i, q := range queues {
		a.emit(&event.QueueDelete{Envelope: event.Envelope{QueueID: q.cfg.ID}, QueueName: q.cfg.Name, Reason: event.QueueShutdown, Waiting: waiting[i]})
	}
	for _, r := range a.recipients {
		stopTimer(r.wrapTimer)
	}
	a.stopStats(queues)
}

func (a *account) sortedSessions() []*session {
	out := make([]*session, 0, len(a.sessions))
	for _, s := range a.sessions {
		out = append(out, s)
	}
	slices.SortFunc(out, func(x, y *session) int {
		if c := x.created.Compare(y.created); c != 0 {
			return c
		}
		return cmp.Compare(x.id, y.id)
	})
	return out
}
