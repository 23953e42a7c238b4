package stats

import (
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/event"
)

// BenchmarkObserveCall folds one answered call's queue and recipient
// events (join, offer, delivered, leave, hangup, wrap-up, wrap-up end) into
// a model of 5 queues and 50 recipients: the engine's cost per call.
func BenchmarkObserveCall(b *testing.B) {
	m := New()
	queues := []string{"q0", "q1", "q2", "q3", "q4"}
	for _, q := range queues {
		m.Configure(q, Settings{Name: q})
	}
	t := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC)
	stamp := func(p event.Payload) event.Payload {
		p.Env().AccountID = acc
		t = t.Add(700 * time.Millisecond)
		event.Stamp(p, t)
		return p
	}
	for i := range 50 {
		id := "r" + string(rune('a'+i%26)) + string(rune('a'+i/26))
		m.Observe(stamp(&event.RecipientCreate{Envelope: event.Envelope{RecipientID: id},
			Transition: event.Transition{State: event.StateReady, PreviousState: event.StateLoggedOut}, Queues: queues[:2+i%3]}))
	}
	tr := func(from, to event.State) event.Transition { return event.Transition{State: to, PreviousState: from} }
	env := event.Envelope{QueueID: "q0", SessionID: "s", RecipientID: "raa"}
	evs := []event.Payload{
		&event.QueueJoin{Envelope: event.Envelope{QueueID: "q0", SessionID: "s"}, CallerIDNumber: "1", Position: 1},
		&event.RecipientOffer{Envelope: env, Transition: tr(event.StateReady, event.StateOffered), CallerIDNumber: "1", TimeoutS: 20},
		&event.QueueDelivered{Envelope: env, Position: 1, WaitDurationMS: 3000},
		&event.RecipientDelivered{Envelope: env, Transition: tr(event.StateOffered, event.StateBusy), CallerIDNumber: "1"},
		&event.QueueLeave{Envelope: env, Reason: event.LeaveDelivered, Position: 1, WaitDurationMS: 3000},
		&event.RecipientHangup{Envelope: env, Transition: tr(event.StateBusy, event.StateWrapup), HangupBy: event.PartyCaller, DurationMS: 60000},
		&event.RecipientWrapupComplete{Envelope: env, Transition: tr(event.StateWrapup, event.StateReady), WrapupDurationMS: 10000},
	}
	for _, p := range evs {
		stamp(p)
	}
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range evs {
			p.Env().TimestampMS += 7000 // time moves on, as it would
			m.Observe(p)
		}
	}
}

// BenchmarkQueueFigures evaluates one queue's figures (what each stats
// event and snapshot costs) with 50 recipients serving it.
func BenchmarkQueueFigures(b *testing.B) {
	m := New()
	m.Configure("q", Settings{Name: "Q"})
	now := time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC).UnixMilli()
	for i := range 50 {
		p := &event.RecipientCreate{Envelope: event.Envelope{RecipientID: "r" + string(rune('a'+i%26)) + string(rune('a'+i/26))},
			Transition: event.Transition{State: event.StateReady, PreviousState: event.StateLoggedOut}, Queues: []string{"q"}}
		p.AccountID = acc
		event.Stamp(p, time.UnixMilli(now))
		m.Observe(p)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, ok := m.Queue("q", now+90*60000); !ok {
			b.Fatal("no queue")
		}
	}
}
