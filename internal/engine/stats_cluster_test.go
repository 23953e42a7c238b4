package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/testkit"
)

// Statistics go on where they were when the engine node running an account
// dies (its successor starts from what the dead node stored with its last
// stats event) and when a node gives its accounts back on shutdown.
func TestStatisticsSurviveANodeDyingAndANodeStopping(t *testing.T) {
	skipShort(t)
	c := natstest.Start(t, 3)
	lb := newLogBook(t)
	pa, pb, pc, pAPI := connect(t, c, 0, "engine-a"), connect(t, c, 1, "engine-b"), connect(t, c, 2, "engine-c"), connect(t, c, 2, "api")
	cfg := engine.Config{SyncInterval: -1, StatsInterval: 100 * time.Millisecond}
	a := startNodeWith(t, pa, lb, cfg)
	api := router(t, pAPI, lb)
	ctx := t.Context()

	accounts := []string{accountID(30), accountID(31)}
	zero := 0
	for _, acc := range accounts {
		must[engine.Queue](t)(engine.CreateQueue.Call(ctx, api, acc, engine.QueueConfig{ID: "sales", Name: "Sales", ShortAbandonS: &zero}))
		must[engine.Recipient](t)(engine.CreateRecipient.Call(ctx, api, acc, engine.RecipientConfig{ID: "alice", Queues: []string{"sales"}}))
		must[engine.Recipient](t)(engine.SetStatus.Call(ctx, api, acc, engine.SetStatusRequest{RecipientID: "alice", StatusRequest: engine.StatusRequest{Action: engine.ActionLogin}}))
		must[engine.Call](t)(engine.Arrive.Call(ctx, api, acc, engine.Arrival{SessionID: "answered", QueueID: "sales"}))
		must[engine.CallStatus](t)(engine.Accept.Call(ctx, api, acc, engine.AcceptRequest{SessionID: "answered", RecipientID: "alice"}))
		must[engine.None](t)(engine.Hangup.Call(ctx, api, acc, engine.HangupRequest{SessionID: "answered", HangupBy: event.PartyCaller}))
		must[engine.Recipient](t)(engine.SetStatus.Call(ctx, api, acc, engine.SetStatusRequest{RecipientID: "alice", StatusRequest: engine.StatusRequest{Action: engine.ActionAway}}))
		must[engine.Call](t)(engine.Arrive.Call(ctx, api, acc, engine.Arrival{SessionID: "gave-up", QueueID: "sales"}))
		must[engine.None](t)(engine.Hangup.Call(ctx, api, acc, engine.HangupRequest{SessionID: "gave-up", HangupBy: event.PartyCaller}))
	}
	// today renders what a queue counted today, as reported and as its
	// last stats event on the stream says.
	today := func(w event.StatsWindow) string {
		return fmt.Sprintf("offered=%d answered=%d abandoned=%d handled=%d", w.Offered, w.Answered, w.Abandoned, w.Handled)
	}
	const want = "offered=2 answered=1 abandoned=1 handled=1"
	lastPublished := func(acc string) string {
		var last event.StatsQueue
		for _, p := range streamEvents(t, pAPI.bus, acc, 0) {
			if p.Event == "stats.queue" {
				ok(t, json.Unmarshal(p.Data, &last))
			}
		}
		return today(last.Today)
	}
	check := func(when string) {
		t.Helper()
		for _, acc := range accounts {
			testkit.EventuallyNoError(t, 30*time.Second, when+": account "+acc+" to publish "+want, func() error {
				if got := lastPublished(acc); got != want {
					return fmt.Errorf("last published %s", got)
				}
				return nil
			})
			r := must[engine.StatsReport](t)(engine.GetStats.Call(ctx, api, acc, engine.None{}))
			if len(r.Queues) != 1 || today(r.Queues[0].Today) != want || r.Queues[0].Today.AbandonRatePct == nil || *r.Queues[0].Today.AbandonRatePct != 50 {
				t.Errorf("%s: account %s reports %+v, want %s and a 50 %% abandon rate", when, acc, r.Queues, want)
			}
			if today(r.Account.Today) != want {
				t.Errorf("%s: account %s account-wide today %s, want %s", when, acc, today(r.Account.Today), want)
			}
		}
	}
	check("before any node stops")

	b := startNodeWith(t, pb, lb, cfg)
	testkit.EventuallyNoError(t, 30*time.Second, "the accounts to split one and one", func() error {
		if ownedA, ownedB := a.Owned(), b.Owned(); len(ownedA) != 1 || len(ownedB) != 1 {
			return fmt.Errorf("a runs %v, b %v", ownedA, ownedB)
		}
		return nil
	})
	check("after node b took one account over from a")

	victim := a.Owned()[0]
	killed := lastSeq(t, pAPI.bus)
	pa.kill()
	waitOwned(t, "node b to run every account after node a died", b, accounts)
	check("after node a died")
	var after []string
	for _, p := range streamEvents(t, pAPI.bus, victim, killed) {
		if strings.HasPrefix(p.Event, "stats.") {
			after = append(after, p.Event)
		}
	}
	if len(after) < 2 {
		t.Errorf("node b published %v for the account it took over, want its stats.queue and stats.account", after)
	}

	cNode := startNodeWith(t, pc, lb, cfg)
	closeCtx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	ok(t, b.Close(closeCtx))
	waitOwned(t, "node c to run every account after node b stopped", cNode, accounts)
	check("after node b gave its accounts to c")
}
