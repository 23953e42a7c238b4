package sipfront

import (
	"cmp"
	"context"
	"errors"
	"net/netip"
	"strings"
	"sync"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/diago/media"
	"github.com/emiago/sipgo/sip"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/sipfront/sounds"
	"github.com/ccevents/ccevents/internal/sipstore"
)

// call is one engine session the front end carries legs of: the caller's
// (nil for a call that arrived elsewhere, through the REST API), the
// ringing and answered agent's, and a supervisor's.
type call struct {
	s        *Server
	acc, sid string
	ctx      context.Context // ends when the call is over for the front end
	cancel   context.CancelFunc

	mu       sync.Mutex
	caller   *leg
	hold     context.CancelFunc // stops what the caller hears while waiting
	holdDone chan struct{}
	ringing  map[string]context.CancelFunc // recipient -> stop ringing
	agent    *leg
	agentID  string      // the recipient on the agent leg
	tap      *tap        // a supervisor listening in
	cause    event.Cause // why the front end ended it, for the legs' BYE
}

// end ends the call for every leg; the first cause given wins.
func (c *call) end(cause event.Cause) {
	c.mu.Lock()
	if c.cause == "" {
		c.cause = cause
	}
	c.mu.Unlock()
	c.cancel()
}

// callTable is the calls in progress by account and session.
type callTable struct {
	mu sync.Mutex
	by map[string]*call
}

func newCallTable() *callTable { return &callTable{by: map[string]*call{}} }

func (t *callTable) get(acc, sid string) *call {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.by[acc+"/"+sid]
}

// open returns the session's call, making it when new (made reports so).
func (t *callTable) open(s *Server, acc, sid string) (c *call, made bool) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if c := t.by[acc+"/"+sid]; c != nil {
		return c, false
	}
	ctx, cancel := context.WithCancel(s.ctx)
	c = &call{s: s, acc: acc, sid: sid, ctx: ctx, cancel: cancel, ringing: map[string]context.CancelFunc{}}
	t.by[acc+"/"+sid] = c
	return c, true
}

func (t *callTable) close(c *call) {
	t.mu.Lock()
	if t.by[c.acc+"/"+c.sid] == c {
		delete(t.by, c.acc+"/"+c.sid)
	}
	t.mu.Unlock()
	c.cancel()
}

func (t *callTable) len() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return len(t.by)
}

func (t *callTable) each(f func(*call)) {
	t.mu.Lock()
	cs := make([]*call, 0, len(t.by))
	for _, c := range t.by {
		cs = append(cs, c)
	}
	t.mu.Unlock()
	for _, c := range cs {
		f(c)
	}
}

// running counts the goroutines that carry legs, so that Close lets
// them hang up (a BYE is a transaction: it needs the user agent) before
// the user agent closes. Once draining it admits no more.
type running struct {
	mu      sync.Mutex
	n       int
	closing bool
	idle    chan struct{} // closed when none runs any more, once closing
}

// enter admits a goroutine carrying legs; false once Close began.
func (r *running) enter() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closing {
		return false
	}
	r.n++
	return true
}

func (r *running) leave() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.n--
	if r.closing && r.n == 0 {
		close(r.idle)
	}
}

// drain admits no more and returns a channel closed once none runs.
func (r *running) drain() <-chan struct{} {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closing = true
	r.idle = make(chan struct{})
	if r.n == 0 {
		close(r.idle)
	}
	return r.idle
}

// answerOpts answers with G.711 only: what the relay and the sounds speak.
var answerOpts = diago.AnswerOptions{Codecs: []media.Codec{media.CodecAudioUlaw, media.CodecAudioAlaw, media.CodecTelephoneEvent8000}}

