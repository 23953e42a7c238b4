package client

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// Snapshot is an account's state at one stream position, from
// GET /v2/accounts/{ACCOUNT_ID}/qubicle_state. Applying, on top of it, the
// events whose Sequence is greater than its Sequence gives the exact
// current state: use it when a subscription reports a Resync, or resume
// with Since(snap.Position()) right after loading it.
type Snapshot struct {
	AccountID string `json:"account_id"`
	// Sequence is the stream position the snapshot is consistent with.
	Sequence uint64 `json:"sequence"`
	// Epoch names the stream history Sequence belongs to.
	Epoch       string           `json:"epoch"`
	Timestamp   string           `json:"timestamp"`
	TimestampMS int64            `json:"timestamp_ms"`
	Queues      []QueueState     `json:"queues"`
	Recipients  []RecipientState `json:"recipients"`
	// Stats are the account's statistics at the same position; the
	// StatsAccount and StatsQueue events after Sequence replace them.
	Stats SnapshotStats `json:"stats"`
}

// SnapshotStats are the statistics of a Snapshot.
type SnapshotStats struct {
	Account Figures      `json:"account"`
	Queues  []QueueStats `json:"queues"`
}

// QueueStats are one queue's statistics in a Snapshot.
type QueueStats struct {
	QueueID string `json:"queue_id"`
	QueueFigures
}

// Position returns where events continue after the snapshot.
func (s *Snapshot) Position() Position { return Position{Sequence: s.Sequence, Epoch: s.Epoch} }

// QueueState is one queue of a Snapshot: its settings and who waits in it.
type QueueState struct {
	ID       string   `json:"id"`
	Name     string   `json:"name"`
	Strategy Strategy `json:"strategy"`
	// Members are the recipients configured to serve the queue.
	Members []string `json:"members"`
	// Waiting is how many callers are in the queue, ringing or not.
	Waiting int `json:"waiting"`
	// LongestWaitMS is how long the caller at the head has waited.
	LongestWaitMS int64 `json:"longest_wait_ms"`
	// Day is the UTC date ("2026-11-25") DeliveredToday and AbandonedToday
	// are for: "today" is the UTC day, and both start again from 0 at
	// 00:00 UTC. To keep them current, add the events after the snapshot's
	// Sequence whose timestamp falls on the same UTC day, and start from 0
	// on the first event of a later day.
	Day string `json:"day"`
	// DeliveredToday counts the queue's queue.delivered events of Day.
	DeliveredToday int `json:"delivered_today"`
	// AbandonedToday counts the queue's queue.leave events of Day with
	// reason abandoned.
	AbandonedToday int `json:"abandoned_today"`
	// Callers are the waiting callers in position order.
	Callers []WaitingCaller `json:"callers"`
}

// WaitingCaller is one caller waiting in a queue.
type WaitingCaller struct {
	SessionID      string `json:"session_id"`
	CallerIDName   string `json:"caller_id_name,omitempty"`
	CallerIDNumber string `json:"caller_id_number"`
	Position       int    `json:"position"`
	// JoinedAt is when the caller joined (RFC 3339, UTC, milliseconds).
	JoinedAt       string `json:"joined_at"`
	WaitMS         int64  `json:"wait_ms"`
	EstimatedWaitS int    `json:"estimated_wait_s"`
}

// RecipientState is one recipient of a Snapshot.
type RecipientState struct {
	ID     string   `json:"id"`
	Name   string   `json:"name"`
	Queues []string `json:"queues"`
	State  State    `json:"state"`
	// Since is when State began (RFC 3339, UTC, milliseconds).
	Since        string   `json:"since"`
	SinceMS      int64    `json:"since_ms"`
	PausedQueues []string `json:"paused_queues"`
	// ActiveSession is the call the recipient is on, if any.
	ActiveSession *ActiveSession `json:"active_session"`
}

// Snapshot loads the current state of an account from the REST API at
// Options.APIURL, with the client's token.
func (c *Client) Snapshot(ctx context.Context, accountID string) (*Snapshot, error) {
	if c.opts.APIURL == "" {
		return nil, errors.New("snapshot: Options.APIURL is required, e.g. http://127.0.0.1:8000")
	}
	u := strings.TrimRight(c.opts.APIURL, "/") + "/v2/accounts/" + url.PathEscape(accountID) + "/qubicle_state"
	var out struct {
		Data Snapshot `json:"data"`
	}
	if err := restCall(ctx, c.opts.HTTPClient, "GET", u, c.tokens.current().Value, nil, &out); err != nil {
		return nil, fmt.Errorf("snapshot of account %s: %w", accountID, err)
	}
	return &out.Data, nil
}
