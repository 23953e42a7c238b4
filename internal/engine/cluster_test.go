package engine_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/testkit"
)

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("starts a 3-node NATS cluster")
	}
}

// An owner deposed without noticing (its process paused past its lease)
// must never overwrite what the new owner stored, and must stop acting on
// the account the moment it finds out.
func TestDeposedOwnerCannotOverwriteTheNewOwnersState(t *testing.T) {
	skipShort(t)
	c := natstest.Start(t, 3)
	lb := newLogBook(t)
	pOld, pNew := connect(t, c, 0, "old"), connect(t, c, 1, "new")
	old, cur := manualEngine(t, pOld, lb), manualEngine(t, pNew, lb)
	ctx := t.Context()
	account := accountID(1)

	ok(t, old.Own(ctx, account))
	must[engine.Queue](t)(old.CreateQueue(ctx, account, engine.QueueConfig{ID: "sales", Name: "Sales"}))
	must[engine.Recipient](t)(old.CreateRecipient(ctx, account, engine.RecipientConfig{ID: "alice", Queues: []string{"sales"}}))
	must[engine.Recipient](t)(old.SetStatus(ctx, account, "alice", engine.StatusRequest{Action: engine.ActionLogin}))

	// The new owner loads the account while the old one still believes it
	// owns it, and changes it.
	ok(t, cur.Own(ctx, account))
	must[engine.Queue](t)(cur.UpdateQueue(ctx, account, "sales", engine.QueueConfig{Name: "Sales EMEA"}))

	_, err := old.UpdateQueue(ctx, account, "sales", engine.QueueConfig{Name: "stale"})
	wantKind(t, err, engine.ErrUnavailable, "moved to another engine node")

	entry, err := pNew.kv.Get(ctx, "acct."+account+".q.sales")
	ok(t, err)
	var stored engine.QueueConfig
	ok(t, json.Unmarshal(entry.Value(), &stored))
	if stored.Name != "Sales EMEA" {
		t.Errorf("stored queue name %q, want the new owner's %q", stored.Name, "Sales EMEA")
	}
	if n := lb.count(slog.LevelError, "another engine node has written this account"); n != 1 {
		t.Errorf("the deposed owner logged the fence %d times, want once", n)
	}

	// Found out, the old owner no longer runs the account.
	if got := old.Accounts(); len(got) != 0 {
		t.Errorf("deposed owner still runs %v", got)
	}
	before := lastSeq(t, pNew.bus)
	_, err = old.SetStatus(ctx, account, "alice", engine.StatusRequest{Action: engine.ActionAway})
	wantKind(t, err, engine.ErrUnavailable, "not served by this engine node")
	var ee *engine.Error
	if !errors.As(err, &ee) || !ee.Moved {
		t.Errorf("refusal %v is not marked Moved, so a router would not send it to the owner", err)
	}
	if evs := streamEvents(t, pNew.bus, account, before); len(evs) != 0 {
		t.Errorf("deposed owner published %v", names(evs))
	}

	// The new owner carries on with what it stored.
	q := must[engine.Queue](t)(cur.Queue(ctx, account, "sales"))
	r := must[engine.Recipient](t)(cur.Recipient(ctx, account, "alice"))
	if q.Name != "Sales EMEA" || r.State != "ready" {
		t.Errorf("new owner has queue %q and alice %s, want Sales EMEA and ready", q.Name, r.State)
	}
}

