package sipfront

import (
	"context"
	"errors"
	"time"

	"github.com/emiago/diago"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/sipfront/sounds"
)

// onOffer rings the offered recipient's phone, when the recipient has one.
// A phone user whose phone is not registered cannot be reached: the offer
// is rejected as unreachable and the engine sends them away, unless
// Config.IgnoreUnregistered leaves it to someone else. It runs in the
// event loop: the ring is recorded before anything can rescind it; the
// ringing itself runs on its own.
func (s *Server) onOffer(ev engineEvent) {
	cred, ok := s.cfg.Store.CredentialOf(ev.AccountID, ev.RecipientID)
	if !ok {
		return // not a phone user: a desktop or the simulator answers
	}
	b, registered := s.reg.lookup(cred.User, time.Now())
	switch {
	case registered && b.accountID == ev.AccountID:
	case s.cfg.IgnoreUnregistered:
		return
	default:
		go s.reject(ev, event.RejectUnreachable)
		return
	}
	c, made := s.calls.open(s, ev.AccountID, ev.SessionID)
	ring := s.cfg.RingTimeout
	if ev.TimeoutS > 0 {
		// The engine's offer timeout normally ends the ring (a reject); the
		// margin lets its event arrive first.
		ring = min(ring, time.Duration(ev.TimeoutS)*time.Second+5*time.Second)
	}
	if !s.legs.enter() { // shutting down
		if made {
			s.calls.close(c)
		}
		go s.reject(ev, event.RejectUnreachable)
		return
	}
	ctx, cancel := context.WithTimeout(c.ctx, ring)
	c.mu.Lock()
	if old := c.ringing[ev.RecipientID]; old != nil {
		old()
	}
	c.ringing[ev.RecipientID] = cancel
	c.mu.Unlock()
	go s.ringAgent(ctx, cancel, c, made, ev, b)
}

func (c *call) stopRinging(recipientID string) {
	c.mu.Lock()
	stop := c.ringing[recipientID]
	delete(c.ringing, recipientID)
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
}

func (s *Server) reject(ev engineEvent, reason event.RejectReason) {
	ctx, cancel := s.engineCtx()
	defer cancel()
	if _, err := engine.Reject.Call(ctx, s.cfg.Engine, ev.AccountID, engine.RejectRequest{SessionID: ev.SessionID, RecipientID: ev.RecipientID, Reason: reason}); err != nil {
		s.log.Debug("reject an offer", "session", ev.SessionID, "recipient", ev.RecipientID, "err", err)
	}
}

// ringAgent calls the phone; on answer the engine is told (Accept) and the
// agent is bridged with the caller. ownsCall is true when the call was
// made for this ring (it came from elsewhere, not from a SIP caller).
func (s *Server) ringAgent(ctx context.Context, cancel context.CancelFunc, c *call, ownsCall bool, ev engineEvent, b binding) {
	defer s.legs.leave()
	defer cancel()
	if ownsCall {
		defer s.calls.close(c)
	}
	d, err := s.dg.NewDialog(b.target(), diago.NewDialogOptions{Transport: b.transport})
	if err != nil {
		s.reject(ev, event.RejectUnreachable)
		return
	}
	defer func() { _ = d.Close() }()
	opts := diago.InviteClientOptions{}
	number := ev.CallerIDNumber
	if number == "" {
		number = "anonymous"
	}
	opts.WithCaller(ev.CallerIDName, number, s.host)
	s.m.legs.WithLabelValues("agent").Inc()
	defer s.m.legs.WithLabelValues("agent").Dec()
	med, err := d.Invite(ctx, opts)
	if err == nil {
		err = d.Ack(ctx)
	}
	c.stopRinging(ev.RecipientID)
	if err != nil {
		switch {
		case c.ctx.Err() != nil || errors.Is(ctx.Err(), context.Canceled):
			// rescinded, answered elsewhere or over: the engine decided
		case errors.Is(ctx.Err(), context.DeadlineExceeded):
			s.reject(ev, event.RejectTimeout)
		default:
			s.reject(ev, rejectReason(err))
		}
		return
	}
	actx, acancel := s.engineCtx()
	_, err = engine.Accept.Call(actx, s.cfg.Engine, ev.AccountID, engine.AcceptRequest{SessionID: ev.SessionID, RecipientID: ev.RecipientID})
	acancel()
	if err != nil {
		// The caller hung up or someone else answered first.
		s.hangup(d, event.CauseNormalClearing)
		return
	}
	l, err := newLeg(med)
	if err != nil {
		s.finish(c, event.PartySystem, event.CauseNormalTemporaryFailure)
		s.hangup(d, event.CauseNormalTemporaryFailure)
		return
	}
	go l.receive()
	c.mu.Lock()
	c.agent, c.agentID = l, ev.RecipientID
	remote := c.caller == nil && ownsCall
	c.bridgeLocked()
	c.mu.Unlock()
	if remote {
		// Nobody to bridge with: the caller is on another system. The agent
		// hears hold music until the engine says the call is over.
		go func() { _ = l.play(c.ctx, s.sounds[sounds.Hold], true) }()
	}
	callID := d.InviteRequest.CallID().Value()
	select {
	case <-d.Context().Done(): // the agent hung up
		s.finish(c, event.PartyRecipient, s.byeCause(callID, ""))
	case <-c.ctx.Done():
		s.hangup(d, c.causeOr(event.CauseNormalClearing))
	}
}

// rejectReason is the engine's reason for a phone's failure answer.
func rejectReason(err error) event.RejectReason {
	switch statusOf(err) {
	case 486, 600:
		return event.RejectBusy
	case 603, 403:
		return event.RejectDeclined
	case 408:
		return event.RejectTimeout
	}
	return event.RejectUnreachable
}
