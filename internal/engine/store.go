package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/backoff"
	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/stats"
)

// storedQueue is what the bucket keeps of a queue: its configuration and
// its statistics' history, written behind the events they count.
type storedQueue struct {
	QueueConfig
	// Day is the UTC date (2026-11-25) the totals are for; a queue loaded
	// on a later day starts from zero. They repeat Stats.Today for engines
	// older than Stats, and seed it when only they are stored.
	Day       string `json:"day,omitempty"`
	Delivered int    `json:"delivered_today,omitempty"`
	Abandoned int    `json:"abandoned_today,omitempty"`
	// Stats is the queue's statistics history: today's totals and the
	// minutes the windows and the trend still need.
	Stats *stats.Checkpoint `json:"stats,omitempty"`
}

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

// storedSession is what the bucket keeps of a call in progress: enough for
// the account's next owner to end it cleanly if this one dies with it.
// Calls are kept under numbered slots (acct.<account>.s.<slot>) reused as
// calls end, so the account's keys, and the deletes they leave behind,
// stay as few as the most calls it ever had at once.
type storedSession struct {
	SessionID   string `json:"session_id"`
	QueueID     string `json:"queue_id,omitempty"`
	RecipientID string `json:"recipient_id,omitempty"`
	External    bool   `json:"external,omitempty"`
	// Answered is set once the caller has left the queue (delivered), and
	// from the start for external calls.
	Answered  bool  `json:"answered,omitempty"`
	CreatedMS int64 `json:"created_ms"`
	JoinedMS  int64 `json:"joined_ms,omitempty"`
}

// orphan is a call in progress found in the bucket at load.
type orphan struct {
	slot int
	storedSession
}

// ownerRecord is the value of an account's fence key.
type ownerRecord struct {
	// Engine is the instance id of the engine that loaded the account.
	Engine   string `json:"engine"`
	LoadedAt string `json:"loaded_at"`
	// Stopped says that engine ended everything it ran and published so
	// before letting the account go; false after a crash.
	Stopped bool `json:"stopped,omitempty"`
}

// stored is one account's state as read from the bucket.
type stored struct {
	queues     []storedQueue
	recipients []storedRecipient
	sessions   []orphan
	// slots are the call slots that have a key or a delete marker: free
	// once the orphans are ended.
	slots []int
	owner *ownerRecord // nil when no engine has fenced the account yet
	// stats is the account-wide statistics history (its recipients' time).
	stats *stats.Checkpoint
	// last is the account's last revision in the bucket, deletes included.
	last uint64
	// fence is the revision of this engine's fence write.
	fence uint64
}

// crashed reports whether the previous owner died without stopping cleanly.
func (st stored) crashed() bool { return st.owner != nil && !st.owner.Stopped }

// errFenced means another engine has written the account since this one
// last did: this one no longer owns it.
var errFenced = errors.New("another engine has written this account")

// errContended means a write met another write of the same account in
// flight; it is tried again.
var errContended = errors.New("a concurrent write of this account is in flight")

// fenceAttempts bounds how often a load re-reads an account that keeps
// changing under it (a previous owner's last writes landing).
const fenceAttempts = 5

// takeOver reads an account and fences it: after the fence write succeeds
// no earlier owner can write the account again, and what was read is
// exactly what the bucket holds.
func (e *Engine) takeOver(ctx context.Context, acc string) (stored, error) {
	if e.cfg.KV == nil {
		return stored{}, nil
	}
	for attempt := 1; ; attempt++ {
		st, err := e.readStored(ctx, acc)
		if err != nil {
			return st, err
		}
		rec, _ := json.Marshal(ownerRecord{Engine: e.instance, LoadedAt: stamp(e.clock.Now())})
		id := event.NewEventID()
		retry := backoff.New(25*time.Millisecond, time.Second, backoff.NoJitter)
		for {
			st.fence, err = e.put(ctx, acc, ownerKey(acc), rec, false, st.last, id)
			if err == nil {
				return st, nil
			}
			if errors.Is(err, errFenced) || ctx.Err() != nil {
				break
			}
			if err := retry.Wait(ctx); err != nil {
				return st, fmt.Errorf("fence account %s: %w", acc, err)
			}
		}
		if !errors.Is(err, errFenced) || attempt == fenceAttempts {
			return st, fmt.Errorf("fence account %s: %w", acc, err)
		}
		e.log.Info("account changed while loading; reading it again", "account", acc)
	}
}

