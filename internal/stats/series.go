package stats

import "time"

// Times are Unix milliseconds throughout, as events carry them.
const (
	minuteMS = int64(time.Minute / time.Millisecond)
	dayMS    = int64(24 * time.Hour / time.Millisecond)
)

// keepMinutes is how many minutes of history a series keeps: the hour
// window, plus the 14 minutes before it so the trend's 15-minute service
// level reaches back the whole hour.
const keepMinutes = 60 + 14

// Counters are the totals a window adds up. Spans of recipient time are in
// OccupiedMS and StaffedMS; everything else is counted when its event
// happens.
type Counters struct {
	Offered        int64 `json:"offered,omitempty"`
	Answered       int64 `json:"answered,omitempty"`
	AnsweredInSL   int64 `json:"answered_in_sl,omitempty"`
	Abandoned      int64 `json:"abandoned,omitempty"`
	AbandonedShort int64 `json:"abandoned_short,omitempty"`
	TimedOut       int64 `json:"timed_out,omitempty"`
	QueueFull      int64 `json:"queue_full,omitempty"`
	Handled        int64 `json:"handled,omitempty"`
	AnswerWaitMS   int64 `json:"answer_wait_ms,omitempty"`
	HandleMS       int64 `json:"handle_ms,omitempty"`
	OccupiedMS     int64 `json:"occupied_ms,omitempty"`
	StaffedMS      int64 `json:"staffed_ms,omitempty"`
}

func (c *Counters) add(o *Counters) {
	c.Offered += o.Offered
	c.Answered += o.Answered
	c.AnsweredInSL += o.AnsweredInSL
	c.Abandoned += o.Abandoned
	c.AbandonedShort += o.AbandonedShort
	c.TimedOut += o.TimedOut
	c.QueueFull += o.QueueFull
	c.Handled += o.Handled
	c.AnswerWaitMS += o.AnswerWaitMS
	c.HandleMS += o.HandleMS
	c.OccupiedMS += o.OccupiedMS
	c.StaffedMS += o.StaffedMS
}

func (c *Counters) isZero() bool { return *c == Counters{} }

// bucket is one UTC minute of a series. The waiting levels (of a queue)
// say how many callers waited when the minute was first touched, at most
// during it, and after its last change, so the trend can tell the level of
// minutes nothing happened in.
type bucket struct {
	minute    int64 // minutes since the epoch; meaningful when used
	used      bool
	c         Counters
	waitStart int
	waitPeak  int
	waitEnd   int
}

// series is the history of a queue or of the account: today's totals and
// the last keepMinutes minutes.
type series struct {
	day   int64 // days since the epoch of today
	today Counters
	ring  [keepMinutes]bucket
}

func minuteOf(t int64) int64 { return floorDiv(t, minuteMS) }
func dayOf(t int64) int64    { return floorDiv(t, dayMS) }

func floorDiv(a, b int64) int64 {
	q := a / b
	if a%b < 0 {
		q--
	}
	return q
}

// rollDay starts today's totals again when t is on a later UTC day.
func (s *series) rollDay(t int64) {
	if d := dayOf(t); d > s.day {
		s.day, s.today = d, Counters{}
	}
}

// bucket returns minute m's bucket, opening it with the given waiting
// level when the minute was not used yet.
func (s *series) bucket(m int64, level int) *bucket {
	b := &s.ring[floorMod(m, keepMinutes)]
	if !b.used || b.minute != m {
		*b = bucket{minute: m, used: true, waitStart: level, waitPeak: level, waitEnd: level}
	}
	return b
}

func floorMod(a, b int64) int64 { return a - floorDiv(a, b)*b }

// find returns minute m's bucket, or nil when nothing happened in it (or
// it is too old to be kept).
func (s *series) find(m int64) *bucket {
	b := &s.ring[floorMod(m, keepMinutes)]
	if b.used && b.minute == m {
		return b
	}
	return nil
}

// count adds what one event counts, at time t, to today and to t's minute.
func (s *series) count(t int64, level int, c Counters) {
	s.rollDay(t)
	s.today.add(&c)
	s.bucket(minuteOf(t), level).c.add(&c)
}

// spend adds the time of a recipient span [from, to] to today and to each
// minute it covers that is still kept.
func (s *series) spend(from, to int64, occupied, staffed bool, level int) {
	if to <= from || !staffed {
		return
	}
	s.rollDay(to)
	add := func(c *Counters, a, b int64) {
		if b <= a {
			return
		}
		c.StaffedMS += b - a
		if occupied {
			c.OccupiedMS += b - a
		}
	}
	add(&s.today, max(from, s.day*dayMS), to)
	last := minuteOf(to)
	for m := max(minuteOf(from), last-keepMinutes+1); m <= last; m++ {
		a, b := max(from, m*minuteMS), min(to, (m+1)*minuteMS)
		if b > a {
			add(&s.bucket(m, level).c, a, b)
		}
	}
}

// sum adds up the minutes [first, last] that are kept.
func (s *series) sum(first, last int64) Counters {
	var c Counters
	for m := max(first, last-keepMinutes+1); m <= last; m++ {
		if b := s.find(m); b != nil {
			c.add(&b.c)
		}
	}
	return c
}

// todayAt returns today's totals as of t: zero on a later day.
func (s *series) todayAt(t int64) Counters {
	if dayOf(t) != s.day {
		return Counters{}
	}
	return s.today
}

// levelChanged records a change of the waiting level at t.
func (s *series) levelChanged(t int64, before, after int) {
	b := s.bucket(minuteOf(t), before)
	b.waitEnd = after
	b.waitPeak = max(b.waitPeak, after)
}
