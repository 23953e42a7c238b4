package client

import (
	"context"
	"errors"
	"fmt"
	"net/url"
	"strings"
)

// The snapshot's types (Snapshot, QueueState, RecipientState, …) are in
// snapshot_gen.go, generated from the engine's by internal/clientgen.

// Position returns where events continue after the snapshot.
func (s *Snapshot) Position() Position { return Position{Sequence: s.Sequence, Epoch: s.Epoch} }

// Snapshot loads the current state of an account from the REST API at
// Options.APIURL (GET /v2/accounts/{ACCOUNT_ID}/qubicle_state), with the
// client's token. Applying, on top of it, the events whose Sequence is
// greater than its Sequence gives the exact current state: load it when a
// subscription reports a Resync, or resume with Since(snap.Position())
// right after loading it.
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
