// Package enginetest serves the tests of the engine and of the packages
// built on it. Start runs an engine for a test and closes it when the test
// ends. The Checker verifies the engine's promises on a published event
// stream: tests feed it every event of an account in stream order, and it
// never looks at the engine itself, nor does the statistics recomputation
// beside it share code with internal/stats, which it checks.
package enginetest

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
)

// Checker replays one account's events, in stream order, and records every
// broken promise: events that fail catalogue validation, a join without
// exactly one leave, a second offer to a recipient with one outstanding,
// an offer or delivery to a recipient who is away, paused for the queue, in
// wrap-up or on another call, a reject that does not leave the recipient
// away exactly when they were unreachable, an offer sooner than
// engine.MinOfferInterval after the start of one the recipient rejected, queue positions that are not contiguous, a
// session's events out of causal order, state/previous_state chains that
// do not join up, and statistics events whose figures differ from what
// the events before them say (see statsRef).
type Checker struct {
	account string
	errs    []string
	counts  map[string]int
	ids     map[string]bool
	lastTS  int64
	n       int

	queues   map[string]*queueState
	recips   map[string]*recipState
	sessions map[string]*sessState
	// days holds each queue's totals of its latest UTC day; they outlive
	// a queue stopped by a shutdown, not a deleted one.
	days map[string]*dayTotals
	// stats recomputes the statistics to hold each stats event against.
	stats *statsRef
}

type dayTotals struct {
	day                  string
	delivered, abandoned int
}

type queueState struct {
	running bool
	waiting []string
}

type recipState struct {
	state  event.State
	paused map[string]bool
	offers map[string]bool // sessions ringing this recipient
	active string          // session the recipient is on
	queues []string
	// offeredAt is when the last offer began (ms); heldUntil is when the
	// next may, after a reject (engine.MinOfferInterval).
	offeredAt, heldUntil int64
}

type sessState struct {
	created, deleted   bool
	external           bool
	queue              string
	joined, left       bool
	offered            map[string]bool
	delivered          string // recipient
	hungup             bool
	wrapStart, wrapEnd bool
	finStart, finEnd   bool
	tapped             string // supervisor
}

// msg is the union of the payload fields the checks read.
type msg struct {
	AccountID      string   `json:"account_id"`
	Event          string   `json:"event"`
	EventID        string   `json:"event_id"`
	TimestampMS    int64    `json:"timestamp_ms"`
	Sequence       *uint64  `json:"sequence"`
	QueueID        string   `json:"queue_id"`
	RecipientID    string   `json:"recipient_id"`
	SessionID      string   `json:"session_id"`
	State          string   `json:"state"`
	PreviousState  string   `json:"previous_state"`
	Position       int      `json:"position"`
	Reason         string   `json:"reason"`
	Waiting        int      `json:"waiting"`
	PausedQueues   []string `json:"paused_queues"`
	Queues         []string `json:"queues"`
	ActiveSessions []struct {
		SessionID string `json:"session_id"`
	} `json:"active_sessions"`
}

// NewChecker returns a checker for one account's events.
func NewChecker(account string) *Checker {
	return &Checker{
		account:  account,
		counts:   map[string]int{},
		ids:      map[string]bool{},
		queues:   map[string]*queueState{},
		recips:   map[string]*recipState{},
		sessions: map[string]*sessState{},
		days:     map[string]*dayTotals{},
		stats:    newStatsRef(),
	}
}

// CheckStatsInterval makes the checker also refuse two stats events of one
// queue (or of the account) less than d apart.
func (c *Checker) CheckStatsInterval(d time.Duration) { c.stats.interval = d }

// StatsAt recomputes, from the events applied so far, the account's and
// each queue's statistics at t (Unix ms), as a stats event at t must hold
// them; queue names and targets are left empty.
func (c *Checker) StatsAt(t int64) (event.Figures, map[string]event.QueueFigures) {
	qs := map[string]event.QueueFigures{}
	for id := range c.stats.queues {
		qs[id], _ = c.stats.Queue(id, t)
	}
	return c.stats.Account(t), qs
}

// LastStats returns the last stats event of each queue, and of the account
// under "", applied so far.
func (c *Checker) LastStats() map[string]json.RawMessage { return c.stats.last }

func (c *Checker) failf(m *msg, format string, args ...any) {
	if len(c.errs) >= 50 {
		return
	}
	c.errs = append(c.errs, fmt.Sprintf("event %d (%s q=%s r=%s s=%s): %s", c.n, m.Event, m.QueueID, m.RecipientID, m.SessionID, fmt.Sprintf(format, args...)))
}

