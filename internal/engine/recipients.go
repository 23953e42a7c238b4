package engine

import (
	"context"
	"slices"
	"unicode/utf8"

	"github.com/ccevents/ccevents/internal/event"
)

// CreateRecipient configures a recipient, logged out. Every queue it names
// must exist.
func (e *Engine) CreateRecipient(ctx context.Context, accountID string, cfg RecipientConfig) (Recipient, error) {
	if err := cfg.normalize(); err != nil {
		return Recipient{}, err
	}
	return reply(ctx, e.do, accountID, func(a *account) (Recipient, error) {
		if a.recipients[cfg.ID] != nil {
			return Recipient{}, conflictf("recipient %s already exists", cfg.ID)
		}
		if len(a.recipients) >= maxRecipients {
			return Recipient{}, conflictf("account %s already has the maximum of %d recipients", accountID, maxRecipients)
		}
		if err := a.checkQueues(cfg.Queues); err != nil {
			return Recipient{}, err
		}
		r := a.addRecipient(cfg)
		a.persistRecipient(r)
		return a.recipientView(r), nil
	})
}

// UpdateRecipient replaces a recipient's name and queues. A call ringing
// from a queue the recipient no longer serves is rescinded; a logged-in
// recipient gets a recipient.sync with the new queues.
func (e *Engine) UpdateRecipient(ctx context.Context, accountID, recipientID string, cfg RecipientConfig) (Recipient, error) {
	if err := matchPathID("recipient", &cfg.ID, recipientID); err != nil {
		return Recipient{}, err
	}
	if err := cfg.normalize(); err != nil {
		return Recipient{}, err
	}
	return reply(ctx, e.do, accountID, func(a *account) (Recipient, error) {
		r, err := a.recipient(recipientID)
		if err != nil {
			return Recipient{}, err
		}
		if err := a.checkQueues(cfg.Queues); err != nil {
			return Recipient{}, err
		}
		for _, qid := range r.cfg.Queues {
			if slices.Contains(cfg.Queues, qid) {
				continue
			}
			if r.offer != nil && r.offer.s.queueID == qid {
				a.withdraw(r)
			}
			delete(r.paused, qid)
			a.queues[qid].removeMember(r)
		}
		for _, qid := range cfg.Queues {
			a.queues[qid].addMember(r)
		}
		r.cfg = cfg
		a.persistRecipient(r)
		if r.loggedIn() {
			a.emitSync(r)
		}
		a.dispatch()
		return a.recipientView(r), nil
	})
}

// DeleteRecipient removes a recipient, logging them out first (reason
// deleted). A recipient on a call cannot be removed.
func (e *Engine) DeleteRecipient(ctx context.Context, accountID, recipientID string) error {
	return e.do(ctx, accountID, func(a *account) error {
		r, err := a.recipient(recipientID)
		if err != nil {
			return err
		}
		if r.call != nil {
			return conflictf("recipient %s is on call %s; end the call before removing them", r.cfg.ID, r.call.id)
		}
		if r.loggedIn() {
			a.logout(r, event.LogoutDeleted)
		}
		for _, qid := range r.cfg.Queues {
			a.queues[qid].removeMember(r)
		}
		delete(a.recipients, recipientID)
		a.forget(recipientKey(a.id, recipientID))
		a.dispatch()
		return nil
	})
}

// Recipients lists the account's recipients, sorted by id.
func (e *Engine) Recipients(ctx context.Context, accountID string) ([]Recipient, error) {
	return reply(ctx, e.read, accountID, func(a *account) ([]Recipient, error) {
		out := make([]Recipient, 0, len(a.recipients)) // never nil: a list with nothing in it is [] in JSON
		for _, r := range a.sortedRecipients() {
			out = append(out, a.recipientView(r))
		}
		return out, nil
	})
}

// Recipient reports one recipient.
func (e *Engine) Recipient(ctx context.Context, accountID, recipientID string) (Recipient, error) {
	return reply(ctx, e.read, accountID, func(a *account) (Recipient, error) {
		r, err := a.recipient(recipientID)
		if err != nil {
			return Recipient{}, err
		}
		return a.recipientView(r), nil
	})
}