// readStored reads every key of one account in a single pass.
func (e *Engine) readStored(ctx context.Context, acc string) (stored, error) {
	var st stored
	// Deletes count too: the fence expects the account's very last
	// revision, and a deleted key's marker may be it.
	w, err := e.cfg.KV.WatchFiltered(ctx, []string{accountKeys(acc)})
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
		st.last = max(st.last, entry.Revision())
		_, kind, id, ok := parseKey(entry.Key())
		if !ok {
			continue
		}
		if kind == "s" {
			if slot, err := strconv.Atoi(id); err == nil && slot >= 0 && slot < maxSessions {
				st.slots = append(st.slots, slot)
			}
		}
		if entry.Operation() != jetstream.KeyValuePut {
			continue
		}
		switch kind {
		case "q":
			var q storedQueue
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
		case "s":
			slot, err := strconv.Atoi(id)
			if err != nil || slot < 0 || slot >= maxSessions {
				e.log.Warn("skipping a stored call under a key this engine never writes", "key", entry.Key())
				continue
			}
			var s storedSession
			if err := json.Unmarshal(entry.Value(), &s); err != nil {
				e.log.Warn("skipping unreadable stored call", "key", entry.Key(), "err", err)
			}
			// Even unreadable, the slot is the previous owner's: it is
			// ended (when readable) and freed like the others.
			st.sessions = append(st.sessions, orphan{slot: slot, storedSession: s})
		case "o":
			var rec ownerRecord
			if err := json.Unmarshal(entry.Value(), &rec); err == nil {
				st.owner = &rec
			}
		case "a":
			var cp stats.Checkpoint
			if err := json.Unmarshal(entry.Value(), &cp); err != nil {
				e.log.Warn("skipping unreadable stored account statistics", "key", entry.Key(), "err", err)
				continue
			}
			st.stats = &cp
		}
	}
	slices.SortFunc(st.queues, func(a, b storedQueue) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(st.recipients, func(a, b storedRecipient) int { return cmp.Compare(a.ID, b.ID) })
	slices.SortFunc(st.sessions, func(a, b orphan) int {
		if a.CreatedMS != b.CreatedMS {
			return int(a.CreatedMS - b.CreatedMS)
		}
		return cmp.Compare(a.SessionID, b.SessionID)
	})
	slices.Sort(st.slots)
	return st, nil
}

// put writes key (a delete marker when del) only if the account's last
// write in the bucket is still revision last, and returns the revision it
// stored. msgID makes a retried put idempotent. It returns an error
// wrapping errFenced when another writer has written the account since
// last, and errContended when a write of the account was in flight.
func (e *Engine) put(ctx context.Context, acc, key string, value []byte, del bool, last uint64, msgID string) (uint64, error) {
	msg := nats.NewMsg(e.putPrefix + key)
	msg.Data = value
	if del {
		msg.Header.Set("KV-Operation", "DEL")
	}
	ack, err := e.js.PublishMsg(ctx, msg,
		jetstream.WithMsgID(msgID),
		jetstream.WithExpectLastSequenceForSubject(last, e.putPrefix+accountKeys(acc)))
	if err == nil {
		return ack.Sequence, nil
	}
	var apiErr *jetstream.APIError
	if !errors.As(err, &apiErr) || (apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequence && apiErr.ErrorCode != jetstream.JSErrCodeStreamWrongLastSequenceConstant) {
		return 0, fmt.Errorf("write %s: %w", key, err)
	}
	// A mismatch is also how a write in flight at the same time shows on a
	// replicated bucket; ask the stream leader what the last write is.
	seq, id, gerr := e.lastWrite(ctx, acc)
	switch {
	case gerr != nil:
		return 0, fmt.Errorf("write %s: %w (and reading the account's last write: %v)", key, err, gerr)
	case id == msgID:
		return seq, nil // ours, stored by an earlier attempt
	case seq == last:
		return 0, fmt.Errorf("write %s: %w", key, errContended)
	}
	return 0, fmt.Errorf("write %s: %w (revision %d, expected %d)", key, errFenced, seq, last)
}

