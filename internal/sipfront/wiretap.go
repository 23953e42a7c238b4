package sipfront

import (
	"context"
	"time"

	"github.com/emiago/diago"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/sipfront/sounds"
	"github.com/ccevents/ccevents/internal/sipstore"
)

// This file carries wiretaps: a supervisor's phone joins a call
// listen-only, either by dialling the feature code (listenIn) or because
// the engine started monitoring through the REST API (onWiretapStart).
// Either way the tap is put on the call before anything can stop it, so
// a wiretap_stop that comes while the phone still rings or hears the
// announcement ends it too.

// tap is a supervisor listening in on a call.
type tap struct {
	supervisor string
	ctx        context.Context // ends when the wiretap stops, fails, or the call ends
	stop       context.CancelFunc
	mix        *mixer // nil until the supervisor's leg hears the call
}

// startTap puts a supervisor's tap on the call; nil when the call is
// over or monitored already. A tap that was stopped but whose leg is
// still hanging up gives way: a wiretap started again right after a stop
// is the new one, and the old leg's dropTap leaves it alone.
func (c *call) startTap(supervisor string) *tap {
	c.mu.Lock()
	defer c.mu.Unlock()
	old := c.tap
	if c.ctx.Err() != nil || old != nil && old.ctx.Err() == nil {
		return nil
	}
	ctx, stop := context.WithCancel(c.ctx)
	c.tap = &tap{supervisor: supervisor, ctx: ctx, stop: stop}
	if old != nil && old.mix != nil {
		c.bridgeLocked() // the old leg hears no more
	}
	return c.tap
}

// stopTap ends the supervisor's tap, if it is the call's.
func (c *call) stopTap(supervisor string) {
	c.mu.Lock()
	t := c.tap
	c.mu.Unlock()
	if t != nil && t.supervisor == supervisor {
		t.stop()
	}
}

// mixTap sends the call's audio to the tap's mixer; false when the tap
// is no longer the call's.
func (c *call) mixTap(t *tap, m *mixer) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.tap != t || t.ctx.Err() != nil {
		return false
	}
	t.mix = m
	c.bridgeLocked()
	return true
}

// dropTap takes the tap off the call and ends it.
func (c *call) dropTap(t *tap) {
	c.mu.Lock()
	if c.tap == t {
		c.tap = nil
		c.bridgeLocked()
	}
	c.mu.Unlock()
	t.stop()
}

// listenIn serves the wiretap feature code: a supervisor allowed to
// listen in dials *44 and the recipient's id (or SIP user).
func (s *Server) listenIn(d *diago.DialogServerSession, sup sipstore.Credential, target string) {
	if !sup.Wiretap {
		s.m.refused.WithLabelValues("forbidden").Inc()
		_ = d.Respond(403, "Forbidden: this phone may not listen in", nil)
		return
	}
	recipient := target
	if c, ok := s.cfg.Store.User(target); ok && c.AccountID == sup.AccountID {
		recipient = c.RecipientID
	}
	w := engine.Wiretap{RecipientID: recipient, SupervisorID: sup.RecipientID, Mode: event.WiretapListen}
	med, err := d.Answer(answerOpts)
	if err != nil {
		return
	}
	l, err := newLeg(med)
	if err != nil {
		s.hangup(d, event.CauseNormalTemporaryFailure)
		return
	}
	go l.receive() // what the supervisor says goes nowhere: listen only
	s.m.legs.WithLabelValues("supervisor").Inc()
	defer s.m.legs.WithLabelValues("supervisor").Dec()
	c := s.callOf(sup.AccountID, recipient)
	var t *tap
	if c != nil {
		t = c.startTap(sup.RecipientID)
	}
	// The wiretap_start this causes is marked as the phone's own, so that
	// it does not also ring the supervisor's phone; onWiretapStart takes
	// the mark.
	key := tapKey(sup.AccountID, recipient, sup.RecipientID)
	s.ownTaps.Store(key, struct{}{})
	ctx, cancel := s.engineCtx()
	_, err = engine.StartWiretap.Call(ctx, s.cfg.Engine, sup.AccountID, w)
	cancel()
	if err != nil {
		s.ownTaps.Delete(key) // the engine refused: no wiretap_start comes
		if t != nil {
			c.dropTap(t)
		}
		// wiretap_failed is published; the supervisor hears why not.
		_ = l.play(d.Context(), s.sounds[sounds.NoAgents], false)
		s.hangup(d, event.CauseNormalClearing)
		return
	}
	if t == nil {
		// The recipient's call is not one the front end carries.
		s.failTap(sup.AccountID, w, event.WiretapSessionEnded)
		s.hangup(d, event.CauseNormalClearing)
		return
	}
	s.tapLeg(d, d.InviteRequest.CallID().Value(), l, c, t, w)
}

func tapKey(acc, recipient, supervisor string) string {
	return acc + "/" + recipient + "/" + supervisor
}