// Violations lists what went wrong so far (at most 50), empty when all held.
func (c *Checker) Violations() []string { return c.errs }

// Counts says how many events of each "<family>.<name>" were seen.
func (c *Checker) Counts() map[string]int { return c.counts }

// Events is how many events were applied.
func (c *Checker) Events() int { return c.n }

func (c *Checker) recip(id string) *recipState {
	r := c.recips[id]
	if r == nil {
		r = &recipState{state: event.StateLoggedOut, paused: map[string]bool{}, offers: map[string]bool{}}
		c.recips[id] = r
	}
	return r
}

// Apply checks one published event; events must come in stream order.
func (c *Checker) Apply(subject string, data []byte) {
	c.n++
	var m msg
	if _, _, err := event.Validate(subject, data); err != nil {
		c.failf(&m, "invalid event on %s: %v", subject, err)
		return
	}
	if err := json.Unmarshal(data, &m); err != nil {
		c.failf(&m, "undecodable: %v", err)
		return
	}
	c.counts[m.Event]++
	c.documentedStates(&m)
	if m.AccountID != c.account {
		c.failf(&m, "account %s, want %s", m.AccountID, c.account)
	}
	if c.ids[m.EventID] {
		c.failf(&m, "event id %s seen twice", m.EventID)
	}
	c.ids[m.EventID] = true
	if m.Sequence != nil {
		c.failf(&m, "published payload carries a sequence")
	}
	if m.TimestampMS < c.lastTS {
		c.failf(&m, "timestamp went back from %d to %d", c.lastTS, m.TimestampMS)
	}
	c.lastTS = m.TimestampMS

	var s *sessState
	if m.SessionID != "" {
		s = c.sessions[m.SessionID]
		switch {
		case m.Event == "session.create":
		case s == nil || !s.created:
			c.failf(&m, "session event before session.create")
			s = &sessState{offered: map[string]bool{}}
			c.sessions[m.SessionID] = s
		case s.deleted:
			c.failf(&m, "session event after session.delete")
		}
	}
	var r *recipState
	if m.RecipientID != "" {
		r = c.recip(m.RecipientID)
	}
	// Every recipient event with a transition must start where the last ended.
	if r != nil && m.PreviousState != "" {
		if event.State(m.PreviousState) != r.state {
			c.failf(&m, "previous_state %s but the recipient was %s", m.PreviousState, r.state)
		}
		r.state = event.State(m.State)
	}
	c.check(&m, s, r)
	c.countDay(&m)
	family, _, _, name, _ := event.ParseSubject(subject)
	p, _ := event.New(family, name)
	if err := json.Unmarshal(data, p); err != nil {
		c.failf(&m, "does not decode into %T: %v", p, err)
		return
	}
	if complaint := c.stats.apply(p, data); complaint != "" {
		c.failf(&m, "%s", complaint)
	}
}

// countDay keeps the totals a queue's delivered_today and abandoned_today
// must equal: its queue.delivered and abandoned queue.leave events of the
// event's UTC day.
func (c *Checker) countDay(m *msg) {
	abandoned := m.Event == "queue.leave" && m.Reason == string(event.LeaveAbandoned)
	switch {
	case m.Event == "queue.delete" && m.Reason == string(event.QueueDeleted):
		delete(c.days, m.QueueID)
		return
	case m.Event != "queue.delivered" && !abandoned:
		return
	}
	day := time.UnixMilli(m.TimestampMS).UTC().Format(time.DateOnly)
	t := c.days[m.QueueID]
	if t == nil || t.day != day {
		t = &dayTotals{day: day}
		c.days[m.QueueID] = t
	}
	if abandoned {
		t.abandoned++
	} else {
		t.delivered++
	}
}

