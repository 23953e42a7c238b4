package main

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/ccevents/ccevents/client"
)

// A short Qubicle binding (qubicle.queue, the account in data.account_id)
// takes snapshot: true like the binding it stands for: the engine's state
// in the reply, then exactly the events after it, each carrying the short
// binding as written.
func TestShortBindingTakesASnapshot(t *testing.T) {
	d := startDemoServer(t)
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tok, err := client.Login(ctx, d.apiURL, d.apiKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	nc, _, _, err := ws.Dial(ctx, d.wsURL)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(30 * time.Second))
	msg, _ := json.Marshal(map[string]any{"action": "subscribe", "auth_token": tok.Value, "data": map[string]any{
		"account_id": d.account, "binding": "qubicle.queue", "snapshot": true,
	}})
	if err := wsutil.WriteClientText(nc, msg); err != nil {
		t.Fatal(err)
	}
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
		p, err := wsutil.ReadServerText(nc)
		if err != nil {
			t.Fatal(err)
		}
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
