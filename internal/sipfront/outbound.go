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
	"github.com/ccevents/ccevents/internal/sipfront/sounds"
	"github.com/ccevents/ccevents/internal/sipstore"
)

func engineEnd(by event.Party, cause event.Cause) engine.CallEnd {
	return engine.CallEnd{HangupBy: by, Cause: cause}
}

// authorize checks an INVITE's Proxy-Authorization; without valid
// credentials it answers (407 challenge, or 403 after too many failures)
// and returns false.
func (s *Server) authorize(d *diago.DialogServerSession, what string) (sipstore.Credential, bool) {
	req := d.InviteRequest
	src := hostOf(addrOf(req.Source()))
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
// hangs up or the far end fails (its status mapped to a cause).
func (s *Server) externalCall(d *diago.DialogServerSession, cred sipstore.Credential, dialled string) {
	var target sip.Uri
	transport := ""
	if other, ok := s.cfg.Store.User(dialled); ok && other.AccountID == cred.AccountID {
		b, ok := s.reg.lookup(other.User, time.Now())
		if !ok {
			_ = d.Respond(480, "Temporarily Unavailable", nil)
			return
		}
		target, transport = b.target(), b.transport
	} else if s.cfg.Trunk != "" && sipstore.ValidNumber(dialled) {
		host, port := splitHostPort(s.cfg.Trunk)
		target = sip.Uri{Scheme: "sip", User: dialled, Host: host, Port: port}
	} else {
		s.m.refused.WithLabelValues("unknown_number").Inc()
		_ = d.Respond(404, "Not Found", nil)
		return
	}
	sid := event.NewEventID()
	c, _ := s.calls.open(s, cred.AccountID, sid)
	defer s.calls.close(c)
	ctx, cancel := s.engineCtx()
	_, err := s.cfg.Engine.StartExternalCall(ctx, cred.AccountID, cred.RecipientID, engine.ExternalCall{SessionID: sid, Number: dialled, Direction: event.Outbound})
	cancel()
	if err != nil {
		// Logged out, on a call or in wrap-up: the engine says no.
		s.m.refused.WithLabelValues("forbidden").Inc()
		_ = d.Respond(403, "Forbidden: "+sipReason(err.Error()), nil)
		return
	}
	_ = d.Ringing()
	s.m.legs.WithLabelValues("external").Inc()
	defer s.m.legs.WithLabelValues("external").Dec()
	far, err := s.dg.NewDialog(target, diago.NewDialogOptions{Transport: transport})
	if err != nil {
		s.endInEngine(c, engineEnd(event.PartySystem, event.CauseDestinationOutOfOrder))
		_ = d.Respond(502, "Bad Gateway", nil)
		return
	}
	defer func() { _ = far.Close() }()
	opts := diago.InviteClientOptions{}
	opts.WithCaller("", cred.RecipientID, s.host)
	ictx, icancel := context.WithCancel(c.ctx)
	defer icancel()
	go func() { // the agent gives up while it rings
		select {
		case <-d.Context().Done():
			icancel()
		case <-ictx.Done():
		}
	}()
	farMed, err := far.Invite(ictx, opts)
	if err == nil {
		err = far.Ack(ictx)
	}
	if err != nil {
		if d.Context().Err() != nil {
			s.endInEngine(c, engineEnd(event.PartyRecipient, event.CauseOriginatorCancel))
			return
		}
		status := statusOf(err)
		cause := CauseOfStatus(status)
		if status == 0 {
			cause, status = event.CauseDestinationOutOfOrder, 502
		}
		s.endInEngine(c, engineEnd(event.PartyCaller, cause))
		_, phrase := statusOfCause(cause)
		if status == 502 {
			phrase = "Bad Gateway"
		}
		_ = d.Respond(status, phrase, nil, sip.NewHeader("Reason", reasonHeader(cause)))
		return
	}
	med, err := d.Answer(answerOpts)
	if err != nil {
		s.endInEngine(c, engineEnd(event.PartySystem, event.CauseNormalTemporaryFailure))
		s.hangup(far, event.CauseNormalTemporaryFailure)
		return
	}
	agent, err1 := newLeg(med)
	other, err2 := newLeg(farMed)
	if err := errors.Join(err1, err2); err != nil {
		s.endInEngine(c, engineEnd(event.PartySystem, event.CauseNormalTemporaryFailure))
		s.hangup(far, event.CauseNormalTemporaryFailure)
		s.hangup(d, event.CauseNormalTemporaryFailure)
		return
	}
	go agent.receive()
	go other.receive()
	c.mu.Lock()
	c.caller, c.agent, c.agentID = other, agent, cred.RecipientID // the far party stands where a caller would
	c.bridgeLocked()
	c.mu.Unlock()
	agentID, farID := d.InviteRequest.CallID().Value(), far.InviteRequest.CallID().Value()
	select {
	case <-d.Context().Done():
		s.endInEngine(c, engineEnd(event.PartyRecipient, s.byeCause(agentID, "")))
		s.hangup(far, event.CauseNormalClearing)
	case <-far.Context().Done():
		s.endInEngine(c, engineEnd(event.PartyCaller, s.byeCause(farID, "")))
		s.hangup(d, event.CauseNormalClearing)
	case <-c.ctx.Done():
		s.hangup(far, c.causeOr(event.CauseNormalClearing))
		s.hangup(d, c.causeOr(event.CauseNormalClearing))
	}
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
	// The tap is marked pending so the wiretap_start this causes does not
	// also ring the supervisor's phone.
	key := sup.AccountID + "/" + recipient + "/" + sup.RecipientID
	s.pendingTaps.Store(key, struct{}{})
	ctx, cancel := s.engineCtx()
	err = s.cfg.Engine.StartWiretap(ctx, sup.AccountID, w)
	cancel()
	if err != nil {
		s.pendingTaps.Delete(key)
		// wiretap_failed is published; the supervisor hears why not.
		_ = l.play(d.Context(), s.sounds[sounds.NoAgents], false)
		s.hangup(d, event.CauseNormalClearing)
		return
	}
	s.tapLeg(d, l, sup.AccountID, w, key)
}

// tapLeg attaches a supervisor's answered leg to the call it monitors and
// keeps it until either ends.
func (s *Server) tapLeg(d interface {
	Hangup(context.Context) error
	Context() context.Context
}, l *leg, acc string, w engine.Wiretap, key string) {
	defer s.pendingTaps.Delete(key)
	c := s.callOf(acc, w.RecipientID)
	if c == nil {
		ctx, cancel := s.engineCtx()
		_ = s.cfg.Engine.FailWiretap(ctx, acc, w, event.WiretapSessionEnded)
		cancel()
		s.hangup(d, event.CauseNormalClearing)
		return
	}
	_ = l.play(d.Context(), s.sounds[sounds.Monitor], false)
	m := &mixer{}
	tctx, tcancel := context.WithCancel(c.ctx)
	defer tcancel()
	c.mu.Lock()
	c.tap, c.tapSup, c.tapStop = m, w.SupervisorID, tcancel
	c.bridgeLocked()
	c.mu.Unlock()
	go m.run(tctx, l)
	select {
	case <-d.Context().Done(): // the supervisor hung up
		ctx, cancel := s.engineCtx()
		_ = s.cfg.Engine.StopWiretap(ctx, acc, w)
		cancel()
	case <-tctx.Done(): // wiretap_stop, or the call ended
		s.hangup(d, event.CauseNormalClearing)
	}
	c.mu.Lock()
	if c.tap == m {
		c.tap, c.tapSup, c.tapStop = nil, "", nil
		c.bridgeLocked()
	}
	c.mu.Unlock()
}

func (c *call) stopTap(supervisor string) {
	c.mu.Lock()
	stop := c.tapStop
	if c.tapSup != supervisor {
		stop = nil
	}
	c.mu.Unlock()
	if stop != nil {
		stop()
	}
}

// onWiretapStart rings a supervisor's phone when monitoring started
// through the REST API; a phone that cannot be reached fails the wiretap.
func (s *Server) onWiretapStart(ev engineEvent) {
	key := ev.AccountID + "/" + ev.RecipientID + "/" + ev.SupervisorID
	if _, pending := s.pendingTaps.Load(key); pending {
		return
	}
	cred, ok := s.cfg.Store.CredentialOf(ev.AccountID, ev.SupervisorID)
	if !ok {
		return // a supervisor without a phone listens some other way
	}
	w := engine.Wiretap{RecipientID: ev.RecipientID, SupervisorID: ev.SupervisorID, Mode: event.WiretapListen}
	s.pendingTaps.Store(key, struct{}{})
	go func() {
		fail := func(reason event.WiretapFailReason) {
			s.pendingTaps.Delete(key)
			ctx, cancel := s.engineCtx()
			defer cancel()
			_ = s.cfg.Engine.FailWiretap(ctx, ev.AccountID, w, reason)
		}
		b, ok := s.reg.lookup(cred.User, time.Now())
		if !ok {
			fail(event.WiretapSupervisorUnreachable)
			return
		}
		d, err := s.dg.NewDialog(b.target(), diago.NewDialogOptions{Transport: b.transport})
		if err != nil {
			fail(event.WiretapSupervisorUnreachable)
			return
		}
		defer func() { _ = d.Close() }()
		ctx, cancel := context.WithTimeout(s.ctx, s.cfg.RingTimeout)
		defer cancel()
		opts := diago.InviteClientOptions{}
		opts.WithCaller("Listen in", ev.RecipientID, s.host)
		med, err := d.Invite(ctx, opts)
		if err == nil {
			err = d.Ack(ctx)
		}
		if err != nil {
			fail(event.WiretapSupervisorUnreachable)
			return
		}
		l, err := newLeg(med)
		if err != nil {
			fail(event.WiretapSupervisorUnreachable)
			s.hangup(d, event.CauseNormalTemporaryFailure)
			return
		}
		go l.receive()
		s.m.legs.WithLabelValues("supervisor").Inc()
		defer s.m.legs.WithLabelValues("supervisor").Dec()
		s.tapLeg(d, l, ev.AccountID, w, key)
	}()
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
