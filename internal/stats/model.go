package stats

import (
	"cmp"
	"maps"
	"slices"
	"time"

	"github.com/ccevents/ccevents/internal/event"
)

// Defaults of a queue's Settings, used where a setting is zero.
const (
	DefaultServiceLevelS         = 20
	DefaultServiceLevelTargetPct = 80
	DefaultShortAbandonS         = 5
)

// Settings are what a queue's statistics are measured against.
type Settings struct {
	Name string
	// ServiceLevelS: a call answered after waiting at most this long is
	// answered in service level.
	ServiceLevelS int
	// ServiceLevelTargetPct is only reported, for displays to compare with.
	ServiceLevelTargetPct int
	// ShortAbandonS: a caller who hangs up before waiting this long is a
	// short abandon; 0 makes none short.
	ShortAbandonS int
}

// AccountKey is the key Dirty uses for the account-wide figures.
const AccountKey = ""

// Model holds one account's statistics; see the package doc. It is not
// safe for concurrent use: the engine calls it under the account's lock.
type Model struct {
	queues     map[string]*queue
	recipients map[string]*recipient
	account    series
	dirty      map[string]bool
}

type queue struct {
	id       string
	settings Settings
	waiting  []waiter // in join order
	members  map[string]*recipient
	series
}

type waiter struct {
	session string
	joined  int64
}

// recipient follows one logged-in recipient: its state since the start of
// the span not yet added to the series, the queues it serves and pauses,
// and the talk time of a call in wrap-up.
type recipient struct {
	id     string
	state  event.State
	since  int64
	queues []string
	paused []string

	wrapSession string
	wrapQueue   string
	wrapTalkMS  int64
}

// New returns an empty Model.
func New() *Model {
	return &Model{queues: map[string]*queue{}, recipients: map[string]*recipient{}, dirty: map[string]bool{}}
}

func (m *Model) touch(keys ...string) {
	for _, k := range keys {
		m.dirty[k] = true
	}
}

// Configure creates a queue, or changes its settings. Settings apply to
// calls counted from then on.
func (m *Model) Configure(queueID string, s Settings) {
	if s.ServiceLevelS <= 0 {
		s.ServiceLevelS = DefaultServiceLevelS
	}
	if s.ServiceLevelTargetPct <= 0 {
		s.ServiceLevelTargetPct = DefaultServiceLevelTargetPct
	}
	s.ShortAbandonS = max(s.ShortAbandonS, 0)
	q := m.queues[queueID]
	if q == nil {
		q = &queue{id: queueID, members: map[string]*recipient{}}
		for _, r := range m.recipients {
			if slices.Contains(r.queues, queueID) {
				q.members[r.id] = r
			}
		}
		m.queues[queueID] = q
	} else if q.settings == s {
		return
	}
	q.settings = s
	m.touch(queueID, AccountKey)
}

// Queues lists the queues the model holds, sorted.
func (m *Model) Queues() []string {
	return slices.Sorted(maps.Keys(m.queues))
}

// Dirty lists what changed since it was last cleaned: queue ids, sorted,
// then AccountKey.
func (m *Model) Dirty() []string {
	var out []string
	for k := range m.dirty {
		if k != AccountKey {
			if m.queues[k] != nil {
				out = append(out, k)
			} else {
				delete(m.dirty, k) // a deleted queue has nothing to report
			}
		}
	}
	slices.Sort(out)
	if m.dirty[AccountKey] {
		out = append(out, AccountKey)
	}
	return out
}

// Clean marks a key's figures as reported.
func (m *Model) Clean(key string) { delete(m.dirty, key) }

