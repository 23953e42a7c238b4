package stats

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/event"
)

const acc = "0123456789abcdef0123456789abcdef"

// at is 2026-11-25 09:00 UTC plus an offset: times of a test day.
func at(d time.Duration) int64 {
	return time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC).Add(d).UnixMilli()
}

// feed stamps and observes events, each at its time.
type feed struct {
	t *testing.T
	m *Model
}

func newFeed(t *testing.T) *feed {
	m := New()
	m.Configure("q", Settings{Name: "Q", ServiceLevelS: 20, ServiceLevelTargetPct: 80, ShortAbandonS: 5})
	return &feed{t: t, m: m}
}

func (f *feed) at(ms int64, p event.Payload) {
	f.t.Helper()
	env := p.Env()
	env.AccountID = acc
	event.Stamp(p, time.UnixMilli(ms))
	if _, _, err := event.Marshal(p); err != nil {
		f.t.Fatalf("test built an invalid %T: %v", p, err)
	}
	f.m.Observe(p)
}

func (f *feed) join(ms int64, s string) {
	f.at(ms, &event.QueueJoin{Envelope: event.Envelope{QueueID: "q", SessionID: s}, CallerIDNumber: "1", Position: 1})
}

func (f *feed) leave(ms int64, s string, reason event.LeaveReason, waitMS int64) {
	f.at(ms, &event.QueueLeave{Envelope: event.Envelope{QueueID: "q", SessionID: s}, Reason: reason, Position: 1, WaitDurationMS: waitMS})
}

func (f *feed) answer(ms int64, s, r string, waitMS int64) {
	f.at(ms, &event.QueueDelivered{Envelope: event.Envelope{QueueID: "q", SessionID: s, RecipientID: r}, Position: 1, WaitDurationMS: waitMS})
	f.leave(ms, s, event.LeaveDelivered, waitMS)
}

func (f *feed) login(ms int64, r string) {
	f.at(ms, &event.RecipientCreate{Envelope: event.Envelope{RecipientID: r},
		Transition: event.Transition{State: event.StateReady, PreviousState: event.StateLoggedOut}, Queues: []string{"q"}})
}

func (f *feed) state(ms int64, r string, from, to event.State) {
	f.at(ms, &event.RecipientAway{Envelope: event.Envelope{RecipientID: r}, Transition: event.Transition{State: to, PreviousState: from}})
}

func TestServiceLevelCountsAnsweredWithinThresholdOverAnsweredLongAbandonsAndTimeouts(t *testing.T) {
	f := newFeed(t)
	f.join(at(0), "a")
	f.answer(at(10*time.Second), "a", "r", 10000) // in SL
	f.join(at(20*time.Second), "b")
	f.answer(at(45*time.Second), "b", "r", 25000) // out of SL
	f.join(at(50*time.Second), "c")
	f.leave(at(53*time.Second), "c", event.LeaveAbandoned, 3000) // short: left out
	f.join(at(55*time.Second), "d")
	f.leave(at(95*time.Second), "d", event.LeaveAbandoned, 40000) // counts against
	f.join(at(100*time.Second), "e")
	f.leave(at(400*time.Second), "e", event.LeaveTimeout, 300000)
	f.join(at(401*time.Second), "full")
	f.leave(at(401*time.Second), "full", event.LeaveQueueFull, 0)

	q, ok := f.m.Queue("q", at(401*time.Second))
	if !ok {
		t.Fatal("queue missing")
	}
	w := q.Today
	if w.Offered != 6 || w.Answered != 2 || w.AnsweredInSL != 1 || w.Abandoned != 2 || w.AbandonedShort != 1 || w.TimedOut != 1 || w.QueueFull != 1 {
		t.Fatalf("today %+v", w)
	}
	// 1 in SL of 2 answered + 1 long abandon + 1 time-out = 25 %.
	if w.ServiceLevelPct == nil || *w.ServiceLevelPct != 25 || *w.AbandonRatePct != 25 || *w.ASAMS != 17500 {
		t.Errorf("derived: sl %v abandon %v asa %v", ptrs(w.ServiceLevelPct), ptrs(w.AbandonRatePct), ptrs(w.ASAMS))
	}
	if w.AHTMS != nil || w.OccupancyPct != nil {
		t.Errorf("aht and occupancy have no denominator yet, got %v %v", ptrs(w.AHTMS), ptrs(w.OccupancyPct))
	}
	if q.Waiting != 0 || q.LongestWaitMS != 0 || q.OldestJoinedAt != "" {
		t.Errorf("nobody waits, got %d %d %q", q.Waiting, q.LongestWaitMS, q.OldestJoinedAt)
	}
}

