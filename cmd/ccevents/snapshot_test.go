package main

import (
	"encoding/json"
	"testing"
)

// subscribe with snapshot: true answers with the account's state and then
// sends exactly the events after the sequence that state is consistent
// with, so state + events is exact without a REST call.
func TestSubscribeWithSnapshotReturnsStateThenTheEventsAfterIt(t *testing.T) {
	d := startDemoServer(t)
	nc, token := d.dialWebsocket(t)
	type reply struct {
		Action string `json:"action"`
		Status string `json:"status"`
		Data   struct {
			Subscribed  []string `json:"subscribed"`
			Recovered   *bool    `json:"recovered"`
			ReplayUntil uint64   `json:"replay_until"`
			Errors      []string `json:"errors"`
			Snapshot    *struct {
				AccountID  string            `json:"account_id"`
				Sequence   uint64            `json:"sequence"`
				Queues     []json.RawMessage `json:"queues"`
				Recipients []json.RawMessage `json:"recipients"`
			} `json:"snapshot"`
		} `json:"data"`
		Sequence uint64 `json:"sequence"`
	}
	read := func() reply {
		t.Helper()
		p := nc.Must()
		var r reply
		if err := json.Unmarshal(p, &r); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
		return r
	}

	binding := "qubicle.*." + d.account + ".#"
	nc.Send(map[string]any{"action": "subscribe", "auth_token": token, "data": map[string]any{
		"account_id": d.account, "binding": binding, "snapshot": true,
	}})
	r := read()
	snap := r.Data.Snapshot
	if r.Status != "success" || snap == nil || r.Data.Recovered == nil || !*r.Data.Recovered {
		t.Fatalf("reply %+v, want success with a snapshot, recovered", r)
	}
	if snap.AccountID != d.account || len(snap.Queues) == 0 || len(snap.Recipients) == 0 {
		t.Fatalf("snapshot of %s with %d queues and %d recipients, want the demo account's", snap.AccountID, len(snap.Queues), len(snap.Recipients))
	}
	// Events continue right after the snapshot, in order.
	prev := snap.Sequence
	for range 5 {
		ev := read()
		if ev.Action != "event" || ev.Sequence <= prev {
			t.Fatalf("after sequence %d got %s event with sequence %d", prev, ev.Action, ev.Sequence)
		}
		prev = ev.Sequence
	}

	// since and snapshot together are refused with a reason.
	nc.Send(map[string]any{"action": "subscribe", "auth_token": token, "data": map[string]any{
		"account_id": d.account, "binding": "qubicle.queue." + d.account + ".*", "snapshot": true,
		"since": map[string]any{"sequence": 1},
	}})
	for {
		r = read()
		if r.Action == "reply" {
			break
		}
	}
	if r.Status != "error" || len(r.Data.Errors) != 1 || r.Data.Errors[0] != "give since or snapshot: true, not both: the snapshot says where its events continue" {
		t.Fatalf("since with snapshot answered %+v", r)
	}
}