// Observe folds one event of the account into the model, at the event's
// timestamp. Events must come in stream order; statistics events and
// events the model has no use for are ignored.
func (m *Model) Observe(p event.Payload) {
	env := p.Env()
	t := env.TimestampMS
	switch p := p.(type) {
	case *event.QueueCreate:
		if m.queues[p.QueueID] == nil {
			m.Configure(p.QueueID, Settings{Name: p.QueueName})
		}
		m.touch(p.QueueID, AccountKey)
	case *event.QueueDelete:
		if p.Reason == event.QueueDeleted {
			delete(m.queues, p.QueueID)
		}
		m.touch(AccountKey)
	case *event.QueueJoin:
		if q := m.queues[p.QueueID]; q != nil {
			before := len(q.waiting)
			q.waiting = append(q.waiting, waiter{session: p.SessionID, joined: t})
			q.count(t, before, Counters{Offered: 1})
			q.levelChanged(t, before, len(q.waiting))
			m.touch(q.id, AccountKey)
		}
	case *event.QueueLeave:
		q := m.queues[p.QueueID]
		if q == nil {
			return
		}
		before := len(q.waiting)
		if i := slices.IndexFunc(q.waiting, func(w waiter) bool { return w.session == p.SessionID }); i >= 0 {
			q.waiting = slices.Delete(q.waiting, i, i+1)
		}
		var c Counters
		switch p.Reason {
		case event.LeaveAbandoned:
			c.Abandoned = 1
			if p.WaitDurationMS < int64(q.settings.ShortAbandonS)*1000 {
				c.AbandonedShort = 1
			}
		case event.LeaveTimeout:
			c.TimedOut = 1
		case event.LeaveQueueFull:
			c.QueueFull = 1
		}
		if !c.isZero() {
			q.count(t, before, c)
		}
		if len(q.waiting) != before {
			q.levelChanged(t, before, len(q.waiting))
		}
		m.touch(q.id, AccountKey)
	case *event.QueueDelivered:
		if q := m.queues[p.QueueID]; q != nil {
			c := Counters{Answered: 1, AnswerWaitMS: p.WaitDurationMS}
			if p.WaitDurationMS <= int64(q.settings.ServiceLevelS)*1000 {
				c.AnsweredInSL = 1
			}
			q.count(t, len(q.waiting), c)
			m.touch(q.id, AccountKey)
		}
	case *event.RecipientCreate:
		r := m.recipient(env.RecipientID, t)
		r.paused = nil
		m.setQueues(r, p.Queues, t)
		m.move(r, p.State, t)
	case *event.RecipientDelete:
		if r := m.recipients[env.RecipientID]; r != nil {
			m.move(r, event.StateLoggedOut, t)
			m.setQueues(r, nil, t)
			delete(m.recipients, r.id)
		}
	case *event.RecipientSync:
		r := m.recipient(env.RecipientID, t)
		m.move(r, p.State, t)
		m.setQueues(r, p.Queues, t)
		m.setPaused(r, p.PausedQueues)
		if p.State == event.StateLoggedOut {
			m.setQueues(r, nil, t)
			delete(m.recipients, r.id)
		}
	case *event.RecipientPause:
		if r := m.recipients[env.RecipientID]; r != nil {
			m.setPaused(r, p.PausedQueues)
		}
	case *event.RecipientResume:
		if r := m.recipients[env.RecipientID]; r != nil {
			m.setPaused(r, p.PausedQueues)
		}
	case *event.RecipientHangup:
		if p.State != event.StateWrapup {
			m.handled(env.QueueID, p.DurationMS, t)
		} else if r := m.recipients[env.RecipientID]; r != nil {
			r.wrapSession, r.wrapQueue, r.wrapTalkMS = env.SessionID, env.QueueID, p.DurationMS
		}
	case *event.RecipientWrapupComplete:
		if r := m.recipients[env.RecipientID]; r != nil && r.wrapSession == env.SessionID {
			m.handled(r.wrapQueue, r.wrapTalkMS+p.WrapupDurationMS, t)
			r.wrapSession, r.wrapQueue, r.wrapTalkMS = "", "", 0
		}
	}
	// Every recipient event that can change the state says so.
	if tr, ok := p.(interface{ StateChange() event.Transition }); ok {
		if r := m.recipients[env.RecipientID]; r != nil {
			m.move(r, tr.StateChange().State, t)
		}
	}
}

// recipient returns the recipient's tracking, starting it (logged out,
// serving nothing) at t for one the model has not seen log in: only
// recipient.create and recipient.sync start one.
func (m *Model) recipient(id string, t int64) *recipient {
	r := m.recipients[id]
	if r == nil {
		r = &recipient{id: id, state: event.StateLoggedOut, since: t}
		m.recipients[id] = r
	}
	return r
}

func occupied(s event.State) bool { return s == event.StateBusy || s == event.StateWrapup }

func staffed(s event.State) bool {
	return s == event.StateReady || s == event.StateOffered || s == event.StateBusy || s == event.StateWrapup
}

// settle adds r's span since r.since, in its state, to its queues and the
// account, and starts a new span at t.
func (m *Model) settle(r *recipient, t int64) {
	if t <= r.since {
		return
	}
	occ, stf := occupied(r.state), staffed(r.state)
	for _, id := range r.queues {
		if q := m.queues[id]; q != nil {
			q.spend(r.since, t, occ, stf, len(q.waiting))
		}
	}
	m.account.spend(r.since, t, occ, stf, 0)
	r.since = t
}