// When ownership is lost the account stops at once and says nothing; the
// next owner ends what the dead one left running, restarts the queues and
// syncs every logged-in recipient.
func TestTakeoverAfterLostOwnershipEndsWhatWasLeftAndSyncsRecipients(t *testing.T) {
	skipShort(t)
	c := natstest.Start(t, 3)
	lb := newLogBook(t)
	pOld, pNew := connect(t, c, 0, "old"), connect(t, c, 2, "new")
	old, cur := manualEngine(t, pOld, lb), manualEngine(t, pNew, lb)
	ctx := t.Context()
	account := accountID(2)

	owned, lose := context.WithCancel(ctx)
	defer lose()
	ok(t, old.Own(owned, account))
	must[engine.Queue](t)(old.CreateQueue(ctx, account, engine.QueueConfig{ID: "sales", Name: "Sales"}))
	must[engine.Queue](t)(old.CreateQueue(ctx, account, engine.QueueConfig{ID: "support", Name: "Support"}))
	for _, r := range []engine.RecipientConfig{{ID: "alice", Queues: []string{"sales"}}, {ID: "bob", Queues: []string{"support"}}, {ID: "carol", Queues: []string{"sales"}}} {
		must[engine.Recipient](t)(old.CreateRecipient(ctx, account, r))
	}
	for _, id := range []string{"alice", "bob"} {
		must[engine.Recipient](t)(old.SetStatus(ctx, account, id, engine.StatusRequest{Action: engine.ActionLogin}))
	}
	must[engine.Recipient](t)(old.SetStatus(ctx, account, "bob", engine.StatusRequest{Action: engine.ActionAway}))
	must[engine.Call](t)(old.Arrive(ctx, account, engine.Arrival{SessionID: "talking", QueueID: "sales"}))
	ok(t, old.Accept(ctx, account, "talking", "alice"))
	must[engine.Call](t)(old.Arrive(ctx, account, engine.Arrival{SessionID: "waiting", QueueID: "support"}))

	lost := lastSeq(t, pNew.bus)
	lose()
	old.Drop(account)
	if evs := streamEvents(t, pNew.bus, account, lost); len(evs) != 0 {
		t.Fatalf("the owner published after losing the account: %v", names(evs))
	}
	_, err := old.Queues(ctx, account)
	wantKind(t, err, engine.ErrUnavailable, "not served by this engine node")

	ok(t, cur.Own(ctx, account))
	got := names(streamEvents(t, pNew.bus, account, lost), "queue_id", "session_id", "recipient_id", "reason", "waiting", "state")
	want := []string{
		"session.delete[queue_id=sales session_id=talking recipient_id=alice]",
		"queue.leave[queue_id=support session_id=waiting reason=queue_deleted]",
		"session.delete[queue_id=support session_id=waiting]",
		"queue.delete[queue_id=sales reason=shutdown waiting=0]",
		"queue.create[queue_id=sales]",
		"queue.delete[queue_id=support reason=shutdown waiting=1]",
		"queue.create[queue_id=support]",
		"recipient.sync[recipient_id=alice state=ready]",
		"recipient.sync[recipient_id=bob state=away]",
	}
	if !slices.Equal(got, want) {
		t.Errorf("takeover published\n%v\nwant\n%v", got, want)
	}
	for _, p := range streamEvents(t, pNew.bus, account, lost) {
		if p.Event == "session.delete" && (p.Fields["disconnect_cause"] != "SYSTEM_SHUTDOWN" || p.Fields["hangup_by"] != "system") {
			t.Errorf("session.delete after a takeover says %v by %v, want SYSTEM_SHUTDOWN by system", p.Fields["disconnect_cause"], p.Fields["hangup_by"])
		}
	}

	snap := must[engine.Snapshot](t)(cur.Snapshot(ctx, account))
	states := map[string]string{}
	for _, r := range snap.Recipients {
		states[r.ID] = string(r.State)
	}
	if len(snap.Queues) != 2 || states["alice"] != "ready" || states["bob"] != "away" || states["carol"] != "logged_out" {
		t.Errorf("after takeover: %d queues, recipients %v", len(snap.Queues), states)
	}
	// The ended calls are forgotten: a second takeover ends nothing more.
	keys, err := pNew.kv.ListKeysFiltered(ctx, "acct."+account+".s.>")
	ok(t, err)
	for k := range keys.Keys() {
		t.Errorf("call record %s left in the bucket", k)
	}
}

