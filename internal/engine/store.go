package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/event"
)

// storedRecipient is what the bucket keeps of a recipient: configuration
// plus what is needed to restore a logged-in recipient elsewhere.
type storedRecipient struct {
	RecipientConfig
	LoggedIn bool `json:"logged_in"`
	// Availability is ready or away; a restored recipient returns to it.
	Availability event.State `json:"availability,omitempty"`
	// SinceMS is when Availability (or the login) began, Unix ms.
	SinceMS int64 `json:"since_ms,omitempty"`
	// Paused maps a paused queue to when the pause began, Unix ms.
	Paused map[string]int64 `json:"paused,omitempty"`
}

// stored is one account's configuration as read from the bucket.
type stored struct {
	queues     []QueueConfig
	recipients []storedRecipient
}

// readStored reads every key of one account in a single pass.
func (e *Engine) readStored(ctx context.Context, acc string) (stored, error) {
	var st stored
	if e.cfg.KV == nil {
		return st, nil
	}
	w, err := e.cfg.KV.WatchFiltered(ctx, []string{keyPrefix + acc + ".>"}, jetstream.IgnoreDeletes())
	if err != nil {
		return st, fmt.Errorf("watch %s: %w", acc, err)
	}
	defer func() { _ = w.Stop() }()
	for {
		var entry jetstream.KeyValueEntry
		select {
		case entry = <-w.Updates():
		case <-ctx.Done():
			return st, fmt.Errorf("read account %s: %w", acc, ctx.Err())
		}
		if entry == nil {
			break
		}
		_, kind, id, ok := parseKey(entry.Key())
		if !ok {
			continue
		}
		switch kind {
		case "q":
			var q QueueConfig
			if err := json.Unmarshal(entry.Value(), &q); err != nil || q.normalize() != nil || q.ID != id {
				e.log.Warn("skipping unreadable stored queue", "key", entry.Key(), "err", err)
				continue
			}
			st.queues = append(st.queues, q)
		case "r":
			var r storedRecipient
			if err := json.Unmarshal(entry.Value(), &r); err != nil || r.normalize() != nil || r.ID != id {
				e.log.Warn("skipping unreadable stored recipient", "key", entry.Key(), "err", err)
				continue
			}
			st.recipients = append(st.recipients, r)
		}
	}
	slices.SortFunc(st.queues, func(a, b QueueConfig) int { return cmpStr(a.ID, b.ID) })
	slices.SortFunc(st.recipients, func(a, b storedRecipient) int { return cmpStr(a.ID, b.ID) })
	return st, nil
}

func cmpStr(a, b string) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

// persistQueue queues a write of q's configuration behind the events
// produced so far, so the bucket and the stream change in the same order.
func (a *account) persistQueue(q *queue) {
	if a.e.cfg.KV == nil {
		return
	}
	data, _ := json.Marshal(q.cfg) // plain struct: cannot fail
	a.push(item{key: queueKey(a.id, q.cfg.ID), value: data})
}

func (a *account) forgetQueue(id string) {
	if a.e.cfg.KV == nil {
		return
	}
	a.push(item{key: queueKey(a.id, id), del: true})
}

func (a *account) persistRecipient(r *recipient) {
	if a.e.cfg.KV == nil {
		return
	}
	sr := storedRecipient{RecipientConfig: r.cfg}
	if r.loggedIn() {
		sr.LoggedIn = true
		sr.Availability = r.avail
		sr.SinceMS = r.availSince.UnixMilli()
		if len(r.paused) > 0 {
			sr.Paused = make(map[string]int64, len(r.paused))
			for q, t := range r.paused {
				sr.Paused[q] = t.UnixMilli()
			}
		}
	}
	data, _ := json.Marshal(sr) // plain struct: cannot fail
	a.push(item{key: recipientKey(a.id, r.cfg.ID), value: data})
}

func (a *account) forgetRecipient(id string) {
	if a.e.cfg.KV == nil {
		return
	}
	a.push(item{key: recipientKey(a.id, id), del: true})
}

// restore rebuilds the account from what was stored and announces it:
// queue.create per queue, recipient.sync per logged-in recipient.
func (a *account) restore(st stored) {
	for _, qc := range st.queues {
		q := newQueue(qc, a.now)
		a.queues[qc.ID] = q
		a.emitQueueCreate(q)
	}
	for _, sr := range st.recipients {
		cfg := sr.RecipientConfig
		cfg.Queues = slices.DeleteFunc(cfg.Queues, func(id string) bool { return a.queues[id] == nil })
		r := a.addRecipient(cfg)
		if !sr.LoggedIn {
			continue
		}
		avail := sr.Availability
		if avail != event.StateAway {
			avail = event.StateReady
		}
		since := a.now
		if sr.SinceMS > 0 && sr.SinceMS <= a.now.UnixMilli() {
			since = time.UnixMilli(sr.SinceMS)
		}
		r.avail, r.availSince = avail, since
		a.move(r, avail)
		r.since, r.idleSince = since, since
		for qid, ms := range sr.Paused {
			if r.serves(qid) {
				r.paused[qid] = time.UnixMilli(ms)
			}
		}
	}
	for _, r := range a.sortedRecipients() {
		if r.loggedIn() {
			a.emitSync(r)
		}
	}
	a.scheduleSync()
	a.dispatch()
}