// lastWrite asks the bucket's stream leader for the account's last
// revision and the message id it was written with (0, "" when none).
func (e *Engine) lastWrite(ctx context.Context, acc string) (uint64, string, error) {
	req, _ := json.Marshal(map[string]string{"last_by_subj": e.putPrefix + accountKeys(acc)})
	subj := "$JS.API.STREAM.MSG.GET.KV_" + e.cfg.KV.Bucket()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, 5*time.Second)
		defer cancel()
	}
	reply, err := e.js.Conn().RequestWithContext(ctx, subj, req)
	if err != nil {
		return 0, "", err
	}
	var resp struct {
		Message *struct {
			Seq  uint64 `json:"seq"`
			Hdrs []byte `json:"hdrs"`
		} `json:"message"`
		Error *jetstream.APIError `json:"error"`
	}
	if err := json.Unmarshal(reply.Data, &resp); err != nil {
		return 0, "", fmt.Errorf("decode stream message: %w", err)
	}
	switch {
	case resp.Error != nil && resp.Error.ErrorCode == jetstream.JSErrCodeMessageNotFound:
		return 0, "", nil
	case resp.Error != nil:
		return 0, "", resp.Error
	case resp.Message == nil:
		return 0, "", errors.New("empty stream message reply")
	}
	var id string
	if len(resp.Message.Hdrs) > 0 {
		if h, err := nats.DecodeHeadersMsg(resp.Message.Hdrs); err == nil {
			id = h.Get(jetstream.MsgIDHeader)
		}
	}
	return resp.Message.Seq, id, nil
}

// write carries out one write item through the fence.
func (a *account) write(it *item, msgID string) error {
	rev, err := a.e.put(a.ctx, a.id, it.key, it.value, it.del, a.kvLast, msgID)
	if err != nil {
		return err
	}
	a.kvLast = rev
	return nil
}

// persistQueue queues a write of q's configuration and today's totals
// behind the events produced so far, so the bucket and the stream change
// in the same order: a crash between a counted event and its write can
// leave a total one short, never ahead of the stream.
func (a *account) persistQueue(q *queue) {
	if a.e.cfg.KV == nil {
		return
	}
	t := a.now.UnixMilli()
	sq := storedQueue{QueueConfig: q.cfg, Stats: a.stats.QueueCheckpoint(q.cfg.ID, t)}
	if d, ab := a.stats.Today(q.cfg.ID, t); d > 0 || ab > 0 {
		sq.Day, sq.Delivered, sq.Abandoned = dayString(dayOf(a.now)), d, ab
	}
	data, _ := json.Marshal(sq) // plain struct: cannot fail
	a.push(item{key: queueKey(a.id, q.cfg.ID), value: data})
}

// persistAccountStats writes the account-wide statistics history behind
// the events it counts.
func (a *account) persistAccountStats() {
	if a.e.cfg.KV == nil {
		return
	}
	data, _ := json.Marshal(a.stats.AccountCheckpoint(a.now.UnixMilli())) // plain struct: cannot fail
	a.push(item{key: accountStatsKey(a.id), value: data})
}