// Engine nodes split the accounts between them, each account run by
// exactly one, and any process's router reaches every account. When a node
// dies the others take its accounts over with their queues and logged-in
// recipients, and sync every recipient.
func TestEngineNodesSplitAccountsAndTakeOverADeadNodesAccounts(t *testing.T) {
	skipShort(t)
	c := natstest.Start(t, 3)
	lb := newLogBook(t)
	pa, pb, pAPI := connect(t, c, 0, "engine-a"), connect(t, c, 1, "engine-b"), connect(t, c, 2, "api")
	a := startNode(t, pa, lb)
	api := router(t, pAPI, lb)
	ctx := t.Context()

	accounts := []string{accountID(10), accountID(11), accountID(12), accountID(13)}
	for _, acc := range accounts {
		// The first command of a new account waits for a node to claim it.
		must[engine.Queue](t)(engine.CreateQueue.Call(ctx, api, acc, engine.QueueConfig{ID: "sales", Name: "Sales"}))
		for _, id := range []string{"alice", "bob", "carol"} {
			must[engine.Recipient](t)(engine.CreateRecipient.Call(ctx, api, acc, engine.RecipientConfig{ID: id, Name: "Agent " + id, Queues: []string{"sales"}}))
		}
		for _, id := range []string{"alice", "bob"} {
			must[engine.Recipient](t)(engine.SetStatus.Call(ctx, api, acc, engine.SetStatusRequest{RecipientID: id, StatusRequest: engine.StatusRequest{Action: engine.ActionLogin}}))
		}
		must[engine.Recipient](t)(engine.SetStatus.Call(ctx, api, acc, engine.SetStatusRequest{RecipientID: "bob", StatusRequest: engine.StatusRequest{Action: engine.ActionAway}}))
	}
	if got := a.Owned(); !slices.Equal(got, accounts) {
		t.Fatalf("the only node runs %v, want %v", got, accounts)
	}

	b := startNode(t, pb, lb)
	testkit.EventuallyNoError(t, 30*time.Second, "the accounts to split two and two", func() error {
		ownedA, ownedB := a.Owned(), b.Owned()
		for _, acc := range ownedA {
			if slices.Contains(ownedB, acc) {
				t.Fatalf("account %s runs on both nodes (a %v, b %v)", acc, ownedA, ownedB)
			}
		}
		if len(ownedA) != 2 || len(ownedB) != 2 {
			return fmt.Errorf("a runs %v, b %v", ownedA, ownedB)
		}
		return nil
	})

	// Every process reaches every account, wherever it runs.
	for _, acc := range accounts {
		for name, svc := range map[string]engine.Service{"api": api, "a": a.Router(), "b": b.Router()} {
			rs := must[[]engine.Recipient](t)(engine.ListRecipients.Call(ctx, svc, acc, engine.None{}))
			if len(rs) != 3 || rs[0].State != "ready" || rs[1].State != "away" || rs[2].State != "logged_out" {
				t.Errorf("%s: recipients of %s: %+v", name, acc, rs)
			}
		}
		_, err := engine.GetQueue.Call(ctx, api, acc, engine.QueueRef{QueueID: "nope"})
		wantKind(t, err, engine.ErrNotFound, "queue nope does not exist")
	}

	victims := a.Owned()
	killed := lastSeq(t, pAPI.bus)
	pa.kill()
	waitOwned(t, "node b to run every account after node a died", b, accounts)

	for _, acc := range accounts {
		snap := must[engine.Snapshot](t)(engine.GetSnapshot.Call(ctx, api, acc, engine.None{}))
		states := map[string]string{}
		for _, r := range snap.Recipients {
			states[r.ID] = string(r.State)
		}
		if len(snap.Queues) != 1 || snap.Queues[0].Name != "Sales" || len(snap.Queues[0].Members) != 3 ||
			states["alice"] != "ready" || states["bob"] != "away" || states["carol"] != "logged_out" {
			t.Errorf("account %s after the takeover: queues %+v, recipients %v", acc, snap.Queues, states)
		}
		evs := names(streamEvents(t, pAPI.bus, acc, killed), "queue_id", "recipient_id", "reason", "state")
		var want []string
		if slices.Contains(victims, acc) {
			want = []string{
				"queue.delete[queue_id=sales reason=shutdown]", "queue.create[queue_id=sales]",
				"recipient.sync[recipient_id=alice state=ready]", "recipient.sync[recipient_id=bob state=away]",
			}
		}
		if !slices.Equal(evs, want) {
			t.Errorf("account %s after node a died: %v, want %v", acc, evs, want)
		}
	}
}