// handleInvite serves every new INVITE: to a queue's number, a feature
// code, or (from an authenticated agent) anywhere else.
func (s *Server) handleInvite(d *diago.DialogServerSession) {
	if !s.legs.enter() {
		_ = d.Respond(503, "Service Unavailable: shutting down", nil, sip.NewHeader("Retry-After", "5"))
		return
	}
	defer s.legs.leave()
	req := d.InviteRequest
	number := req.Recipient.User
	if n, ok := s.cfg.Store.Number(number); ok {
		s.inbound(d, n)
		return
	}
	s.outbound(d)
}

// inbound takes a call to a queue's number into the engine.
func (s *Server) inbound(d *diago.DialogServerSession, n sipstore.Number) {
	req := d.InviteRequest
	if !s.trusted(req.Source()) {
		if _, ok := s.authorize(d, "inbound"); !ok {
			return
		}
	}
	_ = d.Trying()
	name, number := callerID(req)
	if n.WhenNoAgents != sipstore.Queue && !s.anyoneLoggedIn(n) {
		s.m.calls.WithLabelValues("no_agents").Inc()
		s.turnAway(d, n.WhenNoAgents, sounds.NoAgents, event.CauseNoUserResponse)
		return
	}
	sid := event.NewEventID()
	c, _ := s.calls.open(s, n.AccountID, sid)
	defer s.calls.close(c)
	ctx, cancel := s.engineCtx()
	res, err := engine.Arrive.Call(ctx, s.cfg.Engine, n.AccountID, engine.Arrival{SessionID: sid, QueueID: n.QueueID, CallerIDName: name, CallerIDNumber: number, Callee: n.Number})
	cancel()
	if err != nil {
		s.m.calls.WithLabelValues("failed").Inc()
		s.log.Warn("a call to a queue number could not join its queue", "number", n.Number, "queue", n.QueueID, "err", err)
		code, reason := 503, "Service Unavailable"
		if errors.Is(err, engine.ErrNotFound) {
			code, reason = 404, "Not Found"
		}
		_ = d.Respond(code, reason, nil)
		return
	}
	if res.State == engine.CallEnded {
		s.m.calls.WithLabelValues("full").Inc()
		s.turnAway(d, n.WhenFull, sounds.Full, event.CauseNormalCircuitCongestion)
		return
	}
	s.m.calls.WithLabelValues("queued").Inc()
	med, err := d.Answer(answerOpts)
	if err != nil {
		s.log.Warn("answer a caller", "session", sid, "err", err)
		s.finish(c, event.PartyCaller, event.CauseNormalTemporaryFailure)
		return
	}
	l, err := newLeg(med)
	if err != nil {
		s.finish(c, event.PartyCaller, event.CauseNormalTemporaryFailure)
		s.hangup(d, event.CauseNormalTemporaryFailure)
		return
	}
	s.m.legs.WithLabelValues("caller").Inc()
	defer s.m.legs.WithLabelValues("caller").Dec()
	go l.receive()
	c.mu.Lock()
	c.caller = l
	if c.agent == nil { // an agent may have answered already (ring-all, fast phones)
		c.startHold(n)
	} else {
		c.bridgeLocked()
	}
	c.mu.Unlock()

	callID := req.CallID().Value()
	timeout := time.NewTicker(time.Second)
	defer timeout.Stop()
	for {
		select {
		case <-d.Context().Done(): // the caller hung up
			s.finish(c, event.PartyCaller, s.byeCause(callID, ""))
			return
		case <-c.ctx.Done(): // the engine or the agent ended it
			s.hangup(d, c.causeOr(event.CauseNormalClearing))
			return
		case now := <-timeout.C:
			if s.cfg.MediaTimeout > 0 && l.silentFor(now) > s.cfg.MediaTimeout {
				s.finish(c, event.PartySystem, event.CauseMediaTimeout)
			}
		}
	}
}

func (c *call) causeOr(def event.Cause) event.Cause {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cause != "" {
		return c.cause
	}
	return def
}