// move puts r in state to at t.
func (m *Model) move(r *recipient, to event.State, t int64) {
	m.settle(r, t)
	if to == r.state {
		return
	}
	r.state = to
	m.touch(r.queues...)
	m.touch(AccountKey)
}

func (m *Model) setQueues(r *recipient, queues []string, t int64) {
	if slices.Equal(r.queues, queues) {
		return
	}
	m.settle(r, t)
	m.touch(r.queues...)
	for _, id := range r.queues {
		if q := m.queues[id]; q != nil {
			delete(q.members, r.id)
		}
	}
	r.queues = slices.Clone(queues)
	for _, id := range r.queues {
		if q := m.queues[id]; q != nil {
			q.members[r.id] = r
		}
	}
	m.touch(r.queues...)
	m.touch(AccountKey)
}

func (m *Model) setPaused(r *recipient, paused []string) {
	if slices.Equal(r.paused, paused) {
		return
	}
	m.touch(r.paused...)
	r.paused = slices.Clone(paused)
	m.touch(r.paused...)
	m.touch(AccountKey)
}

// handled counts a call whose handling ended at t after handleMS of talk
// and wrap-up.
func (m *Model) handled(queueID string, handleMS int64, t int64) {
	if q := m.queues[queueID]; q != nil {
		q.count(t, len(q.waiting), Counters{Handled: 1, HandleMS: handleMS})
		m.touch(q.id, AccountKey)
	}
}

// Tick marks the figures a minute boundary at t changes: those with callers
// waiting (the longest wait grows), with staffed recipients (occupancy
// moves), with a minute that has just left a window, or with totals of a
// day that has just ended.
func (m *Model) Tick(t int64) {
	cur := minuteOf(t)
	moved := func(s *series) bool {
		for _, old := range []int64{cur - 15, cur - 60} {
			if b := s.find(old); b != nil && !b.c.isZero() {
				return true
			}
		}
		if dayOf(t) != s.day && !s.today.isZero() {
			s.rollDay(t)
			return true
		}
		return false
	}
	any := moved(&m.account)
	for _, q := range m.queues {
		busy := len(q.waiting) > 0 || moved(&q.series)
		for _, r := range q.members {
			busy = busy || staffed(r.state)
		}
		if busy {
			m.touch(q.id)
			any = true
		}
	}
	for _, r := range m.recipients {
		any = any || staffed(r.state)
	}
	if any {
		m.touch(AccountKey)
	}
}

// Settings returns a queue's settings and whether the model has the queue.
func (m *Model) Settings(queueID string) (Settings, bool) {
	q := m.queues[queueID]
	if q == nil {
		return Settings{}, false
	}
	return q.settings, true
}

// Today returns how many calls a queue answered and how many callers
// abandoned it on t's UTC day.
func (m *Model) Today(queueID string, t int64) (answered, abandoned int) {
	q := m.queues[queueID]
	if q == nil {
		return 0, 0
	}
	c := q.todayAt(t)
	return int(c.Answered), int(c.Abandoned)
}

// windows are the three windows every figure set has, by their start.
func windows(t int64) [3]int64 {
	cur := minuteOf(t)
	return [3]int64{(cur - 14) * minuteMS, (cur - 59) * minuteMS, dayOf(t) * dayMS}
}

// totals returns a series' totals of the three windows at t.
func (s *series) totals(t int64) [3]Counters {
	cur := minuteOf(t)
	return [3]Counters{s.sum(cur-14, cur), s.sum(cur-59, cur), s.todayAt(t)}
}

// addOpen adds the spans the recipients have not ended yet, up to t.
func addOpen(w *[3]Counters, starts [3]int64, rs []*recipient, t int64) {
	for _, r := range rs {
		if !staffed(r.state) {
			continue
		}
		for i, start := range starts {
			if d := t - max(r.since, start); d > 0 {
				w[i].StaffedMS += d
				if occupied(r.state) {
					w[i].OccupiedMS += d
				}
			}
		}
	}
}

// Queue returns a queue's figures at t, which must not be before the last
// event observed; false when the model has no such queue.
func (m *Model) Queue(queueID string, t int64) (event.QueueFigures, bool) {
	q := m.queues[queueID]
	if q == nil {
		return event.QueueFigures{}, false
	}
	f := event.QueueFigures{
		QueueName: q.settings.Name, ServiceLevelS: q.settings.ServiceLevelS,
		ServiceLevelTargetPct: q.settings.ServiceLevelTargetPct, ShortAbandonS: q.settings.ShortAbandonS,
	}
	members := make([]*recipient, 0, len(q.members))
	for _, r := range q.members {
		members = append(members, r)
	}
	f.Recipients = countStates(members, func(r *recipient) bool { return slices.Contains(r.paused, q.id) })
	setWaiting(&f.Figures, len(q.waiting), q.oldest(), t)
	w := q.totals(t)
	starts := windows(t)
	addOpen(&w, starts, members, t)
	setWindows(&f.Figures, w, starts)
	return f, true
}