// forget deletes key from the bucket, behind the events before it.
func (a *account) forget(key string) {
	if a.e.cfg.KV == nil {
		return
	}
	a.push(item{key: key, del: true})
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

// persistSession records a call in progress. A new call is recorded
// before its first event and an answered one after the caller's leave, so
// a crash in between makes the next owner end a call nobody saw, or end a
// caller's wait twice, rather than leave a join without a leave.
func (a *account) persistSession(s *session) {
	if a.e.cfg.KV == nil {
		return
	}
	ss := storedSession{SessionID: s.id, QueueID: s.queueID, External: s.external, CreatedMS: s.created.UnixMilli(), JoinedMS: s.joined.UnixMilli()}
	if s.phase != phaseWaiting {
		ss.Answered = true
	}
	if s.recipient != nil {
		ss.RecipientID = s.recipient.cfg.ID
	}
	data, _ := json.Marshal(ss) // plain struct: cannot fail
	if !s.stored {
		s.stored, s.slot = true, a.takeSlot()
	}
	a.push(item{key: sessionKey(a.id, s.slot), value: data})
}

// forgetSession removes a call's record once its session.delete is queued.
func (a *account) forgetSession(s *session) {
	if !s.stored {
		return
	}
	s.stored = false
	a.push(item{key: sessionKey(a.id, s.slot), del: true})
	a.freeSlots = append(a.freeSlots, s.slot)
}

// takeSlot returns a free call slot, reusing freed ones before new ones.
func (a *account) takeSlot() int {
	if n := len(a.freeSlots); n > 0 {
		slot := a.freeSlots[n-1]
		a.freeSlots = a.freeSlots[:n-1]
		return slot
	}
	a.nextSlot++
	return a.nextSlot - 1
}

// markStopped records, after everything the account's shutdown produced,
// that it stopped cleanly, so the next owner need not end anything for it.
func (a *account) markStopped() {
	if a.e.cfg.KV == nil {
		return
	}
	data, _ := json.Marshal(ownerRecord{Engine: a.e.instance, LoadedAt: stamp(a.now), Stopped: true})
	a.push(item{key: ownerKey(a.id), value: data})
}

// restore rebuilds the account from what was stored and announces it:
// queue.create per queue, recipient.sync per logged-in recipient. When the
// previous owner died, what it left running is ended first, as its own
// shutdown would have: each call it had in progress ends (a waiting caller
// with queue.leave queue_deleted, then session.delete SYSTEM_SHUTDOWN by
// system) and each queue stops (queue.delete shutdown) before starting
// again.
func (a *account) restore(st stored) {
	t := a.now.UnixMilli()
	for _, sq := range st.queues {
		q := &queue{cfg: sq.QueueConfig}
		a.queues[sq.ID] = q
		a.stats.Configure(sq.ID, sq.QueueConfig.statsSettings())
		cp := sq.Stats
		if cp == nil && sq.Delivered >= 0 && sq.Abandoned >= 0 {
			// Stored by an engine without statistics history: its totals.
			cp = &stats.Checkpoint{Day: sq.Day, Today: stats.Counters{Answered: int64(sq.Delivered), Abandoned: int64(sq.Abandoned)}}
		}
		// Totals of an earlier day are not today's: they start again.
		a.stats.RestoreQueue(sq.ID, cp, t)
	}
	a.stats.RestoreAccount(st.stats, t)
	waiting := map[string]int{}
	for _, o := range st.sessions {
		a.endOrphan(o, waiting)
	}
	// Every slot seen is free now; reusing them keeps the keys few. Kept
	// highest first, so the lowest is taken first.
	for i := len(st.slots) - 1; i >= 0; i-- {
		if i == len(st.slots)-1 || st.slots[i] != st.slots[i+1] {
			a.freeSlots = append(a.freeSlots, st.slots[i])
		}
	}
	if n := len(st.slots); n > 0 {
		a.nextSlot = st.slots[n-1] + 1
	}
	for _, q := range a.sortedQueues() {
		if st.crashed() {
			a.emit(&event.QueueDelete{Envelope: event.Envelope{QueueID: q.cfg.ID}, QueueName: q.cfg.Name, Reason: event.QueueShutdown, Waiting: waiting[q.cfg.ID]})
		}
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
	a.scheduleStatsTick()
	a.publishStats()
}

// endOrphan ends a call the previous owner left in progress and forgets
// it; waiting counts the callers taken out of each queue. Orphans come in
// creation order, so each waiting caller is at the head of its queue
// when it leaves.
func (a *account) endOrphan(o orphan, waiting map[string]int) {
	a.push(item{key: sessionKey(a.id, o.slot), del: true})
	if !event.ValidEntityID(o.SessionID) {
		return // unreadable: nothing to announce
	}
	created := time.UnixMilli(o.CreatedMS)
	if o.CreatedMS <= 0 || created.After(a.now) {
		created = a.now
	}
	env := event.Envelope{SessionID: o.SessionID}
	if !o.External && event.ValidEntityID(o.QueueID) {
		env.QueueID = o.QueueID
	}
	if !o.Answered && a.queues[o.QueueID] != nil {
		joined := time.UnixMilli(o.JoinedMS)
		if o.JoinedMS <= 0 || joined.After(a.now) {
			joined = created
		}
		waiting[o.QueueID]++
		a.emit(&event.QueueLeave{Envelope: env, Reason: event.LeaveQueueDeleted, Position: 1, WaitDurationMS: ms(a.now.Sub(joined))})
	}
	if o.Answered && event.ValidEntityID(o.RecipientID) {
		env.RecipientID = o.RecipientID
	}
	a.emit(&event.SessionDelete{
		Envelope:            env,
		DisconnectCauseCode: event.CauseSystemShutdown.Code(), DisconnectCause: event.CauseSystemShutdown,
		HangupBy: event.PartySystem, DurationMS: ms(a.now.Sub(created)),
	})
}