func TestWindowsAreWholeMinutesAndSlideWithTime(t *testing.T) {
	f := newFeed(t)
	f.join(at(30*time.Second), "a") // minute 09:00
	f.answer(at(40*time.Second), "a", "r", 10000)
	f.join(at(14*time.Minute+59*time.Second), "b") // minute 09:14
	f.answer(at(15*time.Minute), "b", "r", 1000)   // minute 09:15

	cases := []struct {
		at              time.Duration
		last15, last1h  int
		from15          string
		todayOffered    int
		waiting, oldest int
	}{
		{14*time.Minute + 59*time.Second, 1, 1, "2026-11-25T09:00:00.000Z", 2, 0, 0},
		{15 * time.Minute, 1, 2, "2026-11-25T09:01:00.000Z", 2, 0, 0}, // 09:00 has left the 15 minutes
		{29*time.Minute + 59*time.Second, 1, 2, "2026-11-25T09:15:00.000Z", 2, 0, 0},
		{30 * time.Minute, 0, 2, "2026-11-25T09:16:00.000Z", 2, 0, 0},
		{60 * time.Minute, 0, 1, "2026-11-25T09:46:00.000Z", 2, 0, 0}, // 09:00 has left the hour
	}
	for _, c := range cases {
		q, _ := f.m.Queue("q", at(c.at))
		if q.Last15m.Answered != c.last15 || q.Last1h.Answered != c.last1h || q.Last15m.From != c.from15 || q.Today.Offered != c.todayOffered {
			t.Errorf("at +%v: answered 15m %d 1h %d from %s, today offered %d; want %d %d %s %d", c.at,
				q.Last15m.Answered, q.Last1h.Answered, q.Last15m.From, q.Today.Offered, c.last15, c.last1h, c.from15, c.todayOffered)
		}
	}
}

func TestTodayStartsAgainAtMidnightUTC(t *testing.T) {
	f := newFeed(t)
	f.join(at(14*time.Hour+59*time.Minute), "a") // 23:59
	f.answer(at(14*time.Hour+59*time.Minute+30*time.Second), "a", "r", 30000)
	before, _ := f.m.Queue("q", at(14*time.Hour+59*time.Minute+59*time.Second))
	after, _ := f.m.Queue("q", at(15*time.Hour))
	if before.Today.Answered != 1 || after.Today.Answered != 0 || after.Today.From != "2026-11-26T00:00:00.000Z" {
		t.Errorf("before midnight %+v, after %+v", before.Today, after.Today)
	}
	if after.Last15m.Answered != 1 {
		t.Errorf("the last 15 minutes reach back over midnight, got %+v", after.Last15m)
	}
	f.m.Clean("q")
	f.m.Clean(AccountKey)
	f.m.Tick(at(15 * time.Hour))
	if d := f.m.Dirty(); len(d) != 2 {
		t.Errorf("midnight with totals to reset: dirty %v, want the queue and the account", d)
	}
}