// onWiretapStart rings a supervisor's phone when monitoring started
// through the REST API; a phone that cannot be reached fails the wiretap.
// It runs in the event loop, so the tap is on the call before a
// wiretap_stop that follows is read.
func (s *Server) onWiretapStart(ev engineEvent) {
	if _, own := s.ownTaps.LoadAndDelete(tapKey(ev.AccountID, ev.RecipientID, ev.SupervisorID)); own {
		return // the supervisor dialled in: the phone is on already
	}
	cred, ok := s.cfg.Store.CredentialOf(ev.AccountID, ev.SupervisorID)
	if !ok {
		return // a supervisor without a phone listens some other way
	}
	w := engine.Wiretap{RecipientID: ev.RecipientID, SupervisorID: ev.SupervisorID, Mode: event.WiretapListen}
	c := s.calls.get(ev.AccountID, ev.SessionID)
	var t *tap
	if c != nil {
		t = c.startTap(ev.SupervisorID)
	}
	if t == nil {
		go s.failTap(ev.AccountID, w, event.WiretapSessionEnded)
		return
	}
	if !s.legs.enter() { // shutting down
		c.dropTap(t)
		go s.failTap(ev.AccountID, w, event.WiretapSupervisorUnreachable)
		return
	}
	go func() {
		defer s.legs.leave()
		defer c.dropTap(t)
		b, ok := s.reg.lookup(cred.User, time.Now())
		if !ok || b.accountID != ev.AccountID {
			s.log.Debug("a supervisor's phone is not registered", "supervisor", ev.SupervisorID)
			s.failTap(ev.AccountID, w, event.WiretapSupervisorUnreachable)
			return
		}
		d, err := s.dg.NewDialog(b.target(), diago.NewDialogOptions{Transport: b.transport})
		if err != nil {
			s.failTap(ev.AccountID, w, event.WiretapSupervisorUnreachable)
			return
		}
		defer func() { _ = d.Close() }()
		ctx, cancel := context.WithTimeout(t.ctx, s.cfg.RingTimeout)
		defer cancel()
		opts := diago.InviteClientOptions{}
		opts.WithCaller("Listen in", ev.RecipientID, s.host)
		s.m.legs.WithLabelValues("supervisor").Inc()
		defer s.m.legs.WithLabelValues("supervisor").Dec()
		med, err := d.Invite(ctx, opts)
		if err == nil {
			err = d.Ack(ctx)
		}
		if err != nil {
			s.log.Debug("a supervisor's phone did not answer", "supervisor", ev.SupervisorID, "source", b.source, "err", err)
			if t.ctx.Err() == nil { // not stopped meanwhile: the phone failed
				s.failTap(ev.AccountID, w, event.WiretapSupervisorUnreachable)
			}
			return
		}
		l, err := newLeg(med)
		if err != nil {
			s.failTap(ev.AccountID, w, event.WiretapSupervisorUnreachable)
			s.hangup(d, event.CauseNormalTemporaryFailure)
			return
		}
		go l.receive()
		s.tapLeg(d, d.InviteRequest.CallID().Value(), l, c, t, w)
	}()
}

// failTap tells the engine a wiretap could not be carried out.
func (s *Server) failTap(acc string, w engine.Wiretap, reason event.WiretapFailReason) {
	ctx, cancel := s.engineCtx()
	defer cancel()
	if _, err := engine.FailWiretap.Call(ctx, s.cfg.Engine, acc, engine.FailWiretapRequest{Wiretap: w, Reason: reason}); err != nil {
		s.log.Debug("fail a wiretap", "recipient", w.RecipientID, "supervisor", w.SupervisorID, "err", err)
	}
}

// tapLeg gives a supervisor's answered leg the call's audio, after an
// announcement, until the supervisor hangs up or the tap ends.
func (s *Server) tapLeg(d interface {
	Hangup(context.Context) error
	Context() context.Context
}, callID string, l *leg, c *call, t *tap, w engine.Wiretap) {
	defer c.dropTap(t)
	ctx, cancel := context.WithCancel(t.ctx)
	defer cancel()
	defer context.AfterFunc(d.Context(), cancel)()
	_ = l.play(ctx, s.sounds[sounds.Monitor], false)
	m := &mixer{}
	if c.mixTap(t, m) {
		go m.run(ctx, l)
	}
	<-ctx.Done()
	if d.Context().Err() != nil && t.ctx.Err() == nil { // the supervisor hung up
		s.byeCause(callID, "") // why does not matter here
		ectx, ecancel := s.engineCtx()
		_, err := engine.StopWiretap.Call(ectx, s.cfg.Engine, c.acc, w)
		ecancel()
		if err != nil {
			s.log.Debug("stop a wiretap", "recipient", w.RecipientID, "supervisor", w.SupervisorID, "err", err)
		}
		return
	}
	s.hangup(d, event.CauseNormalClearing) // wiretap_stop, or the call ended
}