// Account returns the figures of the whole account at t: the sums of its
// queues' and, for the recipients, every logged-in recipient's.
func (m *Model) Account(t int64) event.Figures {
	var f event.Figures
	rs := make([]*recipient, 0, len(m.recipients))
	for _, r := range m.recipients {
		rs = append(rs, r)
	}
	f.Recipients = countStates(rs, func(r *recipient) bool { return len(r.paused) > 0 })
	var w [3]Counters
	waiting, oldest := 0, int64(-1)
	for _, q := range m.queues {
		waiting += len(q.waiting)
		if o := q.oldest(); o >= 0 && (oldest < 0 || o < oldest) {
			oldest = o
		}
		qw := q.totals(t)
		for i := range w {
			qw[i].OccupiedMS, qw[i].StaffedMS = 0, 0 // counted per recipient below
			w[i].add(&qw[i])
		}
	}
	setWaiting(&f, waiting, oldest, t)
	aw := m.account.totals(t)
	for i := range w {
		w[i].OccupiedMS, w[i].StaffedMS = aw[i].OccupiedMS, aw[i].StaffedMS
	}
	starts := windows(t)
	addOpen(&w, starts, rs, t)
	setWindows(&f, w, starts)
	return f
}

// oldest is when the caller who has waited longest joined, or -1.
func (q *queue) oldest() int64 {
	if len(q.waiting) == 0 {
		return -1
	}
	return q.waiting[0].joined
}

func setWaiting(f *event.Figures, n int, oldest, t int64) {
	f.Waiting = n
	if oldest >= 0 {
		f.LongestWaitMS = max(0, t-oldest)
		f.OldestJoinedAt = stamp(oldest)
	}
}

func countStates(rs []*recipient, paused func(*recipient) bool) event.RecipientCounts {
	var c event.RecipientCounts
	for _, r := range rs {
		if r.state == event.StateLoggedOut {
			continue // a sync's recipient not logged in yet
		}
		c.LoggedIn++
		switch r.state {
		case event.StateReady:
			c.Ready++
		case event.StateOffered:
			c.Offered++
		case event.StateBusy:
			c.Busy++
		case event.StateWrapup:
			c.Wrapup++
		case event.StateAway:
			c.Away++
		case event.StateExternalCall:
			c.ExternalCall++
		}
		if paused(r) {
			c.Paused++
		}
	}
	return c
}

func setWindows(f *event.Figures, w [3]Counters, starts [3]int64) {
	for i, dst := range []*event.StatsWindow{&f.Last15m, &f.Last1h, &f.Today} {
		c := &w[i]
		*dst = event.StatsWindow{
			From: stamp(starts[i]), Offered: int(c.Offered), Answered: int(c.Answered), AnsweredInSL: int(c.AnsweredInSL),
			Abandoned: int(c.Abandoned), AbandonedShort: int(c.AbandonedShort), TimedOut: int(c.TimedOut),
			QueueFull: int(c.QueueFull), Handled: int(c.Handled), AnswerWaitMS: c.AnswerWaitMS, HandleMS: c.HandleMS,
			OccupiedMS: c.OccupiedMS, StaffedMS: c.StaffedMS,
		}
		dst.Derive()
	}
}

func stamp(ms int64) string { return time.UnixMilli(ms).UTC().Format(event.TimestampLayout) }

// TrendPoint is one minute of a queue's trend.
type TrendPoint struct {
	// Minute is the minute's start.
	Minute string `json:"minute"`
	// WaitingPeak is the most callers waiting at once during the minute.
	WaitingPeak int `json:"waiting_peak"`
	// ServiceLevelPct is the service level of the 15 minutes ending with
	// this one (what last_15m said at its end); absent without calls.
	ServiceLevelPct *float64 `json:"service_level_pct,omitempty"`
}