func (c *Checker) check(m *msg, s *sessState, r *recipState) {
	switch m.Event {
	case "queue.create":
		q := c.queues[m.QueueID]
		if q != nil && q.running {
			c.failf(m, "queue created while running")
		}
		c.queues[m.QueueID] = &queueState{running: true}
	case "queue.delete":
		q := c.queues[m.QueueID]
		if q == nil || !q.running {
			c.failf(m, "queue deleted while not running")
			return
		}
		if len(q.waiting) > 0 {
			c.failf(m, "queue deleted with %d callers still in it", len(q.waiting))
		}
		q.running = false
		// Recipients stop serving a deleted queue, pauses included; a
		// queue stopped by a shutdown keeps both.
		if m.Reason == string(event.QueueDeleted) {
			for _, r := range c.recips {
				delete(r.paused, m.QueueID)
			}
		}
	case "queue.join":
		q := c.queues[m.QueueID]
		if q == nil || !q.running {
			c.failf(m, "join to a queue that is not running")
			return
		}
		if s.joined {
			c.failf(m, "session joined twice")
		}
		s.joined, s.queue = true, m.QueueID
		q.waiting = append(q.waiting, m.SessionID)
		if m.Position != len(q.waiting) {
			c.failf(m, "join position %d, want %d", m.Position, len(q.waiting))
		}
	case "queue.leave":
		q := c.queues[m.QueueID]
		if q == nil || !s.joined || s.left || s.queue != m.QueueID {
			c.failf(m, "leave without a join to this queue")
			return
		}
		i := slices.Index(q.waiting, m.SessionID)
		if m.Position != i+1 {
			c.failf(m, "leave position %d, caller is at %d", m.Position, i+1)
		}
		if i >= 0 {
			q.waiting = slices.Delete(q.waiting, i, i+1)
		}
		s.left = true
		if len(s.offered) > 0 {
			c.failf(m, "caller left while still ringing %v", keys(s.offered))
		}
		if (m.Reason == "delivered") != (s.delivered != "") {
			c.failf(m, "leave reason %s but delivered to %q", m.Reason, s.delivered)
		}
	case "queue.delivered":
		q := c.queues[m.QueueID]
		if q == nil || !s.joined || s.left {
			c.failf(m, "delivered while not waiting")
			return
		}
		if i := slices.Index(q.waiting, m.SessionID); m.Position != i+1 {
			c.failf(m, "delivered position %d, caller is at %d", m.Position, i+1)
		}
		if !s.offered[m.RecipientID] {
			c.failf(m, "delivered to a recipient the call was not offered to")
		}
	case "recipient.create":
		if m.PreviousState != string(event.StateLoggedOut) || m.State == string(event.StateLoggedOut) {
			c.failf(m, "login from %s to %s", m.PreviousState, m.State)
		}
		clear(r.paused)
		r.queues = m.Queues
	case "recipient.delete":
		if m.State != string(event.StateLoggedOut) {
			c.failf(m, "logout to %s", m.State)
		}
		if len(r.offers) > 0 || r.active != "" {
			c.failf(m, "logged out with offers %v, call %q", keys(r.offers), r.active)
		}
		clear(r.paused)
	case "recipient.ready", "recipient.away":
		if m.State != m.Event[len("recipient."):] {
			c.failf(m, "%s to state %s", m.Event, m.State)
		}
	case "recipient.pause":
		if m.State != m.PreviousState {
			c.failf(m, "pause changed state")
		}
		if r.paused[m.QueueID] {
			c.failf(m, "paused twice")
		}
		for sid := range r.offers {
			if c.sessions[sid].queue == m.QueueID {
				c.failf(m, "paused while %s rings from that queue", sid)
			}
		}
		r.paused[m.QueueID] = true
		c.samePaused(m, r)
	case "recipient.resume":
		if m.State != m.PreviousState {
			c.failf(m, "resume changed state")
		}
		if !r.paused[m.QueueID] {
			c.failf(m, "resumed a queue not paused")
		}
		delete(r.paused, m.QueueID)
		c.samePaused(m, r)
	case "recipient.offer":
		if m.PreviousState != string(event.StateReady) || m.State != string(event.StateOffered) {
			c.failf(m, "offer to a recipient in state %s", m.PreviousState)
		}
		if len(r.offers) > 0 {
			c.failf(m, "second offer while %v is outstanding", keys(r.offers))
		}
		if r.paused[m.QueueID] {
			c.failf(m, "offer from a queue the recipient paused")
		}
		if !slices.Contains(r.queues, m.QueueID) {
			c.failf(m, "offer from a queue the recipient does not serve (serves %v)", r.queues)
		}
		if r.active != "" {
			c.failf(m, "offer to a recipient on call %s", r.active)
		}
		if !s.joined || s.left || s.queue != m.QueueID {
			c.failf(m, "offer of a caller not waiting in the queue")
		}
		if m.TimestampMS < r.heldUntil {
			c.failf(m, "offer %d ms after the start of an offer the recipient rejected; none may come before %d ms", m.TimestampMS-r.offeredAt, r.heldUntil)
		}
		r.offeredAt = m.TimestampMS
		r.offers[m.SessionID] = true
		s.offered[m.RecipientID] = true
	case "recipient.reject", "recipient.rescind":
		if !r.offers[m.SessionID] || !s.offered[m.RecipientID] {
			c.failf(m, "%s of an offer not outstanding", m.Event)
		}
		delete(r.offers, m.SessionID)
		delete(s.offered, m.RecipientID)
		if m.PreviousState != string(event.StateOffered) {
			c.failf(m, "%s from state %s", m.Event, m.PreviousState)
		}
		if m.Event == "recipient.reject" {
			// Redirection on no answer: a recipient who cannot be reached
			// goes away; anyone else rang while ready and stays so.
			want := event.StateReady
			if m.Reason == string(event.RejectUnreachable) {
				want = event.StateAway
			}
			if m.State != string(want) {
				c.failf(m, "reject (%s) to state %s, want %s", m.Reason, m.State, want)
			}
			r.heldUntil = r.offeredAt + engine.MinOfferInterval.Milliseconds()
		}
	case "recipient.delivered":
		if !r.offers[m.SessionID] {
			c.failf(m, "delivered without an outstanding offer")
		}
		if m.PreviousState != string(event.StateOffered) || m.State != string(event.StateBusy) {
			c.failf(m, "delivered from %s to %s", m.PreviousState, m.State)
		}
		if r.paused[m.QueueID] {
			c.failf(m, "delivered from a queue the recipient paused")
		}
		delete(r.offers, m.SessionID)
		delete(s.offered, m.RecipientID)
		r.active, s.delivered = m.SessionID, m.RecipientID
	case "recipient.hangup":
		if r.active != m.SessionID || s.delivered != m.RecipientID || s.hungup {
			c.failf(m, "hangup of a call the recipient is not on")
		}
		if s.tapped != "" {
			c.failf(m, "hangup while still monitored")
		}
		r.active, s.hungup = "", true
	case "recipient.wrapup_start":
		if !s.hungup || s.wrapStart || m.State != string(event.StateWrapup) {
			c.failf(m, "wrap-up start out of order")
		}
		s.wrapStart = true
	case "recipient.wrapup_complete":
		if !s.wrapStart || s.wrapEnd || m.PreviousState != string(event.StateWrapup) {
			c.failf(m, "wrap-up complete out of order")
		}
		s.wrapEnd = true
	case "recipient.interaction_finalize_start":
		if !s.hungup || s.finStart {
			c.failf(m, "finalize start out of order")
		}
		s.finStart = true
	case "recipient.interaction_finalize_end":
		if !s.finStart || s.finEnd {
			c.failf(m, "finalize end out of order")
		}
		s.finEnd = true
	case "recipient.external_call_start":
		if r.active != "" || len(r.offers) > 0 || m.State != string(event.StateExternalCall) {
			c.failf(m, "external call started while busy (call %q, offers %v)", r.active, keys(r.offers))
		}
		r.active, s.external = m.SessionID, true
	case "recipient.external_call_end":
		if r.active != m.SessionID || !s.external {
			c.failf(m, "external call end of a call the recipient is not on")
		}
		if s.tapped != "" {
			c.failf(m, "external call ended while still monitored")
		}
		r.active, s.hungup = "", true
	case "recipient.wiretap_start":
		if r.active != m.SessionID || s.tapped != "" {
			c.failf(m, "wiretap of a call not active or already monitored")
		}
		s.tapped = "x"
	case "recipient.wiretap_stop":
		if s.tapped == "" {
			c.failf(m, "wiretap stop without start")
		}
		s.tapped = ""
	case "recipient.wiretap_failed":
		switch m.Reason {
		case string(event.WiretapNoActiveSession):
			if r.active != "" {
				c.failf(m, "no_active_session while on call %s", r.active)
			}
		case string(event.WiretapAlreadyMonitored):
			if s == nil || s.tapped == "" {
				c.failf(m, "already_monitored but not monitored")
			}
		}
	case "recipient.sync":
		// An engine loading the account syncs every recipient, and holds
		// after a reject live in the memory of the engine that saw it.
		r.heldUntil = 0
		// A configuration change arrives as a sync with the new queues;
		// pauses of queues no longer served end with it.
		for _, q := range r.queues {
			if !slices.Contains(m.Queues, q) {
				delete(r.paused, q)
			}
		}
		r.queues = m.Queues
		if event.State(m.State) != r.state {
			c.failf(m, "sync says %s, events say %s", m.State, r.state)
		}
		c.samePaused(m, r)
		var active []string
		for _, as := range m.ActiveSessions {
			active = append(active, as.SessionID)
		}
		want := []string{}
		if r.active != "" {
			want = []string{r.active}
		}
		if fmt.Sprint(active) != fmt.Sprint(want) {
			c.failf(m, "sync active sessions %v, events say %v", active, want)
		}
	case "session.create":
		if s != nil {
			c.failf(m, "session created twice")
			return
		}
		c.sessions[m.SessionID] = &sessState{created: true, offered: map[string]bool{}}
	case "session.delete":
		if s.joined && !s.left {
			c.failf(m, "session deleted while still in queue %s", s.queue)
		}
		if len(s.offered) > 0 {
			c.failf(m, "session deleted while ringing %v", keys(s.offered))
		}
		if s.delivered != "" && !s.hungup || s.external && !s.hungup {
			c.failf(m, "session deleted before its call ended")
		}
		if s.wrapStart && !s.wrapEnd || s.finStart && !s.finEnd {
			c.failf(m, "session deleted before wrap-up/finalize closed")
		}
		s.deleted = true
	}
}

