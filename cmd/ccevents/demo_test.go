package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/ccevents/ccevents/internal/wstest"
)

// The demo gives its agents SIP credentials while no phone registers. It
// once rejected every offer to them as unreachable and the engine offered
// the caller again at once: 280,000 events in its first minute. Now the
// simulator answers for agents without a registered phone, and the stream
// of the first few calls holds a few hundred events at most.
func TestDemoStreamStaysCalmWhileNoPhoneIsRegistered(t *testing.T) {
	ws1, api := testkit.FreeAddr(t), testkit.FreeAddr(t)
	d := &demoServer{dataDir: t.TempDir(), wsURL: "ws://" + ws1, apiURL: "http://" + api}
	d.args = []string{"serve", "--demo", "--demo-rate", "60", "--data-dir", d.dataDir, "--ws-addr", ws1,
		"--api-addr", api, "--sip-addr", "127.0.0.1:0", "--nats-listen", "", "--log-level", "error"}
	d.start(t)
	t.Cleanup(d.stop)
	var demo demoInfo
	raw, err := os.ReadFile(filepath.Join(d.dataDir, "demo.json"))
	if err != nil || json.Unmarshal(raw, &demo) != nil {
		t.Fatalf("demo.json: %s, %v", raw, err)
	}
	if demo.SIP == nil || len(demo.SIP.Recipients) == 0 {
		t.Fatalf("demo.json gives no SIP credentials, so this test shows nothing: %+v", demo)
	}

	conn := wstest.Dial(t, d.wsURL)
	conn.ReadWait = 30 * time.Second // the simulator's first calls, on a busy machine
	// Everything the account stored from the start, then live.
	sub := fmt.Sprintf(`{"action":"subscribe","auth_token":%q,"request_id":"s","data":{"account_id":%q,"binding":"qubicle.*.%s.#","since":0}}`,
		demo.AuthToken, demo.AccountID, demo.AccountID)
	conn.Send(sub)

	// Read until the simulator's first calls (a call a second) have rung
	// five different callers, which takes a few seconds.
	var events int
	offered := map[string]bool{}
	rejects := map[string]int{}
	for len(offered) < 5 {
		msg, err := conn.Next()
		if err != nil {
			t.Fatalf("after %d events, %d callers offered: %v", events, len(offered), err)
		}
		var f struct {
			Action string `json:"action"`
			Status string `json:"status"`
			Data   struct {
				Event       string `json:"event"`
				SessionID   string `json:"session_id"`
				RecipientID string `json:"recipient_id"`
				Reason      string `json:"reason"`
			} `json:"data"`
		}
		if err := json.Unmarshal(msg, &f); err != nil {
			t.Fatalf("undecodable frame %s: %v", msg, err)
		}
		if f.Status == "error" {
			t.Fatalf("subscribe: %s", msg)
		}
		if f.Action != "event" {
			continue
		}
		events++
		switch f.Data.Event {
		case "recipient.offer":
			offered[f.Data.SessionID] = true
		case "recipient.reject":
			rejects[f.Data.RecipientID]++
			if f.Data.Reason == "unreachable" {
				t.Fatalf("an offer to %s was rejected as unreachable: the simulator answers for agents without a registered phone", f.Data.RecipientID)
			}
		}
		if events > 1000 {
			t.Fatalf("%d events before %d callers were offered; rejects by recipient: %v", events, len(offered), rejects)
		}
	}
	t.Logf("%d events while the demo offered its first %d callers; rejects by recipient %v", events, len(offered), rejects)
	for r, n := range rejects {
		if n > 3 {
			t.Errorf("%s rejected %d offers among the first five callers", r, n)
		}
	}
}