// startHold plays the welcome, then hold music (with the caller's place
// in line every PositionAnnounceS), until the call is bridged.
func (c *call) startHold(n sipstore.Number) {
	ctx, cancel := context.WithCancel(c.ctx)
	done := make(chan struct{})
	c.hold, c.holdDone = cancel, done
	l := c.caller
	go func() {
		defer close(done)
		if l.play(ctx, c.s.sounds[sounds.Welcome], false) != nil {
			return
		}
		for ctx.Err() == nil {
			if n.PositionAnnounceS <= 0 {
				_ = l.play(ctx, c.s.sounds[sounds.Hold], true)
				return
			}
			hctx, hcancel := context.WithTimeout(ctx, time.Duration(n.PositionAnnounceS)*time.Second)
			_ = l.play(hctx, c.s.sounds[sounds.Hold], true)
			hcancel()
			if pos := c.s.position(ctx, c.acc, n.QueueID, c.sid); pos > 0 {
				_ = l.play(ctx, c.s.sounds[sounds.Position(pos)], false)
			}
		}
	}()
}

// position is the caller's place in line, 0 when not waiting.
func (s *Server) position(ctx context.Context, acc, queueID, sid string) int {
	ctx, cancel := context.WithTimeout(ctx, engineTimeout)
	defer cancel()
	q, err := engine.GetQueue.Call(ctx, s.cfg.Engine, acc, engine.QueueRef{QueueID: queueID})
	if err != nil {
		return 0
	}
	for i, cl := range q.Callers {
		if cl.SessionID == sid {
			return i + 1
		}
	}
	return 0
}

// bridgeLocked connects caller and agent once both legs are there: the
// hold music stops, then each side's audio goes to the other (and to a
// supervisor listening in). c.mu is held.
func (c *call) bridgeLocked() {
	if c.caller == nil || c.agent == nil {
		return
	}
	if c.hold != nil {
		c.hold()
		<-c.holdDone // the player has written its last frame
		c.hold = nil
	}
	caller, agent := c.caller, c.agent
	var tap *mixer
	if c.tap != nil {
		tap = c.tap.mix
	}
	caller.setSink(func(f []byte, alaw bool) {
		_ = agent.write(f, alaw)
		if tap != nil {
			tap.push(0, f, alaw)
		}
	})
	agent.setSink(func(f []byte, alaw bool) {
		_ = caller.write(f, alaw)
		if tap != nil {
			tap.push(1, f, alaw)
		}
	})
}

// turnAway refuses a call the engine cannot queue: a status, or an
// announcement and a hang-up.
func (s *Server) turnAway(d *diago.DialogServerSession, how, sound string, cause event.Cause) {
	if how != sipstore.Announce {
		code, reason := statusOfCause(cause)
		_ = d.Respond(code, reason, nil, sip.NewHeader("Reason", reasonHeader(cause)))
		return
	}
	med, err := d.Answer(answerOpts)
	if err != nil {
		return
	}
	l, err := newLeg(med)
	if err != nil {
		return
	}
	go l.receive()
	_ = l.play(d.Context(), s.sounds[sound], false)
	s.hangup(d, cause)
}

