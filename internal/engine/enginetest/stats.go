package enginetest

import (
	"encoding/json"
	"fmt"
	"slices"
	"sort"
	"time"

	"github.com/ccevents/ccevents/internal/event"
)

// statsRef recomputes an account's statistics from its raw events, the
// way docs/engine.md defines them, to hold every stats event against:
// each must equal what the queue and recipient events before it say at
// its timestamp. It shares no code with package stats: it keeps every
// event's facts and sums the ones inside a window when asked.
//
// A queue's service-level and short-abandon thresholds are read from its
// stats.queue events, so they must not change during a run.
type statsRef struct {
	interval time.Duration // shortest gap between two events of one key; 0 skips the check
	queues   map[string]*refQueue
	recips   map[string]*refRecip
	sl       map[string][2]int64 // queue -> service level, short abandon (ms)
	lastPub  map[string]int64    // key -> timestamp of its last stats event
	// last holds the last stats event of each key (AccountKey "" included).
	last map[string]json.RawMessage
}

type refQueue struct {
	born    int64
	waiting []refCall // joined, not left
	joins   []int64
	answers []refCall // ts, wait
	leaves  []refLeave
	handled []refCall // ts, handle time
}

type refCall struct {
	session string
	ts, ms  int64
}

type refLeave struct {
	ts, wait int64
	reason   event.LeaveReason
}

type refRecip struct {
	segs   []refSeg
	paused []string
	wrap   refCall // session, talk time
	wrapQ  string
}

// stopped is the pseudo-state of recipients of an account that stopped on
// its engine, until the next load's recipient.sync: neither staffed nor
// logged in.
const stopped event.State = "(account stopped)"

// refSeg is a stretch of a recipient's time in one state and membership,
// lasting until the next one starts (or now).
type refSeg struct {
	from   int64
	state  event.State
	queues []string
}

func newStatsRef() *statsRef {
	return &statsRef{queues: map[string]*refQueue{}, recips: map[string]*refRecip{}, sl: map[string][2]int64{},
		lastPub: map[string]int64{}, last: map[string]json.RawMessage{}}
}

func (r *refRecip) cur() refSeg {
	if len(r.segs) == 0 {
		return refSeg{state: event.StateLoggedOut}
	}
	return r.segs[len(r.segs)-1]
}

func (r *refRecip) set(t int64, state event.State, queues []string) {
	c := r.cur()
	if c.state == state && slices.Equal(c.queues, queues) {
		return
	}
	r.segs = append(r.segs, refSeg{from: t, state: state, queues: slices.Clone(queues)})
}

// apply takes one raw event in stream order; it returns a complaint for a
// stats event that does not match, else "".
func (s *statsRef) apply(p event.Payload, raw []byte) string {
	env := p.Env()
	t := env.TimestampMS
	q := s.queues[env.QueueID]
	rc := s.recips[env.RecipientID]
	if rc == nil && env.RecipientID != "" {
		rc = &refRecip{}
		s.recips[env.RecipientID] = rc
	}
	switch p := p.(type) {
	case *event.StatsQueue:
		s.sl[p.QueueID] = [2]int64{int64(p.ServiceLevelS) * 1000, int64(p.ShortAbandonS) * 1000}
		return s.compare(p.QueueID, t, raw)
	case *event.StatsAccount:
		return s.compare("", t, raw)
	case *event.QueueCreate:
		if q == nil {
			s.queues[p.QueueID] = &refQueue{born: t}
		}
	case *event.QueueDelete:
		if p.Reason == event.QueueDeleted {
			delete(s.queues, p.QueueID)
			break
		}
		// The account stopped on its engine (queues stop last): recipient
		// time stops counting until its next load's recipient.sync.
		for _, r := range s.recips {
			if st := r.cur().state; st != event.StateLoggedOut && st != stopped {
				r.set(t, stopped, r.cur().queues)
			}
		}
	case *event.QueueJoin:
		if q != nil {
			q.waiting = append(q.waiting, refCall{session: p.SessionID, ts: t})
			q.joins = append(q.joins, t)
		}
	case *event.QueueLeave:
		if q != nil {
			q.waiting = slices.DeleteFunc(q.waiting, func(c refCall) bool { return c.session == p.SessionID })
			q.leaves = append(q.leaves, refLeave{ts: t, wait: p.WaitDurationMS, reason: p.Reason})
		}
	case *event.QueueDelivered:
		if q != nil {
			q.answers = append(q.answers, refCall{ts: t, ms: p.WaitDurationMS})
		}
	case *event.RecipientCreate:
		rc.paused = nil
		rc.set(t, p.State, p.Queues)
	case *event.RecipientDelete:
		rc.set(t, event.StateLoggedOut, nil)
	case *event.RecipientSync:
		rc.set(t, p.State, p.Queues)
		rc.paused = p.PausedQueues
	case *event.RecipientPause:
		rc.paused = p.PausedQueues
	case *event.RecipientResume:
		rc.paused = p.PausedQueues
	case *event.RecipientHangup:
		if p.State == event.StateWrapup {
			rc.wrap, rc.wrapQ = refCall{session: env.SessionID, ms: p.DurationMS}, env.QueueID
		} else if q != nil {
			q.handled = append(q.handled, refCall{ts: t, ms: p.DurationMS})
		}
	case *event.RecipientWrapupComplete:
		if rc.wrap.session == env.SessionID {
			if wq := s.queues[rc.wrapQ]; wq != nil {
				wq.handled = append(wq.handled, refCall{ts: t, ms: rc.wrap.ms + p.WrapupDurationMS})
			}
			rc.wrap, rc.wrapQ = refCall{}, ""
		}
	}
	if tr, ok := p.(interface{ StateChange() event.Transition }); ok && rc != nil && rc.cur().state != event.StateLoggedOut && rc.cur().state != stopped {
		rc.set(t, tr.StateChange().State, rc.cur().queues)
	}
	return ""
}

