package sim

import (
	"container/heap"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"math/rand/v2"
	"slices"
	"strings"
	"time"

	"github.com/ccevents/ccevents/internal/backoff"
	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
)

// DefaultRate is the default arrival rate, in calls per minute: enough to
// keep the six demo agents busy and let a few callers give up.
const DefaultRate = 6.0

// Supervisor is the supervisor id the simulation monitors calls as.
const Supervisor = "supervisor-1"

// campaignQueue is the queue the simulation starts and stops on its own,
// so queue.create and queue.delete appear in the stream.
const campaignQueue = "campaign"

// maxFailures is how many unexpected errors in a row end a run: the engine
// or the API is unreachable, not merely refusing.
const maxFailures = 30

// Clock is the simulation's time: RealClock, or a virtual clock that
// advances the engine's timers as it sleeps (*engine.VirtualClock).
type Clock interface {
	Now() time.Time
	Sleep(ctx context.Context, d time.Duration) error
}

// RealClock is wall-clock time.
func RealClock() Clock { return realClock{} }

type realClock struct{}

func (realClock) Now() time.Time { return time.Now() }

func (realClock) Sleep(ctx context.Context, d time.Duration) error { return backoff.Sleep(ctx, d) }

// Config tunes a run. Only AccountID is required.
type Config struct {
	AccountID string
	// Rate is the mean number of calls arriving per minute (Poisson); zero
	// is DefaultRate.
	Rate float64
	// Clock is nil for real time.
	Clock Clock
	// Seed makes a run repeatable; zero picks one at random.
	Seed uint64
	// Tick is how often the simulation looks at the account to react to
	// offers and answered calls; zero is one second.
	Tick time.Duration
	// Duration ends the run after this much (simulated) time; zero runs
	// until ctx ends.
	Duration time.Duration
	// Leave, when set, names recipients the simulation leaves to people
	// (their phone is registered): it neither answers their offers nor
	// changes their status.
	Leave func(recipientID string) bool
	// Logger receives what the simulation does at debug level and
	// problems at warn; nil discards.
	Logger *slog.Logger
}