// hangup ends a leg, telling the phone why: a BYE with a Reason header
// once answered, else a failure status with one (RFC 3326).
func (s *Server) hangup(d interface{ Hangup(context.Context) error }, cause event.Cause) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(s.ctx), 5*time.Second)
	defer cancel()
	reason := reasonHeader(cause)
	if reason == "" {
		_ = d.Hangup(ctx)
		return
	}
	switch d := d.(type) {
	case *diago.DialogServerSession:
		inv := d.InviteRequest
		if d.LoadState() < sip.DialogStateConfirmed && (d.InviteResponse == nil || !d.InviteResponse.IsSuccess()) {
			code, phrase := statusOfCause(cause)
			_ = d.Respond(code, phrase, nil, sip.NewHeader("Reason", reason))
			return
		}
		bye := sip.NewRequest(sip.BYE, inv.Contact().Address)
		bye.SetTransport(inv.Transport())
		bye.AppendHeader(sip.NewHeader("Reason", reason))
		_ = d.WriteBye(ctx, bye)
	case *diago.DialogClientSession:
		if d.InviteResponse == nil {
			_ = d.Hangup(ctx)
			return
		}
		// As sipgo builds an in-dialog BYE (to the answer's Contact; the
		// dialog's headers and route are added as it is sent).
		target := d.InviteRequest.Recipient
		if c := d.InviteResponse.Contact(); c != nil {
			target = c.Address
		}
		bye := sip.NewRequest(sip.BYE, *target.Clone())
		bye.SetTransport(d.InviteRequest.Transport())
		bye.SetSource(d.InviteRequest.Source())
		bye.AppendHeader(sip.NewHeader("Reason", reason))
		_ = d.WriteBye(ctx, bye)
	default:
		_ = d.Hangup(ctx)
	}
}

// finish ends a call whose end the front end saw: its legs are hung up
// with cause (given first, so that the engine's events about the end
// cannot give them another; NORMAL_CLEARING when empty), then the engine
// is told, with the cause when there is one.
func (s *Server) finish(c *call, by event.Party, cause event.Cause) {
	c.end(cmp.Or(cause, event.CauseNormalClearing))
	s.endInEngine(c, engine.CallEnd{HangupBy: by, Cause: cause})
}

// endInEngine tells the engine a call ended; a call already over is fine.
func (s *Server) endInEngine(c *call, end engine.CallEnd) {
	ctx, cancel := s.engineCtx()
	defer cancel()
	_, err := engine.EndCall.Call(ctx, s.cfg.Engine, c.acc, engine.EndCallRequest{SessionID: c.sid, CallEnd: end})
	if err != nil && !errors.Is(err, engine.ErrNotFound) && !errors.Is(err, engine.ErrConflict) {
		s.log.Warn("tell the engine a call ended", "account", c.acc, "session", c.sid, "err", err)
	}
}

// anyoneLoggedIn reports whether a recipient serving the number's queue
// is logged in.
func (s *Server) anyoneLoggedIn(n sipstore.Number) bool {
	ctx, cancel := s.engineCtx()
	defer cancel()
	rs, err := engine.ListRecipients.Call(ctx, s.cfg.Engine, n.AccountID, engine.None{})
	if err != nil {
		return true // when in doubt, queue: the engine decides
	}
	for _, r := range rs {
		if r.State != event.StateLoggedOut && contains(r.Queues, n.QueueID) {
			return true
		}
	}
	return false
}

func contains(xs []string, x string) bool {
	for _, v := range xs {
		if v == x {
			return true
		}
	}
	return false
}

// trusted reports whether an address (host:port) may call queue numbers
// unchallenged.
func (s *Server) trusted(source string) bool {
	ap, err := netip.ParseAddrPort(source)
	if err != nil {
		return len(s.cfg.TrustedNets) == 0
	}
	return len(s.cfg.TrustedNets) == 0 || s.trustedAddr(ap.Addr())
}

// trustedAddr reports whether an address is in TrustedNets (a trunk's):
// it may call queue numbers unchallenged and is not rate limited.
func (s *Server) trustedAddr(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.cfg.TrustedNets {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

// callerID is the caller's name and number: P-Asserted-Identity when a
// trunk asserts one (RFC 3325), else From.
func callerID(req *sip.Request) (name, number string) {
	if h := req.GetHeader("P-Asserted-Identity"); h != nil {
		var u sip.Uri
		if dn, err := sip.ParseAddressValue(h.Value(), &u, nil); err == nil && u.User != "" {
			return cleanName(dn), u.User
		}
	}
	if f := req.From(); f != nil {
		return cleanName(f.DisplayName), f.Address.User
	}
	return "", ""
}

func cleanName(s string) string { return strings.TrimSpace(strings.Trim(s, `"`)) }