func TestOccupancyIntegratesRecipientStatesOverTheWindow(t *testing.T) {
	f := newFeed(t)
	f.login(at(0), "r")                                                  // ready 0-10 min
	f.state(at(10*time.Minute), "r", event.StateReady, event.StateBusy)  // busy 10-13
	f.state(at(13*time.Minute), "r", event.StateBusy, event.StateWrapup) // wrap-up 13-14
	f.state(at(14*time.Minute), "r", event.StateWrapup, event.StateAway) // away from 14: not staffed
	q, _ := f.m.Queue("q", at(20*time.Minute))
	if q.Today.StaffedMS != 14*60000 || q.Today.OccupiedMS != 4*60000 || *q.Today.OccupancyPct != 28.6 {
		t.Errorf("today staffed %d occupied %d occupancy %v", q.Today.StaffedMS, q.Today.OccupiedMS, ptrs(q.Today.OccupancyPct))
	}
	// The 15 minutes at 09:20 are 09:06-09:20: 4 min ready, 4 busy or wrap-up.
	if q.Last15m.StaffedMS != 8*60000 || q.Last15m.OccupiedMS != 4*60000 {
		t.Errorf("15m staffed %d occupied %d", q.Last15m.StaffedMS, q.Last15m.OccupiedMS)
	}
	if q.Recipients != (event.RecipientCounts{LoggedIn: 1, Away: 1}) {
		t.Errorf("recipients %+v", q.Recipients)
	}
	// A span still open counts up to the time asked.
	f.state(at(30*time.Minute), "r", event.StateAway, event.StateBusy)
	q, _ = f.m.Queue("q", at(31*time.Minute))
	a := f.m.Account(at(31 * time.Minute))
	if q.Today.OccupiedMS != 5*60000 || a.Today.OccupiedMS != 5*60000 || a.Recipients.Busy != 1 {
		t.Errorf("open span: queue occupied %d, account occupied %d, account recipients %+v", q.Today.OccupiedMS, a.Today.OccupiedMS, a.Recipients)
	}
}

func TestHandleTimeIsTalkPlusWrapupCountedWhenHandlingEnds(t *testing.T) {
	f := newFeed(t)
	f.login(at(0), "r")
	f.at(at(2*time.Minute), &event.RecipientHangup{Envelope: event.Envelope{RecipientID: "r", SessionID: "s", QueueID: "q"},
		Transition: event.Transition{State: event.StateWrapup, PreviousState: event.StateBusy}, HangupBy: event.PartyCaller, DurationMS: 90000})
	q, _ := f.m.Queue("q", at(2*time.Minute))
	if q.Today.Handled != 0 {
		t.Fatalf("handled before wrap-up ends: %+v", q.Today)
	}
	f.at(at(2*time.Minute+30*time.Second), &event.RecipientWrapupComplete{Envelope: event.Envelope{RecipientID: "r", SessionID: "s", QueueID: "q"},
		Transition: event.Transition{State: event.StateReady, PreviousState: event.StateWrapup}, WrapupDurationMS: 30000})
	q, _ = f.m.Queue("q", at(3*time.Minute))
	if q.Today.Handled != 1 || q.Today.HandleMS != 120000 || *q.Today.AHTMS != 120000 {
		t.Errorf("today %+v", q.Today)
	}
}

func TestLongestWaitIsTheOldestWaitingCaller(t *testing.T) {
	f := newFeed(t)
	f.join(at(0), "a")
	f.join(at(10*time.Second), "b")
	f.leave(at(20*time.Second), "a", event.LeaveAbandoned, 20000)
	q, _ := f.m.Queue("q", at(50*time.Second))
	if q.Waiting != 1 || q.LongestWaitMS != 40000 || q.OldestJoinedAt != "2026-11-25T09:00:10.000Z" {
		t.Errorf("waiting %d longest %d since %s", q.Waiting, q.LongestWaitMS, q.OldestJoinedAt)
	}
	a := f.m.Account(at(50 * time.Second))
	if a.Waiting != 1 || a.LongestWaitMS != 40000 || a.Today.Abandoned != 1 {
		t.Errorf("account %+v", a)
	}
}

