package engine

import (
	"context"

	"github.com/ccevents/ccevents/internal/bus"
)

// Snapshot is an account's state at one point of its event stream: the
// state after every event of the account up to and including Sequence,
// and before every later one. Applying the account's events after
// Sequence to it gives the current state exactly. It is the data of
// GET /v2/accounts/{ACCOUNT_ID}/qubicle_state.
type Snapshot struct {
	AccountID string `json:"account_id"`
	// Sequence is the stream sequence the snapshot is consistent with.
	Sequence uint64 `json:"sequence"`
	// Epoch names the stream history Sequence belongs to (when known).
	Epoch       string      `json:"epoch,omitempty"`
	Timestamp   string      `json:"timestamp"`
	TimestampMS int64       `json:"timestamp_ms"`
	Queues      []Queue     `json:"queues"`
	Recipients  []Recipient `json:"recipients"`
	// Stats are the account's statistics at the same point: the figures
	// the stats events after Sequence replace.
	Stats AccountStats `json:"stats"`
}

// boundsReader is what Snapshot needs from a publisher to place a snapshot
// of an account that has published nothing yet; *bus.Bus has it.
type boundsReader interface {
	Bounds(ctx context.Context) (bus.Bounds, error)
}

type epochReader interface {
	Epoch() string
}

// Snapshot returns the account's queues (with waiting callers in position
// order), recipients and statistics, and the stream sequence they are
// consistent with.
func (e *Engine) Snapshot(ctx context.Context, accountID string) (Snapshot, error) {
	var snap Snapshot
	seq, epoch, err := e.consistentRead(ctx, accountID, func(a *account) {
		snap = Snapshot{
			AccountID:   accountID,
			Timestamp:   stamp(a.now),
			TimestampMS: a.now.UnixMilli(),
			Queues:      make([]Queue, 0, len(a.queues)),
			Recipients:  make([]Recipient, 0, len(a.recipients)),
			Stats:       a.statsView(false),
		}
		for _, q := range a.sortedQueues() {
			snap.Queues = append(snap.Queues, a.queueView(q, true))
		}
		for _, r := range a.sortedRecipients() {
			snap.Recipients = append(snap.Recipients, a.recipientView(r))
		}
	})
	snap.Sequence, snap.Epoch = seq, epoch
	return snap, err
}

// consistentRead runs read on the account under its lock and returns the
// stream sequence (and epoch) what read saw is consistent with: the last
// event the account produced before it, once stored, or, if the account
// has published nothing since it was loaded, the stream's end beforehand.
func (e *Engine) consistentRead(ctx context.Context, accountID string, read func(a *account)) (uint64, string, error) {
	a, err := e.account(ctx, accountID, false)
	if err != nil {
		return 0, "", err
	}
	// Read the stream's end before taking the state: if this account has
	// published nothing since it was loaded, every event it publishes
	// later is stored after this point.
	var base uint64
	if br, ok := e.cfg.Publisher.(boundsReader); ok {
		b, err := br.Bounds(ctx)
		if err != nil {
			e.log.Warn("read stream bounds", "account", accountID, "err", err)
			return 0, "", errorf(KindUnavailable, "the event stream cannot be read right now; try again")
		}
		base = b.Last
	}
	a.mu.Lock()
	if a.closed {
		a.mu.Unlock()
		return 0, "", movedf("account %s is shutting down on this engine", accountID)
	}
	a.begin()
	read(a)
	seq, err := a.markAndUnlock(ctx)
	if err != nil {
		return 0, "", err
	}
	if seq == 0 {
		seq = base
	}
	var epoch string
	if er, ok := e.cfg.Publisher.(epochReader); ok {
		epoch = er.Epoch()
	}
	return seq, epoch, nil
}
