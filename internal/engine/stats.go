package engine

import (
	"context"
	"time"

	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/stats"
)

// This file publishes an account's statistics (stats.queue, stats.account)
// and serves them to readers. The figures themselves are package stats':
// the account folds every event it publishes into its stats.Model (emit),
// so they always agree with the stream.
//
// When a figure "changes" (docs/engine.md, Statistics): an event of the
// account changed it, or a minute boundary moved a window (a minute with
// something in it left the last 15 minutes or the last hour, the day
// ended) or the time-driven figures (callers waiting: the longest wait
// grows; staffed recipients: occupancy moves). Each queue, and the
// account, is published at most once per StatsInterval: a change within
// it is published when it has passed, with everything else that changed
// meanwhile.

// statsOut is when each statistics key (a queue id, or stats.AccountKey)
// was last published, and the timers that publish held-back changes and
// mark minute boundaries.
type statsOut struct {
	last  map[string]time.Time
	timer Timer     // publishes what the interval held back
	due   time.Time // when timer fires
	tick  Timer     // the next minute boundary
}

// publishStats publishes the figures that changed and whose interval has
// passed, and arms a timer for the others. Called with mu held at the end
// of every change (command, timer, load).
func (a *account) publishStats() {
	iv := a.e.cfg.StatsInterval
	if iv < 0 || a.closed {
		return
	}
	var next time.Time
	for _, key := range a.stats.Dirty() {
		last, ok := a.statsOut.last[key]
		due := last.Add(iv)
		if !ok || !a.now.Before(due) {
			a.emitStats(key)
			continue
		}
		if next.IsZero() || due.Before(next) {
			next = due
		}
	}
	if next.IsZero() || (a.statsOut.timer != nil && !a.statsOut.due.After(next)) {
		return
	}
	stopTimer(a.statsOut.timer)
	var t Timer
	t = a.after(next.Sub(a.now), func() {
		// after publishes once this returns.
		if a.statsOut.timer == t {
			a.statsOut.timer = nil
		}
	})
	a.statsOut.timer, a.statsOut.due = t, next
}

// emitStats publishes one key's figures as of now and stores its history
// behind them.
func (a *account) emitStats(key string) {
	t := a.now.UnixMilli()
	if key == stats.AccountKey {
		a.emit(&event.StatsAccount{Figures: a.stats.Account(t)})
		a.persistAccountStats()
	} else {
		f, ok := a.stats.Queue(key, t)
		if !ok {
			return
		}
		a.emit(&event.StatsQueue{Envelope: event.Envelope{QueueID: key}, QueueFigures: f})
		if q := a.queues[key]; q != nil {
			a.persistQueue(q)
		}
	}
	a.stats.Clean(key)
	a.statsOut.last[key] = a.now
}

// scheduleStatsTick arms the timer of the next UTC minute boundary, where
// the windows move.
func (a *account) scheduleStatsTick() {
	if a.e.cfg.StatsInterval < 0 {
		return
	}
	next := a.now.Truncate(time.Minute).Add(time.Minute)
	a.statsOut.tick = a.after(next.Sub(a.now), func() {
		a.stats.Tick(a.now.UnixMilli())
		a.scheduleStatsTick()
	})
}

// stopStats ends publishing for an account being unloaded and stores the
// statistics history of every queue and of the account, so whoever loads
// it next goes on from there.
func (a *account) stopStats(queues []*queue) {
	stopTimer(a.statsOut.timer)
	stopTimer(a.statsOut.tick)
	for _, q := range queues {
		a.persistQueue(q)
	}
	a.persistAccountStats()
}

// AccountStats are an account's statistics at one time: the account-wide
// figures and each queue's, sorted by queue id.
type AccountStats struct {
	Account event.Figures `json:"account"`
	Queues  []QueueStats  `json:"queues"`
}

// QueueStats are one queue's statistics: the figures of its stats.queue
// event and, in a StatsReport (GET /v2/accounts/{ACCOUNT_ID}/qubicle_stats),
// its trend over the last hour (a Snapshot carries none).
type QueueStats struct {
	QueueID string `json:"queue_id"`
	event.QueueFigures
	// Trend has a point per minute of the last hour, oldest first.
	Trend []stats.TrendPoint `json:"trend,omitempty"`
}

// statsView reports the figures as of now; with trend, each queue's last
// hour too. Called with mu held.
func (a *account) statsView(trend bool) AccountStats {
	t := a.now.UnixMilli()
	v := AccountStats{Account: a.stats.Account(t), Queues: []QueueStats{}}
	for _, id := range a.stats.Queues() {
		if a.queues[id] == nil {
			continue // stopped by a shutdown: it comes back on the next load
		}
		f, _ := a.stats.Queue(id, t)
		qs := QueueStats{QueueID: id, QueueFigures: f}
		if trend {
			qs.Trend = a.stats.Trend(id, t)
		}
		v.Queues = append(v.Queues, qs)
	}
	return v
}

// StatsReport is GET /v2/accounts/{ACCOUNT_ID}/qubicle_stats: the
// account's statistics as of Timestamp, consistent with the stream at
// Sequence like a Snapshot, with each queue's trend.
type StatsReport struct {
	AccountID   string `json:"account_id"`
	Sequence    uint64 `json:"sequence"`
	Epoch       string `json:"epoch,omitempty"`
	Timestamp   string `json:"timestamp"`
	TimestampMS int64  `json:"timestamp_ms"`
	AccountStats
}

// Stats returns the account's statistics and the stream position they are
// consistent with: the stats events after Sequence replace them.
func (e *Engine) Stats(ctx context.Context, accountID string) (StatsReport, error) {
	var r StatsReport
	seq, epoch, err := e.consistentRead(ctx, accountID, func(a *account) {
		r = StatsReport{AccountID: accountID, Timestamp: stamp(a.now), TimestampMS: a.now.UnixMilli(), AccountStats: a.statsView(true)}
	})
	r.Sequence, r.Epoch = seq, epoch
	return r, err
}
