package engine

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/ccevents/ccevents/internal/event"
)

// handleSamples is how many recent calls the average handle time covers.
const handleSamples = 20

type queue struct {
	cfg     QueueConfig
	members []*recipient // serving recipients, sorted by id
	waiting []*session   // callers in position order
	rrLast  string       // round robin: the recipient offered last
	handle  [handleSamples]time.Duration
	nHandle int // samples recorded, capped at handleSamples
}

func (q *queue) recordHandle(d time.Duration) {
	q.handle[q.nHandle%handleSamples] = d
	q.nHandle++
}

// averageHandle is the mean of the recent handle times, or def before any.
func (q *queue) averageHandle(def time.Duration) time.Duration {
	n := min(q.nHandle, handleSamples)
	if n == 0 {
		return def
	}
	var sum time.Duration
	for _, d := range q.handle[:n] {
		sum += d
	}
	return sum / time.Duration(n)
}

// dayOf is t's UTC day, counted in days since the Unix epoch.
func dayOf(t time.Time) int64 {
	const secondsPerDay = 86400
	sec := t.Unix()
	d := sec / secondsPerDay
	if sec%secondsPerDay < 0 {
		d-- // floor, for times before 1970
	}
	return d
}

// dayString formats a day from dayOf as a date, e.g. 2026-11-25.
func dayString(d int64) string {
	return time.Unix(d*86400, 0).UTC().Format(time.DateOnly)
}

func (q *queue) position(s *session) int {
	return slices.Index(q.waiting, s) + 1
}

type recipient struct {
	cfg        RecipientConfig
	state      event.State
	since      time.Time // when state began
	avail      event.State
	availSince time.Time
	paused     map[string]time.Time // queue id -> paused since
	offer      *offer               // ringing call, state offered
	call       *session             // the call the recipient is on, state busy or external_call
	wrapup     *session             // the call being wrapped up, state wrapup
	wrapStart  time.Time
	wrapTimer  Timer
	idleSince  time.Time // most_idle: when the recipient last became free
	calls      int       // fewest_calls: calls taken since login
	heldUntil  time.Time // no offers before this (a quick reject; hold.go)
	holdTimer  Timer     // dispatches again when the hold ends
}

func (r *recipient) loggedIn() bool { return r.state != event.StateLoggedOut }

func (r *recipient) serves(queueID string) bool {
	_, ok := slices.BinarySearch(r.cfg.Queues, queueID)
	return ok
}

func (r *recipient) isPaused(queueID string) bool {
	_, ok := r.paused[queueID]
	return ok
}

func (r *recipient) pausedList() []string {
	out := make([]string, 0, len(r.paused))
	for q := range r.paused {
		out = append(out, q)
	}
	slices.Sort(out)
	return out
}

type phase int

const (
	phaseWaiting   phase = iota // in a queue, maybe ringing recipients
	phaseConnected              // talking to a recipient (queue or external call)
	phaseEnded                  // hung up; wrap-up or finalize window still open
)

type session struct {
	id           string
	queue        *queue // nil for external calls and after the queue was deleted
	queueID      string
	callerName   string
	callerNumber string
	callee       string
	direction    event.Direction
	external     bool
	phase        phase
	order        uint64 // join order across the account's queues
	created      time.Time
	joined       time.Time
	answered     time.Time
	ended        time.Time
	offers       []*offer
	excluded     map[string]bool // recipients who rejected this call
	recipient    *recipient
	hangupBy     event.Party
	cause        event.Cause
	maxWait      Timer
	wrapupS      int // the queue's settings when the call arrived
	finalizeS    int
	wrapupOpen   bool
	finalizeOpen bool
	finalizeAt   time.Time
	finalize     Timer
	wiretap      *wiretap
	stored       bool // recorded in the bucket as a call in progress
	slot         int  // its key's slot while stored
}

func (s *session) offerTo(r *recipient) *offer {
	for _, o := range s.offers {
		if o.r == r {
			return o
		}
	}
	return nil
}

type offer struct {
	s     *session
	r     *recipient
	at    time.Time
	timer Timer
}

type wiretap struct {
	supervisor string
	mode       event.WiretapMode
	started    time.Time
}

// move changes a recipient's state and returns the transition to report.
func (a *account) move(r *recipient, to event.State) event.Transition {
	tr := event.Transition{State: to, PreviousState: r.state}
	if r.state == event.StateReady {
		a.readyCount--
	}
	if to == event.StateReady {
		a.readyCount++
	}
	if to != r.state {
		r.since = a.now
	}
	r.state = to
	return tr
}

// setAvail changes where the recipient returns after calls.
func (a *account) setAvail(r *recipient, to event.State) {
	if r.avail != to {
		r.avail, r.availSince = to, a.now
	}
}

func (a *account) addRecipient(cfg RecipientConfig) *recipient {
	r := &recipient{cfg: cfg, state: event.StateLoggedOut, since: a.now, paused: map[string]time.Time{}}
	a.recipients[cfg.ID] = r
	for _, qid := range cfg.Queues {
		a.queues[qid].addMember(r)
	}
	return r
}

func (q *queue) addMember(r *recipient) {
	i, found := slices.BinarySearchFunc(q.members, r.cfg.ID, func(m *recipient, id string) int { return cmp.Compare(m.cfg.ID, id) })
	if !found {
		q.members = slices.Insert(q.members, i, r)
	}
}

func (q *queue) removeMember(r *recipient) {
	q.members = slices.DeleteFunc(q.members, func(m *recipient) bool { return m == r })
}

func (a *account) sortedRecipients() []*recipient { return sortedByID(a.recipients) }
func (a *account) sortedQueues() []*queue         { return sortedByID(a.queues) }

// sortedByID lists the values of m, a map by id, in the order of their ids.
func sortedByID[V any](m map[string]V) []V {
	out := make([]V, 0, len(m))
	for _, id := range slices.Sorted(maps.Keys(m)) {
		out = append(out, m[id])
	}
	return out
}

func stopTimer(t Timer) {
	if t != nil {
		t.Stop()
	}
}

func ms(d time.Duration) int64 { return max(0, d.Milliseconds()) }

func stamp(t time.Time) string {
	return t.UTC().Truncate(time.Millisecond).Format(event.TimestampLayout)
}
