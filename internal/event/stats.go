package event

import (
	"math"
	"strconv"
)

// This file holds the stats family: the statistics the engine computes from
// an account's queue and recipient events and pushes on
// qubicle.stats.{ACCOUNT_ID}.{QUEUE_ID}.queue and
// qubicle.stats.{ACCOUNT_ID}._total.account. Their definitions and
// formulas are in docs/engine.md ("Statistics").

// StatsTotal is the entity segment of the account-wide statistics,
// qubicle.stats.{ACCOUNT_ID}._total.account. No queue may have this id.
const StatsTotal = "_total"

// StatsQueue is stats.queue: a queue's statistics as of the event's
// timestamp, with the settings they are measured against.
type StatsQueue struct {
	Envelope
	QueueFigures
}

// QueueFigures are a queue's statistics and the settings they are measured
// against: the figures of stats.queue without the envelope.
type QueueFigures struct {
	QueueName string `json:"queue_name"`
	// ServiceLevelS is the queue's service-level threshold: a call counts
	// as answered in service level when it waited at most this long.
	ServiceLevelS int `json:"service_level_s"`
	// ServiceLevelTargetPct is the share of calls the queue aims to answer
	// within ServiceLevelS (80 in "80 % in 20 s").
	ServiceLevelTargetPct int `json:"service_level_target_pct"`
	// ShortAbandonS: callers who hang up before waiting this long are short
	// abandons, left out of service level and abandon rate.
	ShortAbandonS int `json:"short_abandon_s"`
	Figures
}

// StatsAccount is stats.account: the statistics of all the account's
// queues and recipients together, as of the event's timestamp.
type StatsAccount struct {
	Envelope
	Figures
}

// Figures are what every statistics event carries: the queue's (or
// account's) state now and its totals over three windows.
type Figures struct {
	// Waiting is how many callers wait now, ringing or not.
	Waiting int `json:"waiting"`
	// LongestWaitMS is how long the caller who has waited longest has
	// waited, at the event's timestamp; 0 when nobody waits.
	LongestWaitMS int64 `json:"longest_wait_ms"`
	// OldestJoinedAt is when that caller joined, so a display can keep the
	// longest wait current between events; empty when nobody waits.
	OldestJoinedAt string          `json:"oldest_joined_at,omitempty"`
	Recipients     RecipientCounts `json:"recipients"`
	Last15m        StatsWindow     `json:"last_15m"`
	Last1h         StatsWindow     `json:"last_1h"`
	Today          StatsWindow     `json:"today"`
}

// RecipientCounts counts logged-in recipients (of a queue: its members) by
// state.
type RecipientCounts struct {
	LoggedIn     int `json:"logged_in"`
	Ready        int `json:"ready"`
	Offered      int `json:"offered"`
	Busy         int `json:"busy"`
	Wrapup       int `json:"wrapup"`
	Away         int `json:"away"`
	ExternalCall int `json:"external_call"`
	// Paused counts those who paused the queue (for the account: at least
	// one queue); they are counted in their state too.
	Paused int `json:"paused"`
}

// StatsWindow holds the totals of one window (the last 15 minutes, the
// last hour, today) and what follows from them. The derived figures are
// absent when their denominator is zero.
type StatsWindow struct {
	// From is the start of the window: a whole UTC minute, or 00:00 UTC.
	From           string `json:"from"`
	Offered        int    `json:"offered"`
	Answered       int    `json:"answered"`
	AnsweredInSL   int    `json:"answered_in_sl"`
	Abandoned      int    `json:"abandoned"`
	AbandonedShort int    `json:"abandoned_short"`
	TimedOut       int    `json:"timed_out"`
	QueueFull      int    `json:"queue_full"`
	Handled        int    `json:"handled"`
	AnswerWaitMS   int64  `json:"answer_wait_ms"`
	HandleMS       int64  `json:"handle_ms"`
	OccupiedMS     int64  `json:"occupied_ms"`
	StaffedMS      int64  `json:"staffed_ms"`

	ServiceLevelPct *float64 `json:"service_level_pct,omitempty"`
	AbandonRatePct  *float64 `json:"abandon_rate_pct,omitempty"`
	ASAMS           *int64   `json:"asa_ms,omitempty"`
	AHTMS           *int64   `json:"aht_ms,omitempty"`
	OccupancyPct    *float64 `json:"occupancy_pct,omitempty"`
}