// SetStatus applies a status action to a recipient:
//
//   - login: logged_out → ready (recipient.create).
//   - logout: → logged_out (recipient.delete); a ringing call is rescinded
//     and wrap-up ends first; refused while on a call.
//   - ready / away: change availability. From ready or away the state
//     changes at once (recipient.ready / recipient.away); a ringing call is
//     rescinded before going away; in wrap-up, wrap-up ends first; on a
//     call, the recipient goes there when the call ends.
//   - pause / resume: stop or restart offers from one queue the recipient
//     serves (recipient.pause / recipient.resume); a call ringing from
//     that queue is rescinded.
//
// Impossible actions (ready while logged out, pausing a queue twice) are
// refused with a KindConflict error saying why.
func (e *Engine) SetStatus(ctx context.Context, accountID, recipientID string, req StatusRequest) (Recipient, error) {
	if utf8.RuneCountInString(req.Reason) > maxNameLen {
		return Recipient{}, invalidf("reason is longer than %d characters", maxNameLen)
	}
	switch req.Action {
	case ActionLogin, ActionLogout, ActionReady, ActionAway:
	case ActionPause, ActionResume:
		if req.QueueID == "" {
			return Recipient{}, invalidf("%s needs the queue_id of the queue to %s", req.Action, req.Action)
		}
	default:
		return Recipient{}, invalidf("action must be one of login, logout, ready, away, pause, resume; got %q", short(string(req.Action)))
	}
	return reply(ctx, e.do, accountID, func(a *account) (Recipient, error) {
		r, err := a.recipient(recipientID)
		if err != nil {
			return Recipient{}, err
		}
		if err := a.setStatus(r, req); err != nil {
			return Recipient{}, err
		}
		a.persistRecipient(r)
		a.dispatch()
		return a.recipientView(r), nil
	})
}

func (a *account) setStatus(r *recipient, req StatusRequest) error {
	id := r.cfg.ID
	if req.Action == ActionLogin {
		if r.loggedIn() {
			return conflictf("recipient %s is already logged in", id)
		}
		clear(r.paused)
		r.calls, r.idleSince = 0, a.now
		a.setAvail(r, event.StateReady)
		r.availSince = a.now
		tr := a.move(r, event.StateReady)
		a.emit(&event.RecipientCreate{Envelope: event.Envelope{RecipientID: id}, Transition: tr, RecipientName: r.cfg.Name, Queues: slices.Clone(r.cfg.Queues)})
		return nil
	}
	if !r.loggedIn() {
		verb := map[Action]string{ActionLogout: "logging out", ActionReady: "going ready", ActionAway: "going away", ActionPause: "pausing a queue", ActionResume: "resuming a queue"}[req.Action]
		if req.Action == ActionLogout {
			return conflictf("recipient %s is already logged out", id)
		}
		return conflictf("recipient %s is logged out; log in before %s", id, verb)
	}
	switch req.Action {
	case ActionLogout:
		if r.call != nil {
			return conflictf("recipient %s is on call %s; hang up before logging out", id, r.call.id)
		}
		a.logout(r, event.LogoutRequested)
	case ActionReady:
		switch r.state {
		case event.StateReady, event.StateOffered:
			return conflictf("recipient %s is already ready", id)
		case event.StateBusy, event.StateExternalCall:
			if r.avail == event.StateReady {
				return conflictf("recipient %s is on a call and will be ready when it ends", id)
			}
			a.setAvail(r, event.StateReady)
		case event.StateWrapup:
			a.endWrapup(r)
			if r.state == event.StateAway {
				a.becomeReady(r)
			}
		case event.StateAway:
			a.becomeReady(r)
		}
	case ActionAway:
		switch r.state {
		case event.StateAway:
			return conflictf("recipient %s is already away", id)
		case event.StateBusy, event.StateExternalCall, event.StateWrapup:
			if r.avail == event.StateAway {
				return conflictf("recipient %s is busy and will be away when that ends", id)
			}
			if r.state != event.StateWrapup {
				a.setAvail(r, event.StateAway)
				return nil
			}
			a.endWrapup(r)
		case event.StateOffered:
			a.withdraw(r)
		}
		a.setAvail(r, event.StateAway)
		tr := a.move(r, event.StateAway)
		a.emit(&event.RecipientAway{Envelope: event.Envelope{RecipientID: id}, Transition: tr, Reason: req.Reason})
	case ActionPause:
		if a.queues[req.QueueID] == nil {
			return notFoundf("queue %s does not exist", short(req.QueueID))
		}
		if !r.serves(req.QueueID) {
			return conflictf("recipient %s does not serve queue %s", id, req.QueueID)
		}
		if r.isPaused(req.QueueID) {
			return conflictf("recipient %s has already paused queue %s", id, req.QueueID)
		}
		if r.offer != nil && r.offer.s.queueID == req.QueueID {
			a.withdraw(r)
		}
		r.paused[req.QueueID] = a.now
		a.emit(&event.RecipientPause{
			Envelope:   event.Envelope{RecipientID: id, QueueID: req.QueueID},
			Transition: event.Transition{State: r.state, PreviousState: r.state},
			Reason:     req.Reason, PausedQueues: r.pausedList(),
		})
	case ActionResume:
		since, ok := r.paused[req.QueueID]
		if !ok {
			return conflictf("recipient %s has not paused queue %s", id, short(req.QueueID))
		}
		delete(r.paused, req.QueueID)
		a.emit(&event.RecipientResume{
			Envelope:         event.Envelope{RecipientID: id, QueueID: req.QueueID},
			Transition:       event.Transition{State: r.state, PreviousState: r.state},
			PausedDurationMS: ms(a.now.Sub(since)), PausedQueues: r.pausedList(),
		})
	}
	return nil
}