func (c *Checker) samePaused(m *msg, r *recipState) {
	got := slices.Clone(m.PausedQueues)
	sort.Strings(got)
	if fmt.Sprint(got) != fmt.Sprint(keys(r.paused)) {
		c.failf(m, "paused_queues %v, events say %v", got, keys(r.paused))
	}
}

// Finish checks what must hold once the engine has stopped (Close): every
// session ended, every join left, nothing ringing, every queue stopped.
func (c *Checker) Finish() {
	end := &msg{Event: "end of stream"}
	for id, s := range c.sessions {
		if !s.deleted {
			c.failf(end, "session %s never deleted", id)
		}
		if s.joined && !s.left {
			c.failf(end, "session %s joined but never left", id)
		}
	}
	for id, r := range c.recips {
		if len(r.offers) > 0 {
			c.failf(end, "recipient %s still has offers %v", id, keys(r.offers))
		}
	}
	for id, q := range c.queues {
		if q.running {
			c.failf(end, "queue %s still running", id)
		}
	}
}

// RecipientView is what the events say of one recipient.
type RecipientView struct {
	State  event.State
	Paused []string
	Offer  string // ringing session, if any
	Active string // session the recipient is on, if any
}

// Recipient reports what the events applied so far say of a recipient.
func (c *Checker) Recipient(id string) RecipientView {
	r := c.recip(id)
	v := RecipientView{State: r.state, Paused: keys(r.paused), Active: r.active}
	for s := range r.offers {
		v.Offer = s
	}
	return v
}