// Run simulates traffic in an account (set it up first, e.g. with
// SetupDemo) until ctx ends or cfg.Duration has passed, and returns nil
// then. It returns an error when svc keeps failing (the engine or
// API is unreachable).
func Run(ctx context.Context, svc engine.Service, cfg Config) error {
	if !event.ValidAccountID(cfg.AccountID) {
		return fmt.Errorf("simulate: account id must be 32 lowercase hex characters, got %q", cfg.AccountID)
	}
	if cfg.Rate < 0 || math.IsNaN(cfg.Rate) || math.IsInf(cfg.Rate, 0) {
		return fmt.Errorf("simulate: rate must be a positive number of calls per minute, got %v", cfg.Rate)
	}
	if cfg.Rate == 0 {
		cfg.Rate = DefaultRate
	}
	if cfg.Clock == nil {
		cfg.Clock = RealClock()
	}
	if cfg.Tick <= 0 {
		cfg.Tick = time.Second
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	seed := cfg.Seed
	if seed == 0 {
		seed = rand.Uint64()
	}
	s := &sim{
		svc: svc, cfg: cfg, acc: cfg.AccountID, clock: cfg.Clock, log: cfg.Logger.With("account", cfg.AccountID),
		rng:     rand.New(rand.NewPCG(seed, seed^0x5eed)),
		callers: map[string]*caller{}, decided: map[string]bool{}, talking: map[string]bool{},
	}
	return s.run(ctx)
}

type sim struct {
	svc   engine.Service
	cfg   Config
	acc   string
	clock Clock
	log   *slog.Logger
	rng   *rand.Rand

	now     time.Time
	actions actionHeap
	seq     uint64

	snap     engine.Snapshot
	callers  map[string]*caller // waiting callers the simulation placed
	decided  map[string]bool    // offers ("session|recipient") already decided
	talking  map[string]bool    // queue calls seen answered
	offers   int
	calls    int
	wiretaps int
	awayOnce bool
	rejected bool // a reject has been shown
	ignored  bool // an offer has been left to time out
	failures int
	lastErr  error
}

type caller struct {
	answered bool
}

type action struct {
	at  time.Time
	seq uint64
	f   func(ctx context.Context)
}

func (s *sim) run(ctx context.Context) error {
	s.now = s.clock.Now()
	var end time.Time
	if s.cfg.Duration > 0 {
		end = s.now.Add(s.cfg.Duration)
	}
	s.plan()
	for {
		if ctx.Err() != nil {
			return nil
		}
		s.now = s.clock.Now()
		if !end.IsZero() && !s.now.Before(end) {
			return nil
		}
		for len(s.actions) > 0 && !s.actions[0].at.After(s.now) {
			a := heap.Pop(&s.actions).(*action)
			a.f(ctx)
		}
		if snap, err := engine.GetSnapshot.Call(ctx, s.svc, s.acc, engine.None{}); s.ok("look at the account", err) {
			s.snap = snap
			s.react()
		}
		if s.failures >= maxFailures {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("simulate: %d requests in a row failed; last: %w", s.failures, s.lastErr)
		}
		wait := s.cfg.Tick
		if len(s.actions) > 0 {
			wait = min(wait, s.actions[0].at.Sub(s.now))
		}
		if !end.IsZero() {
			wait = min(wait, end.Sub(s.now))
		}
		if err := s.clock.Sleep(ctx, max(wait, time.Millisecond)); err != nil {
			return nil
		}
	}
}

// after schedules f at d from now.
func (s *sim) after(d time.Duration, f func(ctx context.Context)) {
	s.seq++
	heap.Push(&s.actions, &action{at: s.now.Add(d), seq: s.seq, f: f})
}

// ok notes the outcome of a request and reports whether it succeeded.
// Refusals (the call ended meanwhile, the agent is no longer ready) are
// the normal race between a simulation and a live contact center.
func (s *sim) ok(what string, err error) bool {
	switch {
	case err == nil:
		s.failures = 0
		return true
	case errors.Is(err, engine.ErrConflict), errors.Is(err, engine.ErrNotFound):
		s.failures = 0
		s.log.Debug("simulate: refused", "what", what, "err", err)
	case errors.Is(err, context.Canceled):
	default:
		s.failures++
		s.lastErr = err
		s.log.Warn("simulate: request failed", "what", what, "err", err)
	}
	return false
}

// send runs a command whose reply the simulation does not need.
func send[Req, Resp any](ctx context.Context, s *sim, cmd *engine.Command[Req, Resp], req Req) error {
	_, err := cmd.Call(ctx, s.svc, s.acc, req)
	return err
}

// hangup ends a call as a telephony adapter reports it (POST
// …/calls/{SESSION_ID}/hangup).
func (s *sim) hangup(ctx context.Context, sessionID string, by event.Party) error {
	return send(ctx, s, engine.EndCall, engine.EndCallRequest{SessionID: sessionID, CallEnd: engine.CallEnd{HangupBy: by}})
}

// uniform is a duration uniformly distributed in [lo, hi].
func (s *sim) uniform(lo, hi time.Duration) time.Duration {
	return lo + time.Duration(s.rng.Int64N(int64(hi-lo)+1))
}

// exp is an exponentially distributed duration with the given mean.
func (s *sim) exp(mean time.Duration) time.Duration {
	return time.Duration(s.rng.ExpFloat64() * float64(mean))
}

func (s *sim) chance(p float64) bool { return s.rng.Float64() < p }

// plan starts the simulation's processes. The first occurrence of each
// comes early, so every kind of event shows up within two minutes.
func (s *sim) plan() {
	s.after(s.uniform(time.Second, 3*time.Second), s.arrival)
	s.after(s.uniform(5*time.Second, 30*time.Second), s.sync)
	s.after(s.uniform(8*time.Second, 20*time.Second), s.away)
	s.after(s.uniform(10*time.Second, 25*time.Second), s.startCampaign)
	s.after(s.uniform(15*time.Second, 35*time.Second), s.pause)
	s.after(s.uniform(20*time.Second, 45*time.Second), s.externalCall)
	s.after(s.uniform(25*time.Second, 40*time.Second), s.wiretap)
	s.after(s.uniform(30*time.Second, 50*time.Second), s.logout)
}

var callerNames = []string{
	"Maria Garcia", "James Smith", "Aiko Tanaka", "Oluwaseun Adeyemi", "Sofia Rossi",
	"Liam O'Brien", "Priya Sharma", "Mateo Fernández", "Hannah Müller", "Chen Wei",
}

func (s *sim) phone() string { return fmt.Sprintf("+1555%07d", s.rng.IntN(10_000_000)) }

// arrival places one call and schedules the next (Poisson arrivals).
func (s *sim) arrival(ctx context.Context) {
	defer s.after(s.exp(time.Duration(float64(time.Minute)/s.cfg.Rate)), s.arrival)
	if len(s.snap.Queues) == 0 {
		return
	}
	s.calls++
	q := s.pickQueue()
	call, err := engine.Arrive.Call(ctx, s.svc, s.acc, engine.Arrival{
		QueueID: q, CallerIDName: callerNames[s.rng.IntN(len(callerNames))], CallerIDNumber: s.phone(), Callee: "+18005550100",
	})
	if !s.ok("place a call", err) || call.State != engine.CallWaiting {
		return
	}
	c := &caller{}
	s.callers[call.SessionID] = c
	// Callers give up after a while if nobody answers.
	s.after(20*time.Second+s.exp(100*time.Second), func(ctx context.Context) {
		if s.callers[call.SessionID] == c && !c.answered {
			delete(s.callers, call.SessionID)
			s.ok("caller gives up", s.hangup(ctx, call.SessionID, event.PartyCaller))
		}
	})
}

func (s *sim) ringAll(queueID string) bool {
	for _, q := range s.snap.Queues {
		if q.ID == queueID {
			return q.Strategy == event.StrategyRingAll
		}
	}
	return false
}

// pickQueue chooses the queue of the next call; the first call goes to a
// ring-all queue when there is one, so a rescind shows up early.
func (s *sim) pickQueue() string {
	if s.calls == 1 {
		for _, q := range s.snap.Queues {
			if q.Strategy == event.StrategyRingAll {
				return q.ID
			}
		}
	}
	weights := make([]float64, len(s.snap.Queues))
	total := 0.0
	for i, q := range s.snap.Queues {
		weights[i] = 1
		if q.Strategy == event.StrategyRingAll {
			weights[i] = 0.5
		}
		total += weights[i]
	}
	x := s.rng.Float64() * total
	for i, w := range weights {
		if x < w {
			return s.snap.Queues[i].ID
		}
		x -= w
	}
	return s.snap.Queues[len(s.snap.Queues)-1].ID
}

// react answers what the last look at the account showed: offers to
// decide on, answered calls to time.
func (s *sim) react() {
	present := map[string]bool{}
	for _, q := range s.snap.Queues {
		for _, c := range q.Callers {
			present[c.SessionID] = true
		}
	}
	for _, r := range s.snap.Recipients {
		if s.cfg.Leave != nil && s.cfg.Leave(r.ID) {
			continue
		}
		if o := r.Offer; o != nil {
			present[o.SessionID] = true
			key := o.SessionID + "|" + r.ID
			if !s.decided[key] {
				s.decided[key] = true
				s.offers++
				s.decide(r.ID, o.SessionID, o.QueueID)
			}
		}
		if as := r.ActiveSession; as != nil {
			present[as.SessionID] = true
			if as.QueueID != "" && !s.talking[as.SessionID] {
				s.talking[as.SessionID] = true
				if c := s.callers[as.SessionID]; c != nil {
					c.answered = true
				}
				s.talk(r.ID, as.SessionID)
			}
		}
	}
	// Forget what the account no longer shows, so memory stays bounded.
	for key := range s.decided {
		sid, _, _ := strings.Cut(key, "|")
		if !present[sid] {
			delete(s.decided, key)
		}
	}
	for sid := range s.talking {
		if !present[sid] {
			delete(s.talking, sid)
		}
	}
	for sid := range s.callers {
		if !present[sid] {
			delete(s.callers, sid)
		}
	}
}

// decide is an agent's answer to a ringing call: mostly take it after a
// few seconds, sometimes decline, sometimes let it ring out. Early in a
// run one offer is declined and one left to ring out, so both kinds of
// reject show up within the first minutes.
func (s *sim) decide(recipientID, sessionID, queueID string) {
	// Ring-all offers race each other, so the early demonstrations use
	// offers from other queues.
	demo := !s.ringAll(queueID) && s.offers >= 2
	p := s.rng.Float64()
	switch {
	case demo && !s.rejected || p < 0.06:
		reason := event.RejectDeclined
		if s.chance(0.2) {
			reason = event.RejectBusy
		}
		s.after(s.uniform(time.Second, 3*time.Second), func(ctx context.Context) {
			if s.ok("reject a call", send(ctx, s, engine.Reject, engine.RejectRequest{SessionID: sessionID, RecipientID: recipientID, Reason: reason})) {
				s.rejected = true
			}
		})
	case demo && !s.ignored || p < 0.11:
		s.ignored = true // let it ring until the offer times out
	default:
		s.after(s.uniform(time.Second, 5*time.Second), func(ctx context.Context) {
			s.ok("answer a call", send(ctx, s, engine.Accept, engine.AcceptRequest{SessionID: sessionID, RecipientID: recipientID}))
		})
	}
}

// talk schedules the end of an answered call, then its finalize.
func (s *sim) talk(recipientID, sessionID string) {
	// Log-normal talk time, median 45 s; the first calls are short so a
	// newcomer sees the whole life of a call quickly.
	d := time.Duration(45 * math.Exp(0.5*s.rng.NormFloat64()) * float64(time.Second))
	if len(s.talking) <= 3 && s.calls <= 6 {
		d = s.uniform(15*time.Second, 35*time.Second)
	}
	d = max(d, 12*time.Second)
	by := event.PartyRecipient
	if s.chance(0.45) {
		by = event.PartyCaller
	}
	s.after(d, func(ctx context.Context) {
		if !s.ok("hang up", s.hangup(ctx, sessionID, by)) || s.chance(0.15) {
			return // sometimes the agent forgets and the window times out
		}
		s.after(s.uniform(3*time.Second, 25*time.Second), func(ctx context.Context) {
			dispositions := []string{"resolved", "follow-up", "sale", "escalated", "wrong number"}
			s.ok("finalize", send(ctx, s, engine.Finalize, engine.FinalizeRequest{SessionID: sessionID, Finalization: engine.Finalization{
				RecipientID: recipientID,
				Disposition: dispositions[s.rng.IntN(len(dispositions))],
				Notes:       "Simulated call notes.",
			}}))
		})
	})
}

// agents returns the recipients whose state is one of states.
func (s *sim) agents(states ...event.State) []engine.Recipient {
	var out []engine.Recipient
	for _, r := range s.snap.Recipients {
		if slices.Contains(states, r.State) && (s.cfg.Leave == nil || !s.cfg.Leave(r.ID)) {
			out = append(out, r)
		}
	}
	return out
}

func (s *sim) pick(rs []engine.Recipient) engine.Recipient { return rs[s.rng.IntN(len(rs))] }

func (s *sim) setStatus(ctx context.Context, id string, a engine.Action, queue, reason string) bool {
	_, err := engine.SetStatus.Call(ctx, s.svc, s.acc, engine.SetStatusRequest{RecipientID: id, StatusRequest: engine.StatusRequest{Action: a, QueueID: queue, Reason: reason}})
	return s.ok(string(a), err)
}

// away sends a free agent on a break and brings them back later.
func (s *sim) away(ctx context.Context) {
	// A ringing call is withdrawn and wrap-up ends when an agent leaves.
	ready := s.agents(event.StateReady, event.StateOffered, event.StateWrapup)
	if len(ready) == 0 {
		s.after(5*time.Second, s.away)
		return
	}
	s.after(s.exp(45*time.Second), s.away)
	r := s.pick(ready)
	reasons := []string{"break", "lunch", "training", "meeting"}
	back := s.uniform(20*time.Second, 80*time.Second)
	if !s.awayOnce {
		s.awayOnce, back = true, s.uniform(15*time.Second, 40*time.Second)
	}
	if s.setStatus(ctx, r.ID, engine.ActionAway, "", reasons[s.rng.IntN(len(reasons))]) {
		s.after(back, func(ctx context.Context) {
			s.setStatus(ctx, r.ID, engine.ActionReady, "", "")
		})
	}
}

// pause has an agent stop taking one queue for a while.
func (s *sim) pause(ctx context.Context) {
	var cands []engine.Recipient
	for _, r := range s.agents(event.StateReady, event.StateAway, event.StateBusy, event.StateWrapup, event.StateOffered) {
		if len(r.Queues) > 1 && len(r.PausedQueues) == 0 && !slices.Contains(r.Queues, campaignQueue) {
			cands = append(cands, r)
		}
	}
	if len(cands) == 0 {
		s.after(5*time.Second, s.pause)
		return
	}
	s.after(s.exp(70*time.Second), s.pause)
	r := s.pick(cands)
	// Not the campaign queue: it may close under the pause.
	qs := slices.DeleteFunc(slices.Clone(r.Queues), func(q string) bool { return q == campaignQueue })
	q := qs[s.rng.IntN(len(qs))]
	if s.setStatus(ctx, r.ID, engine.ActionPause, q, "focus on another queue") {
		s.after(s.uniform(15*time.Second, 50*time.Second), func(ctx context.Context) {
			s.setStatus(ctx, r.ID, engine.ActionResume, q, "")
		})
	}
}

// externalCall has a ready agent place (or take) a call outside the queues.
func (s *sim) externalCall(ctx context.Context) {
	// Agents on a break make no calls; one with a call ringing may.
	free := s.agents(event.StateReady, event.StateOffered)
	if len(free) == 0 {
		s.after(5*time.Second, s.externalCall)
		return
	}
	s.after(s.exp(60*time.Second), s.externalCall)
	r := s.pick(free)
	dir := event.Outbound
	if s.chance(0.2) {
		dir = event.Inbound
	}
	_, err := engine.StartExternalCall.Call(ctx, s.svc, s.acc, engine.ExternalCallRequest{RecipientID: r.ID, ExternalCall: engine.ExternalCall{Direction: dir, Number: s.phone()}})
	if !s.ok("start an external call", err) {
		return
	}
	by := event.PartyRecipient
	if s.chance(0.4) {
		by = event.PartyCaller
	}
	s.after(s.uniform(10*time.Second, 45*time.Second), func(ctx context.Context) {
		s.ok("end an external call", send(ctx, s, engine.EndExternalCall, engine.ExternalCallRequest{RecipientID: r.ID, HangupBy: by}))
	})
}

// wiretap has the supervisor listen in on an agent, mostly one on a call.
// The first attempt picks an idle agent (and fails: nothing to monitor);
// the second follows soon after on a busy one.
func (s *sim) wiretap(ctx context.Context) {
	busy := s.agents(event.StateBusy, event.StateExternalCall)
	idle := s.agents(event.StateReady, event.StateAway, event.StateWrapup)
	var target []engine.Recipient
	switch {
	case s.wiretaps == 0:
		target = idle
	case s.wiretaps == 1 || s.chance(0.8):
		target = busy
	default:
		target = idle
	}
	if len(target) == 0 {
		s.after(5*time.Second, s.wiretap)
		return
	}
	s.wiretaps++
	if s.wiretaps == 1 {
		s.after(s.uniform(10*time.Second, 20*time.Second), s.wiretap)
	} else {
		s.after(s.exp(40*time.Second), s.wiretap)
	}
	r := s.pick(target)
	modes := event.WiretapModes()
	w := engine.Wiretap{RecipientID: r.ID, SupervisorID: Supervisor, Mode: modes[s.rng.IntN(len(modes))]}
	if s.ok("start a wiretap", send(ctx, s, engine.StartWiretap, w)) {
		s.after(s.uniform(8*time.Second, 30*time.Second), func(ctx context.Context) {
			s.ok("stop a wiretap", send(ctx, s, engine.StopWiretap, w))
		})
	}
}

// logout has a ready agent log out and back in a little later.
func (s *sim) logout(ctx context.Context) {
	var free []engine.Recipient // agents on a break or with a paused queue come back first
	for _, r := range s.agents(event.StateReady, event.StateOffered) {
		if len(r.PausedQueues) == 0 {
			free = append(free, r)
		}
	}
	if len(free) == 0 || len(s.agents(event.StateLoggedOut)) >= len(s.snap.Recipients)/2 {
		s.after(5*time.Second, s.logout)
		return
	}
	s.after(s.exp(150*time.Second), s.logout)
	r := s.pick(free)
	if s.setStatus(ctx, r.ID, engine.ActionLogout, "", "") {
		s.after(s.uniform(10*time.Second, 30*time.Second), func(ctx context.Context) {
			s.setStatus(ctx, r.ID, engine.ActionLogin, "", "")
		})
	}
}

// sync asks for an on-demand sync of a logged-in agent.
func (s *sim) sync(ctx context.Context) {
	s.after(s.exp(60*time.Second), s.sync)
	in := s.agents(event.StateReady, event.StateAway, event.StateOffered, event.StateBusy, event.StateWrapup, event.StateExternalCall)
	if len(in) > 0 {
		s.ok("sync", send(ctx, s, engine.Sync, engine.RecipientRef{RecipientID: s.pick(in).ID}))
	}
}

// startCampaign opens a short-lived campaign queue served by two agents,
// closes it a minute later and opens it again after a while.
func (s *sim) startCampaign(ctx context.Context) {
	_, err := engine.CreateQueue.Call(ctx, s.svc, s.acc, engine.QueueConfig{
		ID: campaignQueue, Name: "Spring campaign", Strategy: event.StrategyFewestCalls,
		OfferTimeoutS: 15, WrapupS: 5, MaxWaitS: 180, MaxSize: 8, FinalizeTimeoutS: 30,
	})
	if err != nil && !errors.Is(err, engine.ErrConflict) {
		s.ok("open the campaign queue", err)
		s.after(30*time.Second, s.startCampaign)
		return
	}
	rs := slices.Clone(s.snap.Recipients)
	s.rng.Shuffle(len(rs), func(i, j int) { rs[i], rs[j] = rs[j], rs[i] })
	for _, r := range rs[:min(2, len(rs))] {
		cfg := r.RecipientConfig
		if !slices.Contains(cfg.Queues, campaignQueue) {
			cfg.Queues = append(slices.Clone(cfg.Queues), campaignQueue)
		}
		_, err := engine.UpdateRecipient.Call(ctx, s.svc, s.acc, engine.UpdateRecipientRequest{RecipientID: r.ID, RecipientConfig: cfg})
		s.ok("staff the campaign queue", err)
	}
	s.after(s.uniform(50*time.Second, 80*time.Second), func(ctx context.Context) {
		s.ok("close the campaign queue", send(ctx, s, engine.DeleteQueue, engine.QueueRef{QueueID: campaignQueue}))
		s.after(s.uniform(60*time.Second, 180*time.Second), s.startCampaign)
	})
}

type actionHeap []*action

func (h actionHeap) Len() int { return len(h) }
func (h actionHeap) Less(i, j int) bool {
	if h[i].at.Equal(h[j].at) {
		return h[i].seq < h[j].seq
	}
	return h[i].at.Before(h[j].at)
}
func (h actionHeap) Swap(i, j int) { h[i], h[j] = h[j], h[i] }
func (h *actionHeap) Push(x any)   { *h = append(*h, x.(*action)) }
func (h *actionHeap) Pop() any {
	old := *h
	a := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	return a
}