// Trend returns a queue's last hour at t, a point per minute, oldest
// first, the current minute last; nil when the model has no such queue.
func (m *Model) Trend(queueID string, t int64) []TrendPoint {
	q := m.queues[queueID]
	if q == nil {
		return nil
	}
	cur := minuteOf(t)
	// The level before the hour: the last minute kept before it that saw
	// any activity, else the level the first active minute opened with.
	level, known := 0, false
	for mi := cur - keepMinutes + 1; mi < cur-59; mi++ {
		if b := q.find(mi); b != nil {
			level, known = b.waitEnd, true
		}
	}
	if !known {
		level = len(q.waiting)
		for mi := cur - 59; mi <= cur; mi++ {
			if b := q.find(mi); b != nil {
				level = b.waitStart
				break
			}
		}
	}
	out := make([]TrendPoint, 0, 60)
	for mi := cur - 59; mi <= cur; mi++ {
		p := TrendPoint{Minute: stamp(mi * minuteMS), WaitingPeak: level}
		if b := q.find(mi); b != nil {
			p.WaitingPeak, level = b.waitPeak, b.waitEnd
		}
		c := q.sum(mi-14, mi)
		long := c.Abandoned - c.AbandonedShort
		p.ServiceLevelPct = event.Percent(c.AnsweredInSL, c.Answered+long+c.TimedOut)
		out = append(out, p)
	}
	return out
}

// Checkpoint is what a series keeps across a restart: today's totals and
// the minutes still kept. Waiting callers and recipients are not in it:
// they come back with the events of the account's next load.
type Checkpoint struct {
	// Day is the UTC date of Today, e.g. 2026-11-25.
	Day     string   `json:"day,omitempty"`
	Today   Counters `json:"today"`
	Minutes []Minute `json:"minutes,omitempty"`
}

// Minute is one minute of a Checkpoint.
type Minute struct {
	// Minute counts minutes since the Unix epoch.
	Minute      int64 `json:"minute"`
	WaitingFrom int   `json:"waiting_from,omitempty"`
	WaitingPeak int   `json:"waiting_peak,omitempty"`
	WaitingTo   int   `json:"waiting_to,omitempty"`
	Counters
}

// QueueCheckpoint returns what to store of a queue at t; it first adds the
// spans its members have not ended yet, so a crash loses none of them.
func (m *Model) QueueCheckpoint(queueID string, t int64) *Checkpoint {
	q := m.queues[queueID]
	if q == nil {
		return nil
	}
	for _, r := range q.members {
		m.settle(r, t)
	}
	return q.checkpoint(t)
}

// AccountCheckpoint returns what to store of the account-wide series at t
// (its recipient time; its other totals are the queues').
func (m *Model) AccountCheckpoint(t int64) *Checkpoint {
	for _, r := range m.recipients {
		m.settle(r, t)
	}
	return m.account.checkpoint(t)
}

func (s *series) checkpoint(t int64) *Checkpoint {
	cp := &Checkpoint{}
	if today := s.todayAt(t); !today.isZero() {
		cp.Day, cp.Today = time.UnixMilli(s.day*dayMS).UTC().Format(time.DateOnly), today
	}
	cur := minuteOf(t)
	for mi := cur - keepMinutes + 1; mi <= cur; mi++ {
		if b := s.find(mi); b != nil {
			cp.Minutes = append(cp.Minutes, Minute{Minute: mi, WaitingFrom: b.waitStart, WaitingPeak: b.waitPeak, WaitingTo: b.waitEnd, Counters: b.c})
		}
	}
	return cp
}

// RestoreQueue sets a queue's history from a checkpoint at t: today's
// totals if they are of t's day, and the minutes still kept.
func (m *Model) RestoreQueue(queueID string, cp *Checkpoint, t int64) {
	if q := m.queues[queueID]; q != nil && cp != nil {
		q.restore(cp, t)
		m.touch(queueID, AccountKey)
	}
}

// RestoreAccount sets the account-wide series from a checkpoint at t.
func (m *Model) RestoreAccount(cp *Checkpoint, t int64) {
	if cp != nil {
		m.account.restore(cp, t)
		m.touch(AccountKey)
	}
}

func (s *series) restore(cp *Checkpoint, t int64) {
	*s = series{day: dayOf(t)}
	if d, err := time.Parse(time.DateOnly, cp.Day); err == nil && d.UnixMilli() == s.day*dayMS {
		s.today = cp.Today
	}
	cur := minuteOf(t)
	ms := slices.Clone(cp.Minutes)
	slices.SortFunc(ms, func(a, b Minute) int { return cmp.Compare(a.Minute, b.Minute) })
	for _, mi := range ms {
		if mi.Minute > cur-keepMinutes && mi.Minute <= cur {
			b := s.bucket(mi.Minute, mi.WaitingFrom)
			b.waitPeak, b.waitEnd, b.c = mi.WaitingPeak, mi.WaitingTo, mi.Counters
		}
	}
}