// Waiting lists the sessions waiting in a queue, in position order, as the
// events applied so far say.
func (c *Checker) Waiting(queueID string) []string {
	if q := c.queues[queueID]; q != nil {
		return slices.Clone(q.waiting)
	}
	return nil
}

// Today reports how many calls the events applied so far delivered from a
// queue and how many of its callers abandoned on day, a UTC date such as
// 2026-11-25; counting starts when the queue is created and again when it
// is deleted, not when it only stops for a shutdown.
func (c *Checker) Today(queueID, day string) (delivered, abandoned int) {
	if t := c.days[queueID]; t != nil && t.day == day {
		return t.delivered, t.abandoned
	}
	return 0, 0
}

// Running lists the queues running, as the events say, sorted.
func (c *Checker) Running() []string {
	var out []string
	for id, q := range c.queues {
		if q.running {
			out = append(out, id)
		}
	}
	sort.Strings(out)
	return out
}

func keys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// documentedState is what the catalogue promises about a state field of
// one event: a fixed value ("always ready"), or the same as state.
type documentedState struct {
	always   string
	sameAsIt bool
}

var alwaysState = regexp.MustCompile(`\(always ([a-z_]+)`)

// documentedStates reads, once, the catalogue's descriptions of state and
// previous_state, so the checker holds the engine to what docs/events.md
// says of each event.
var documentedStates = sync.OnceValue(func() map[string]documentedState {
	out := map[string]documentedState{}
	for _, sp := range event.Catalogue() {
		for _, f := range sp.Fields {
			if f.Name != "state" && f.Name != "previous_state" {
				continue
			}
			var d documentedState
			if m := alwaysState.FindStringSubmatch(f.Description); m != nil {
				d.always = m[1]
			}
			d.sameAsIt = f.Name == "previous_state" && strings.Contains(f.Description, "(the same as state)")
			if d != (documentedState{}) {
				out[sp.Event()+" "+f.Name] = d
			}
		}
	}
	return out
})

func (c *Checker) documentedStates(m *msg) {
	docs := documentedStates()
	for _, f := range []struct{ name, got string }{{"state", m.State}, {"previous_state", m.PreviousState}} {
		d, ok := docs[m.Event+" "+f.name]
		switch {
		case !ok:
		case d.always != "" && f.got != d.always:
			c.failf(m, "%s is %q; docs/events.md says it is always %s", f.name, f.got, d.always)
		case d.sameAsIt && f.got != m.State:
			c.failf(m, "%s is %q; docs/events.md says it equals state %q", f.name, f.got, m.State)
		}
	}
}