// StateChange returns the recipient state change an event reports; every
// recipient event that can change the state embeds a Transition.
func (t Transition) StateChange() Transition { return t }

// Family returns stats.
func (*StatsQueue) Family() Family { return Stats }

// Name returns "queue".
func (*StatsQueue) Name() string { return "queue" }

func (*StatsQueue) event() string { return "stats.queue" }
func (*StatsQueue) ids() idSet    { return idSet{allowed: idQueue, required: idQueue} }

// Family returns stats.
func (*StatsAccount) Family() Family { return Stats }

// Name returns "account".
func (*StatsAccount) Name() string { return "account" }

func (*StatsAccount) event() string { return "stats.account" }
func (*StatsAccount) ids() idSet    { return idSet{} }

func (p *StatsQueue) appendFields(e encoder) encoder {
	if p.QueueID == StatsTotal {
		e.fail("queue_id", StatsTotal+" names the account-wide statistics (stats.account), not a queue")
	}
	e.text("queue_name", p.QueueName, true, maxShortText)
	e.int("service_level_s", int64(p.ServiceLevelS), 1)
	e.int("service_level_target_pct", int64(p.ServiceLevelTargetPct), 1)
	e.int("short_abandon_s", int64(p.ShortAbandonS), 0)
	e.figures(&p.Figures)
	return e
}

func (p *StatsAccount) appendFields(e encoder) encoder {
	e.figures(&p.Figures)
	return e
}

func (e *encoder) figures(s *Figures) {
	e.int("waiting", int64(s.Waiting), 0)
	e.int("longest_wait_ms", s.LongestWaitMS, 0)
	if s.OldestJoinedAt != "" {
		e.timestamp("oldest_joined_at", s.OldestJoinedAt)
	}
	e.key("recipients")
	e.open()
	r := &s.Recipients
	for _, f := range [...]struct {
		name string
		v    int
	}{
		{"logged_in", r.LoggedIn}, {"ready", r.Ready}, {"offered", r.Offered}, {"busy", r.Busy},
		{"wrapup", r.Wrapup}, {"away", r.Away}, {"external_call", r.ExternalCall}, {"paused", r.Paused},
	} {
		e.int(f.name, int64(f.v), 0)
	}
	e.close()
	e.window("last_15m", &s.Last15m)
	e.window("last_1h", &s.Last1h)
	e.window("today", &s.Today)
}

func (e *encoder) window(name string, w *StatsWindow) {
	e.key(name)
	e.open()
	e.timestampAs(name+".from", "from", w.From)
	for _, f := range [...]struct {
		name string
		v    int64
	}{
		{"offered", int64(w.Offered)}, {"answered", int64(w.Answered)}, {"answered_in_sl", int64(w.AnsweredInSL)},
		{"abandoned", int64(w.Abandoned)}, {"abandoned_short", int64(w.AbandonedShort)}, {"timed_out", int64(w.TimedOut)},
		{"queue_full", int64(w.QueueFull)}, {"handled", int64(w.Handled)}, {"answer_wait_ms", w.AnswerWaitMS},
		{"handle_ms", w.HandleMS}, {"occupied_ms", w.OccupiedMS}, {"staffed_ms", w.StaffedMS},
	} {
		if f.v < 0 {
			e.fail(name+"."+f.name, "expected an integer ≥ 0, got "+strconv.FormatInt(f.v, 10))
		}
		e.key(f.name)
		e.b = strconv.AppendInt(e.b, f.v, 10)
	}
	e.percent(name+".service_level_pct", "service_level_pct", w.ServiceLevelPct)
	e.percent(name+".abandon_rate_pct", "abandon_rate_pct", w.AbandonRatePct)
	e.optionalMS(name+".asa_ms", "asa_ms", w.ASAMS)
	e.optionalMS(name+".aht_ms", "aht_ms", w.AHTMS)
	e.percent(name+".occupancy_pct", "occupancy_pct", w.OccupancyPct)
	e.close()
}