func TestCheckpointRestoresTheSameFigures(t *testing.T) {
	f := newFeed(t)
	f.login(at(0), "r")
	f.join(at(time.Minute), "a")
	f.answer(at(time.Minute+5*time.Second), "a", "r", 5000)
	f.join(at(70*time.Minute), "b")
	f.leave(at(71*time.Minute), "b", event.LeaveAbandoned, 60000)
	now := at(72 * time.Minute)
	cp := f.m.QueueCheckpoint("q", now)
	acp := f.m.AccountCheckpoint(now)
	raw, err := json.Marshal(cp)
	if err != nil {
		t.Fatal(err)
	}
	var back Checkpoint
	if err := json.Unmarshal(raw, &back); err != nil {
		t.Fatal(err)
	}
	want, _ := f.m.Queue("q", now)
	wantTrend := f.m.Trend("q", now)

	m := New()
	m.Configure("q", Settings{Name: "Q", ServiceLevelS: 20, ServiceLevelTargetPct: 80, ShortAbandonS: 5})
	m.RestoreQueue("q", &back, now)
	m.RestoreAccount(acp, now)
	got, _ := m.Queue("q", now)
	// Recipients come back with the next load's events, not the checkpoint.
	want.Recipients = event.RecipientCounts{}
	if g, w := mustJSON(t, got), mustJSON(t, want); g != w {
		t.Errorf("restored figures differ:\n got %s\nwant %s", g, w)
	}
	if g, w := mustJSON(t, m.Trend("q", now)), mustJSON(t, wantTrend); g != w {
		t.Errorf("restored trend differs:\n got %s\nwant %s", g, w)
	}
	if a := m.Account(now); a.Today.StaffedMS != 72*60000 {
		t.Errorf("account staffed time %d after restore", a.Today.StaffedMS)
	}
	// A checkpoint of an earlier day keeps no totals for today.
	m2 := New()
	m2.Configure("q", Settings{Name: "Q"})
	m2.RestoreQueue("q", &back, at(24*time.Hour))
	if q, _ := m2.Queue("q", at(24*time.Hour)); q.Today.Answered != 0 || q.Last1h.Answered != 0 {
		t.Errorf("yesterday's totals survived a restore on a later day: %+v", q.Today)
	}
}

func TestTrendShowsPeakWaitingAndRollingServiceLevelPerMinute(t *testing.T) {
	f := newFeed(t)
	f.join(at(0), "a")
	f.join(at(5*time.Second), "b")
	f.join(at(6*time.Second), "c")
	f.answer(at(10*time.Second), "a", "r", 10000)
	f.answer(at(65*time.Second), "b", "r", 60000) // minute 09:01, out of SL
	f.leave(at(66*time.Second), "c", event.LeaveAbandoned, 60000)
	tr := f.m.Trend("q", at(5*time.Minute))
	if len(tr) != 60 || tr[59].Minute != "2026-11-25T09:05:00.000Z" {
		t.Fatalf("trend has %d points ending %v", len(tr), tr[len(tr)-1])
	}
	i := 54 // 09:00
	if tr[i].WaitingPeak != 3 || *tr[i].ServiceLevelPct != 100 {
		t.Errorf("09:00 %+v", tr[i])
	}
	if tr[i+1].WaitingPeak != 2 || *tr[i+1].ServiceLevelPct != 33.3 {
		t.Errorf("09:01 %+v (sl %v)", tr[i+1], ptrs(tr[i+1].ServiceLevelPct))
	}
	if tr[i+2].WaitingPeak != 0 || tr[i-1].WaitingPeak != 0 || tr[i-1].ServiceLevelPct != nil {
		t.Errorf("quiet minutes: 09:02 %+v, 08:59 %+v", tr[i+2], tr[i-1])
	}
}

func TestTickMarksOnlyWhatTimeChanges(t *testing.T) {
	f := newFeed(t)
	f.m.Configure("idle", Settings{Name: "Idle"})
	f.join(at(0), "a")
	for _, k := range f.m.Dirty() {
		f.m.Clean(k)
	}
	f.m.Tick(at(time.Minute))
	if d := f.m.Dirty(); len(d) != 2 || d[0] != "q" || d[1] != AccountKey {
		t.Errorf("a caller waits in q: dirty %v", d)
	}
}

func ptrs[T any](p *T) any {
	if p == nil {
		return nil
	}
	return *p
}

func mustJSON(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestThresholdsAreInclusiveForServiceLevelAndExclusiveForShortAbandons(t *testing.T) {
	f := newFeed(t)
	f.join(at(0), "a")
	f.answer(at(20*time.Second), "a", "r", 20000) // exactly 20 s: within
	f.join(at(21*time.Second), "b")
	f.answer(at(41*time.Second+1), "b", "r", 20001) // a millisecond over
	f.join(at(50*time.Second), "c")
	f.leave(at(55*time.Second), "c", event.LeaveAbandoned, 5000) // exactly 5 s: not short
	f.join(at(60*time.Second), "d")
	f.leave(at(65*time.Second-1), "d", event.LeaveAbandoned, 4999) // short
	q, _ := f.m.Queue("q", at(time.Minute+5*time.Second))
	if w := q.Today; w.AnsweredInSL != 1 || w.AbandonedShort != 1 || w.Abandoned != 2 {
		t.Errorf("today %+v", w)
	}
}
