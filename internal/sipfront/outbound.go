package sipfront

import (
	"context"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/limit"
	"github.com/ccevents/ccevents/internal/sipstore"
)

// authorize checks an INVITE's Proxy-Authorization; without valid
// credentials it answers (407 challenge, or 403 after too many failures)
// and returns false.
func (s *Server) authorize(d *diago.DialogServerSession, what string) (sipstore.Credential, bool) {
	req := d.InviteRequest
	src := limit.ClientKey(req.Source())
	if ok, wait := s.auth.backoff.Allow(src); !ok {
		s.m.refused.WithLabelValues("auth_backoff").Inc()
		_ = d.Respond(403, "Forbidden: too many failed authentications", nil, sip.NewHeader("Retry-After", strconv.Itoa(int(wait.Seconds())+1)))
		return sipstore.Credential{}, false
	}
	v, cred := s.auth.check(req, "Proxy-Authorization", s.cfg.Store.User, time.Now())
	if v == authOK {
		s.auth.backoff.Success(src)
		return cred, true
	}
	if v == authBad {
		s.m.authFailures.WithLabelValues("INVITE").Inc()
		s.auth.backoff.Failure(src)
	}
	realm := sipstore.DefaultRealm
	if f := req.From(); f != nil {
		if c, ok := s.cfg.Store.User(f.Address.User); ok {
			realm = c.Realm
		}
	}
	res := sip.NewResponseFromRequest(req, 407, "Proxy Authentication Required", nil)
	for _, c := range s.auth.challenges(realm, time.Now(), v == authStale) {
		res.AppendHeader(sip.NewHeader("Proxy-Authenticate", c))
	}
	_ = d.WriteResponse(res)
	s.log.Debug("challenged an INVITE", "what", what, "source", req.Source())
	return sipstore.Credential{}, false
}

// outbound serves an INVITE from an agent's phone to anything but a
// queue number: a feature code, another phone, or the trunk.
func (s *Server) outbound(d *diago.DialogServerSession) {
	cred, ok := s.authorize(d, "outbound")
	if !ok {
		return
	}
	dialled := d.InviteRequest.Recipient.User
	if target, ok := strings.CutPrefix(dialled, WiretapPrefix); ok {
		s.listenIn(d, cred, target)
		return
	}
	s.externalCall(d, cred, dialled)
}