// open starts a nested object; its first key gets no comma.
func (e *encoder) open() {
	e.b = append(e.b, '{')
	e.first = true
}

func (e *encoder) close() { e.b = append(e.b, '}') }

// percent writes an optional percentage, 0 to 100, as a JSON number.
func (e *encoder) percent(field, name string, v *float64) {
	if v == nil {
		return
	}
	if math.IsNaN(*v) || *v < 0 || *v > 100 {
		e.fail(field, "expected a percentage from 0 to 100, got "+strconv.FormatFloat(*v, 'g', -1, 64))
	}
	e.key(name)
	e.b = strconv.AppendFloat(e.b, *v, 'f', -1, 64)
}

func (e *encoder) optionalMS(field, name string, v *int64) {
	if v == nil {
		return
	}
	if *v < 0 {
		e.fail(field, "expected an integer ≥ 0, got "+strconv.FormatInt(*v, 10))
	}
	e.key(name)
	e.b = strconv.AppendInt(e.b, *v, 10)
}

// Percent is 100 × num ÷ den rounded half up to one decimal, computed in
// integers so every producer and checker gets the same number; nil when
// den is 0.
func Percent(num, den int64) *float64 {
	if den <= 0 {
		return nil
	}
	tenths := (2000*num + den) / (2 * den)
	v := float64(tenths) / 10
	return &v
}

// Mean is total ÷ n rounded down, or nil when n is 0.
func Mean(total, n int64) *int64 {
	if n <= 0 {
		return nil
	}
	v := total / n
	return &v
}