// compare holds a stats event against the recomputed figures.
func (s *statsRef) compare(key string, t int64, raw []byte) string {
	if last, ok := s.lastPub[key]; ok && s.interval > 0 && t-last < s.interval.Milliseconds() {
		return fmt.Sprintf("stats of %q %d ms after the previous one; the interval is %v", key, t-last, s.interval)
	}
	s.lastPub[key] = t
	s.last[key] = raw
	var got, want any
	if key == "" {
		var p event.StatsAccount
		_ = json.Unmarshal(raw, &p)
		got, want = p.Figures, s.Account(t)
	} else {
		var p event.StatsQueue
		_ = json.Unmarshal(raw, &p)
		w, ok := s.Queue(key, t)
		if !ok {
			return "stats.queue for queue " + key + ", which does not exist"
		}
		w.QueueName = p.QueueName // names and targets are configuration, not figures
		w.ServiceLevelTargetPct = p.ServiceLevelTargetPct
		got, want = p.QueueFigures, w
	}
	g, _ := json.Marshal(got)
	w, _ := json.Marshal(want)
	if string(g) != string(w) {
		return fmt.Sprintf("stats of %q at %s differ from the events before them:\n got %s\nwant %s", key, time.UnixMilli(t).UTC().Format(event.TimestampLayout), g, w)
	}
	return ""
}

// starts are the windows' starts at t: the current minute and the 14 (59)
// before it, and 00:00 UTC.
func starts(t int64) [3]int64 {
	const minute, day = int64(60000), int64(86400000)
	m := t / minute
	return [3]int64{(m - 14) * minute, (m - 59) * minute, t / day * day}
}

// threshold is a queue's service level and short-abandon threshold (ms):
// from its stats events, or the defaults before the first.
func (s *statsRef) threshold(id string) [2]int64 {
	if sl, ok := s.sl[id]; ok {
		return sl
	}
	return [2]int64{20000, 5000}
}

type refTotals struct {
	offered, answered, inSL, abandoned, short, timedOut, full, handled int
	waitMS, handleMS, occMS, staffMS                                   int64
}

// totals sums a queue's facts of the window [from, now].
func (s *statsRef) totals(id string, q *refQueue, from int64) refTotals {
	sl := s.threshold(id)
	var w refTotals
	after := func(ts int64) bool { return ts >= from }
	for _, ts := range q.joins {
		if after(ts) {
			w.offered++
		}
	}
	for _, a := range q.answers {
		if after(a.ts) {
			w.answered++
			w.waitMS += a.ms
			if a.ms <= sl[0] {
				w.inSL++
			}
		}
	}
	for _, l := range q.leaves {
		if !after(l.ts) {
			continue
		}
		switch l.reason {
		case event.LeaveAbandoned:
			w.abandoned++
			if l.wait < sl[1] {
				w.short++
			}
		case event.LeaveTimeout:
			w.timedOut++
		case event.LeaveQueueFull:
			w.full++
		}
	}
	for _, h := range q.handled {
		if after(h.ts) {
			w.handled++
			w.handleMS += h.ms
		}
	}
	return w
}

// time adds the recipients' time in [from, now] to w: of members of queue
// id only, or of everyone when id is "".
func (s *statsRef) time(w *refTotals, id string, from, now int64) {
	for _, r := range s.recips {
		for i, seg := range r.segs {
			to := now
			if i+1 < len(r.segs) {
				to = r.segs[i+1].from
			}
			if id != "" && !slices.Contains(seg.queues, id) {
				continue
			}
			d := min(to, now) - max(seg.from, from)
			if d <= 0 {
				continue
			}
			switch seg.state {
			case event.StateBusy, event.StateWrapup:
				w.occMS += d
				w.staffMS += d
			case event.StateReady, event.StateOffered:
				w.staffMS += d
			}
		}
	}
}