// externalCall connects an agent's phone to another phone or the trunk:
// recipient.external_call_start when dialled, _end when either side
// hangs up or the far end fails (its status mapped to a cause). A
// colleague called is on an inbound external call of their own for as
// long, so the engine offers them nothing meanwhile.
func (s *Server) externalCall(d *diago.DialogServerSession, cred sipstore.Credential, dialled string) {
	var target sip.Uri
	transport := ""
	other, internal := s.cfg.Store.User(dialled)
	internal = internal && other.AccountID == cred.AccountID
	switch {
	case internal:
		b, ok := s.reg.lookup(other.User, time.Now())
		if !ok {
			_ = d.Respond(480, "Temporarily Unavailable", nil)
			return
		}
		target, transport = b.target(), b.transport
	case s.cfg.Trunk != "" && sipstore.ValidNumber(dialled):
		host, port := splitHostPort(s.cfg.Trunk)
		target = sip.Uri{Scheme: "sip", User: dialled, Host: host, Port: port}
	default:
		s.m.refused.WithLabelValues("unknown_number").Inc()
		_ = d.Respond(404, "Not Found", nil)
		return
	}
	c, err := s.startExternal(cred.AccountID, cred.RecipientID, dialled, event.Outbound)
	if err != nil {
		// Logged out, on a call or in wrap-up: the engine says no.
		s.m.refused.WithLabelValues("forbidden").Inc()
		_ = d.Respond(403, "Forbidden: "+sipReason(err.Error()), nil)
		return
	}
	defer s.calls.close(c)
	// ends finishes the call: by is who hung up as the dialling agent's
	// session sees it; the colleague's sees it mirrored.
	var peer *call
	ends := func(by event.Party, cause event.Cause) {
		s.finish(c, by, cause)
		if peer != nil {
			s.finish(peer, mirror(by), cause)
		}
	}
	if internal {
		if peer, err = s.startExternal(cred.AccountID, other.RecipientID, cred.User, event.Inbound); err != nil {
			peer = nil
			ends(event.PartyCaller, event.CauseUserBusy)
			_ = d.Respond(486, "Busy Here", nil, sip.NewHeader("Reason", reasonHeader(event.CauseUserBusy)))
			return
		}
		defer s.calls.close(peer)
	}
	_ = d.Ringing()
	s.m.legs.WithLabelValues("external").Inc()
	defer s.m.legs.WithLabelValues("external").Dec()
	far, err := s.dg.NewDialog(target, diago.NewDialogOptions{Transport: transport})
	if err != nil {
		ends(event.PartySystem, event.CauseDestinationOutOfOrder)
		_ = d.Respond(502, "Bad Gateway", nil)
		return
	}
	defer func() { _ = far.Close() }()
	opts := diago.InviteClientOptions{}
	opts.WithCaller("", cred.RecipientID, s.host)
	ictx, icancel := context.WithCancel(c.ctx)
	defer icancel()
	stopRing := context.AfterFunc(d.Context(), icancel) // the agent gives up while it rings
	if peer != nil {
		defer context.AfterFunc(peer.ctx, icancel)()
	}
	farMed, err := far.Invite(ictx, opts)
	if err == nil {
		err = far.Ack(ictx)
	}
	stopRing()
	if err != nil {
		if d.Context().Err() != nil {
			ends(event.PartyRecipient, event.CauseOriginatorCancel)
			return
		}
		if c.ctx.Err() != nil || (peer != nil && peer.ctx.Err() != nil) {
			s.hangup(d, c.causeOr(event.CauseNormalClearing)) // the engine ended it
			ends(event.PartySystem, event.CauseNormalClearing)
			return
		}
		status := statusOf(err)
		cause := CauseOfStatus(status)
		if status == 0 {
			cause, status = event.CauseDestinationOutOfOrder, 502
		}
		ends(event.PartyCaller, cause)
		_, phrase := statusOfCause(cause)
		if status == 502 {
			phrase = "Bad Gateway"
		}
		_ = d.Respond(status, phrase, nil, sip.NewHeader("Reason", reasonHeader(cause)))
		return
	}
	med, err := d.Answer(answerOpts)
	if err != nil {
		ends(event.PartySystem, event.CauseNormalTemporaryFailure)
		s.hangup(far, event.CauseNormalTemporaryFailure)
		return
	}
	agent, err1 := newLeg(med)
	farLeg, err2 := newLeg(farMed)
	if err := errors.Join(err1, err2); err != nil {
		ends(event.PartySystem, event.CauseNormalTemporaryFailure)
		s.hangup(far, event.CauseNormalTemporaryFailure)
		s.hangup(d, event.CauseNormalTemporaryFailure)
		return
	}
	go agent.receive()
	go farLeg.receive()
	c.mu.Lock()
	c.caller, c.agent, c.agentID = farLeg, agent, cred.RecipientID // the far party stands where a caller would
	c.bridgeLocked()
	c.mu.Unlock()
	var peerDone <-chan struct{}
	if peer != nil {
		// The colleague's session has the same two legs, seen from the
		// other end, so a supervisor can listen in on either agent. (Only
		// one of the two sessions' taps is heard at a time.)
		peer.mu.Lock()
		peer.caller, peer.agent, peer.agentID = agent, farLeg, other.RecipientID
		peer.mu.Unlock()
		peerDone = peer.ctx.Done()
	}
	agentID, farID := d.InviteRequest.CallID().Value(), far.InviteRequest.CallID().Value()
	select {
	case <-d.Context().Done():
		ends(event.PartyRecipient, s.byeCause(agentID, ""))
		s.hangup(far, c.causeOr(event.CauseNormalClearing))
	case <-far.Context().Done():
		ends(event.PartyCaller, s.byeCause(farID, ""))
		s.hangup(d, c.causeOr(event.CauseNormalClearing))
	case <-c.ctx.Done():
		s.hangup(far, c.causeOr(event.CauseNormalClearing))
		s.hangup(d, c.causeOr(event.CauseNormalClearing))
		ends(event.PartySystem, c.causeOr(event.CauseNormalClearing))
	case <-peerDone:
		s.hangup(far, peer.causeOr(event.CauseNormalClearing))
		s.hangup(d, peer.causeOr(event.CauseNormalClearing))
		ends(event.PartySystem, peer.causeOr(event.CauseNormalClearing))
	}
}

// startExternal puts a recipient on an external call in the engine and
// opens the front end's call for it.
func (s *Server) startExternal(acc, recipient, number string, dir event.Direction) (*call, error) {
	sid := event.NewEventID()
	c, _ := s.calls.open(s, acc, sid)
	ctx, cancel := s.engineCtx()
	defer cancel()
	if _, err := engine.StartExternalCall.Call(ctx, s.cfg.Engine, acc, engine.ExternalCallRequest{RecipientID: recipient, ExternalCall: engine.ExternalCall{SessionID: sid, Number: number, Direction: dir}}); err != nil {
		s.calls.close(c)
		return nil, err
	}
	return c, nil
}

// mirror is who hung up as the other party's session sees it.
func mirror(p event.Party) event.Party {
	switch p {
	case event.PartyCaller:
		return event.PartyRecipient
	case event.PartyRecipient:
		return event.PartyCaller
	}
	return p
}

// callOf finds the call a recipient is on among those the front end carries.
func (s *Server) callOf(acc, recipient string) *call {
	var found *call
	s.calls.each(func(c *call) {
		if c.acc != acc || found != nil {
			return
		}
		c.mu.Lock()
		ok := c.agent != nil && c.agentID == recipient
		c.mu.Unlock()
		if ok {
			found = c
		}
	})
	return found
}

func statusOf(err error) int {
	var pe *sipgo.ErrDialogResponse
	var ve sipgo.ErrDialogResponse
	switch {
	case errors.As(err, &pe):
		return pe.Res.StatusCode
	case errors.As(err, &ve):
		return ve.Res.StatusCode
	}
	return 0
}

// sipReason makes an engine sentence fit a SIP reason phrase.
func sipReason(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f {
			return ' '
		}
		return r
	}, s)
	if len(s) > 120 {
		s = s[:120]
	}
	return s
}

func splitHostPort(hp string) (string, int) {
	i := strings.LastIndexByte(hp, ':')
	if i < 0 {
		return hp, 0
	}
	p, _ := strconv.Atoi(hp[i+1:])
	return hp[:i], p
}