func statsSpec(sp Spec, env Envelope) Spec {
	count := func(name, desc string) Field { return intField(name, desc, 0) }
	derived := func(name, typ, desc string) Field {
		return Field{Name: name, Type: typ, Minimum: ptr(0), Description: desc + " Absent when its denominator is 0."}
	}
	window := []Field{
		timeField("from", "Start of the window: a whole UTC minute (the last 15 minutes, the last hour) or 00:00 UTC (today). It ends at the event's timestamp."),
		count("offered", "Callers who joined the queue in the window (queue.join)."),
		count("answered", "Calls answered in the window (queue.delivered)."),
		count("answered_in_sl", "Answered calls that waited at most the queue's service_level_s."),
		count("abandoned", "Callers who hung up while waiting (queue.leave abandoned), short abandons included."),
		count("abandoned_short", "Abandoned callers who waited less than the queue's short_abandon_s."),
		count("timed_out", "Callers who reached the queue's maximum wait (queue.leave timeout)."),
		count("queue_full", "Callers turned away because the queue was full (queue.leave queue_full)."),
		count("handled", "Answered calls whose handling (talk, then wrap-up) ended in the window."),
		count("answer_wait_ms", "Total wait of the answered calls, in milliseconds."),
		count("handle_ms", "Total handle time (talk plus wrap-up) of the handled calls, in milliseconds."),
		count("occupied_ms", "Time recipients spent busy or in wrap-up in the window, in milliseconds."),
		count("staffed_ms", "Time recipients spent ready, ringing, busy or in wrap-up in the window, in milliseconds."),
		derived("service_level_pct", TypeNumber, "answered_in_sl ÷ (answered + abandoned − abandoned_short + timed_out) × 100, one decimal."),
		derived("abandon_rate_pct", TypeNumber, "(abandoned − abandoned_short) ÷ (answered + abandoned − abandoned_short + timed_out) × 100, one decimal."),
		derived("asa_ms", TypeInteger, "Average speed of answer: answer_wait_ms ÷ answered, in milliseconds."),
		derived("aht_ms", TypeInteger, "Average handle time: handle_ms ÷ handled, in milliseconds."),
		derived("occupancy_pct", TypeNumber, "occupied_ms ÷ staffed_ms × 100, one decimal."),
	}
	recipients := []Field{
		count("logged_in", "Logged-in recipients."),
		count("ready", "Of those, ready for a call."),
		count("offered", "Ringing with a queue call."),
		count("busy", "On a queue call."),
		count("wrapup", "In wrap-up after a call."),
		count("away", "Away (on a break)."),
		count("external_call", "On a call that did not come from a queue."),
		count("paused", "Who paused the queue (for the account: at least one queue), whatever their state."),
	}
	obj := func(name, desc string, props []Field) Field {
		return Field{Name: name, Type: TypeObject, Required: true, Description: desc, Properties: props}
	}
	figures := []Field{
		count("waiting", "Callers waiting now, ringing or not."),
		count("longest_wait_ms", "How long the caller who has waited longest has waited, at the event's timestamp, in milliseconds; 0 when nobody waits."),
		{Name: "oldest_joined_at", Type: TypeString, Format: FormatDateTime,
			Description: "When that caller joined, to keep the longest wait current between events; absent when nobody waits."},
		obj("recipients", "Logged-in recipients by state.", recipients),
		obj("last_15m", "Totals of the current minute and the 14 before it.", window),
		obj("last_1h", "Totals of the current minute and the 59 before it.", window),
		obj("today", "Totals since 00:00 UTC.", window),
	}
	win := func(from string, offered, answered, inSL, abandoned, short, timedOut, handled int, waitMS, handleMS, occMS, staffMS int64) StatsWindow {
		w := StatsWindow{From: from, Offered: offered, Answered: answered, AnsweredInSL: inSL, Abandoned: abandoned,
			AbandonedShort: short, TimedOut: timedOut, Handled: handled, AnswerWaitMS: waitMS, HandleMS: handleMS,
			OccupiedMS: occMS, StaffedMS: staffMS}
		w.Derive()
		return w
	}
	example := Figures{
		Waiting: 3, LongestWaitMS: 110000, OldestJoinedAt: formatMS(env.TimestampMS - 110000),
		Recipients: RecipientCounts{LoggedIn: 6, Ready: 0, Busy: 2, Away: 4},
		Last15m:    win("2026-11-25T11:22:00.000Z", 14, 11, 8, 2, 1, 0, 10, 253000, 2140000, 1510000, 1780000),
		Last1h:     win("2026-11-25T10:37:00.000Z", 52, 46, 39, 5, 2, 1, 44, 702000, 9020000, 5930000, 7100000),
		Today:      win("2026-11-25T00:00:00.000Z", 187, 171, 150, 13, 5, 1, 168, 2410000, 33700000, 21500000, 27400000),
	}
	switch sp.Name {
	case "queue":
		sp.Description = "A queue's statistics changed: sent when its figures change, at most once per stats interval (1 s by default), and at least every minute while callers wait or recipients are logged in."
		sp.IDs = []Field{idField("queue_id", "The queue.", true)}
		sp.Fields = append([]Field{
			textField("queue_name", "The queue's display name.", true, maxShortText),
			intField("service_level_s", "The queue's service-level threshold, in seconds: a call answered after waiting at most this long is answered in service level.", 1),
			intField("service_level_target_pct", `The share of calls, in percent, the queue aims to answer within service_level_s (80 in "80 % in 20 s").`, 1),
			intField("short_abandon_s", "Callers who hang up before waiting this many seconds are short abandons, left out of service level and abandon rate; 0 counts none.", 0),
		}, figures...)
		sp.Example = &StatsQueue{Envelope: env, QueueFigures: QueueFigures{QueueName: "Support", ServiceLevelS: 20, ServiceLevelTargetPct: 80, ShortAbandonS: 5, Figures: example}}
	case "account":
		env.QueueID = ""
		sp.Description = "The account's statistics changed: every queue and recipient of the account together, sent like stats.queue."
		sp.Fields = figures
		sp.Example = &StatsAccount{Envelope: env, Figures: example}
	}
	return sp
}

// Derive fills the derived figures of a window from its totals, as
// docs/engine.md defines them.
func (w *StatsWindow) Derive() {
	long := int64(w.Abandoned - w.AbandonedShort)
	outcomes := int64(w.Answered) + long + int64(w.TimedOut)
	w.ServiceLevelPct = Percent(int64(w.AnsweredInSL), outcomes)
	w.AbandonRatePct = Percent(long, outcomes)
	w.ASAMS = Mean(w.AnswerWaitMS, int64(w.Answered))
	w.AHTMS = Mean(w.HandleMS, int64(w.Handled))
	w.OccupancyPct = Percent(w.OccupiedMS, w.StaffedMS)
}
