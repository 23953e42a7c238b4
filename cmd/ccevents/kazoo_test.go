package main

import (
	"encoding/json"
	"strings"
	"testing"
)

// A short Qubicle binding (qubicle.queue, the account in data.account_id)
// takes snapshot: true like the binding it stands for: the engine's state
// in the reply, then exactly the events after it, each carrying the short
// binding as written.
func TestShortBindingTakesASnapshot(t *testing.T) {
	d := startDemoServer(t)
	nc, token := d.dialWebsocket(t)
	nc.Send(map[string]any{"action": "subscribe", "auth_token": token, "data": map[string]any{
		"account_id": d.account, "binding": "qubicle.queue", "snapshot": true,
	}})
	var frame struct {
		Action        string `json:"action"`
		Status        string `json:"status"`
		SubscribedKey string `json:"subscribed_key"`
		RoutingKey    string `json:"routing_key"`
		Sequence      uint64 `json:"sequence"`
		Data          struct {
			Subscribed []string `json:"subscribed"`
			Recovered  *bool    `json:"recovered"`
			Snapshot   *struct {
				Sequence uint64            `json:"sequence"`
				Queues   []json.RawMessage `json:"queues"`
			} `json:"snapshot"`
		} `json:"data"`
	}
	read := func() {
		t.Helper()
		p := nc.Must()
		frame.Data.Snapshot = nil
		if err := json.Unmarshal(p, &frame); err != nil {
			t.Fatalf("%s: %v", p, err)
		}
	}
	read()
	snap := frame.Data.Snapshot
	if frame.Status != "success" || snap == nil || len(snap.Queues) == 0 || frame.Data.Recovered == nil || !*frame.Data.Recovered ||
		len(frame.Data.Subscribed) != 1 || frame.Data.Subscribed[0] != "qubicle.queue" {
		t.Fatalf("reply %+v, want success with the demo account's queues, recovered, subscribed [qubicle.queue]", frame)
	}
	prev := snap.Sequence
	for range 3 {
		read()
		if frame.Action != "event" || frame.SubscribedKey != "qubicle.queue" || frame.Sequence <= prev ||
			!strings.HasPrefix(frame.RoutingKey, "qubicle.queue."+d.account+".") {
			t.Fatalf("after sequence %d got %+v", prev, frame)
		}
		prev = frame.Sequence
	}
}