func (w refTotals) window(from int64) event.StatsWindow {
	out := event.StatsWindow{
		From: time.UnixMilli(from).UTC().Format(event.TimestampLayout), Offered: w.offered, Answered: w.answered,
		AnsweredInSL: w.inSL, Abandoned: w.abandoned, AbandonedShort: w.short, TimedOut: w.timedOut, QueueFull: w.full,
		Handled: w.handled, AnswerWaitMS: w.waitMS, HandleMS: w.handleMS, OccupiedMS: w.occMS, StaffedMS: w.staffMS,
	}
	// The formulas, written out again rather than taken from Derive.
	outcomes := int64(w.answered + w.abandoned - w.short + w.timedOut)
	pct := func(n, d int64) *float64 {
		if d == 0 {
			return nil
		}
		v := float64((2000*n+d)/(2*d)) / 10
		return &v
	}
	mean := func(total, n int64) *int64 {
		if n == 0 {
			return nil
		}
		v := total / n
		return &v
	}
	out.ServiceLevelPct = pct(int64(w.inSL), outcomes)
	out.AbandonRatePct = pct(int64(w.abandoned-w.short), outcomes)
	out.ASAMS = mean(w.waitMS, int64(w.answered))
	out.AHTMS = mean(w.handleMS, int64(w.handled))
	out.OccupancyPct = pct(w.occMS, w.staffMS)
	return out
}

func (s *statsRef) recipients(member func(refSeg, *refRecip) bool, paused func(*refRecip) bool) event.RecipientCounts {
	var c event.RecipientCounts
	for _, r := range s.recips {
		seg := r.cur()
		if seg.state == event.StateLoggedOut || seg.state == stopped || !member(seg, r) {
			continue
		}
		c.LoggedIn++
		switch seg.state {
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

func waitingFigures(f *event.Figures, n int, oldest, t int64) {
	f.Waiting = n
	if n > 0 {
		f.LongestWaitMS = t - oldest
		f.OldestJoinedAt = time.UnixMilli(oldest).UTC().Format(event.TimestampLayout)
	}
}

// Queue recomputes a queue's figures at t (thresholds and name aside).
func (s *statsRef) Queue(id string, t int64) (event.QueueFigures, bool) {
	q := s.queues[id]
	if q == nil {
		return event.QueueFigures{}, false
	}
	sl := s.threshold(id)
	f := event.QueueFigures{ServiceLevelS: int(sl[0] / 1000), ShortAbandonS: int(sl[1] / 1000)}
	oldest := int64(0)
	if len(q.waiting) > 0 {
		oldest = q.waiting[0].ts
	}
	waitingFigures(&f.Figures, len(q.waiting), oldest, t)
	f.Recipients = s.recipients(func(seg refSeg, _ *refRecip) bool { return slices.Contains(seg.queues, id) },
		func(r *refRecip) bool { return slices.Contains(r.paused, id) })
	for i, from := range starts(t) {
		w := s.totals(id, q, from)
		s.time(&w, id, max(from, q.born), t)
		*[]*event.StatsWindow{&f.Last15m, &f.Last1h, &f.Today}[i] = w.window(from)
	}
	return f, true
}

// Account recomputes the account's figures at t.
func (s *statsRef) Account(t int64) event.Figures {
	var f event.Figures
	ids := make([]string, 0, len(s.queues))
	n, oldest := 0, int64(-1)
	for id, q := range s.queues {
		ids = append(ids, id)
		n += len(q.waiting)
		if len(q.waiting) > 0 && (oldest < 0 || q.waiting[0].ts < oldest) {
			oldest = q.waiting[0].ts
		}
	}
	sort.Strings(ids)
	waitingFigures(&f, n, oldest, t)
	f.Recipients = s.recipients(func(refSeg, *refRecip) bool { return true }, func(r *refRecip) bool { return len(r.paused) > 0 })
	for i, from := range starts(t) {
		var w refTotals
		for _, id := range ids {
			qw := s.totals(id, s.queues[id], from)
			w.offered += qw.offered
			w.answered += qw.answered
			w.inSL += qw.inSL
			w.abandoned += qw.abandoned
			w.short += qw.short
			w.timedOut += qw.timedOut
			w.full += qw.full
			w.handled += qw.handled
			w.waitMS += qw.waitMS
			w.handleMS += qw.handleMS
		}
		s.time(&w, "", from, t)
		*[]*event.StatsWindow{&f.Last15m, &f.Last1h, &f.Today}[i] = w.window(from)
	}
	return f
}