func (a *account) becomeReady(r *recipient) {
	a.setAvail(r, event.StateReady)
	r.idleSince = a.now
	tr := a.move(r, event.StateReady)
	a.emit(&event.RecipientReady{Envelope: event.Envelope{RecipientID: r.cfg.ID}, Transition: tr})
}

// logout logs r out; r is not on a call.
func (a *account) logout(r *recipient, reason event.LogoutReason) {
	a.withdraw(r)
	if r.wrapup != nil {
		a.endWrapup(r)
	}
	clear(r.paused)
	r.avail = ""
	tr := a.move(r, event.StateLoggedOut)
	a.emit(&event.RecipientDelete{Envelope: event.Envelope{RecipientID: r.cfg.ID}, Transition: tr, Reason: reason})
}

// Sync publishes a recipient.sync with the recipient's full current state,
// logged in or not.
func (e *Engine) Sync(ctx context.Context, accountID, recipientID string) error {
	return e.do(ctx, accountID, func(a *account) error {
		r, err := a.recipient(recipientID)
		if err != nil {
			return err
		}
		a.emitSync(r)
		return nil
	})
}

func (a *account) recipient(id string) (*recipient, error) {
	r := a.recipients[id]
	if r == nil {
		return nil, notFoundf("recipient %s does not exist", short(id))
	}
	return r, nil
}

func (a *account) checkQueues(ids []string) error {
	for _, qid := range ids {
		if a.queues[qid] == nil {
			return invalidf("queue %s does not exist; create it before assigning recipients to it", qid)
		}
	}
	return nil
}

func (a *account) recipientView(r *recipient) Recipient {
	v := Recipient{
		RecipientConfig: r.cfg,
		State:           r.state,
		Since:           stamp(r.since),
		SinceMS:         r.since.UnixMilli(),
		PausedQueues:    r.pausedList(),
	}
	v.Queues = slices.Clone(r.cfg.Queues)
	if r.loggedIn() {
		v.Availability = r.avail
	}
	if r.call != nil {
		as := activeSession(r.call)
		v.ActiveSession = &as
	}
	if o := r.offer; o != nil {
		v.Offer = &Offer{SessionID: o.s.id, QueueID: o.s.queueID, OfferedAt: stamp(o.at)}
	}
	return v
}
