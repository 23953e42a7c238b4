package engine_test

import (
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/engine/cluster"
)

// On the embedded server the node is the only engine: it runs an account
// the moment a command names it, and routers of other processes reach it.
func TestStandaloneNodeRunsEveryAccountAtOnceAndAnswersOtherProcesses(t *testing.T) {
	b, n := standaloneNode(t, newLogBook(t))
	ctx := t.Context()

	// No lease, no waiting: the node's own router runs it locally.
	must[engine.Queue](t)(engine.CreateQueue.Call(ctx, n.Router(), acc, engine.QueueConfig{ID: "sales", Name: "Sales"}))
	if got := n.Owned(); !slices.Equal(got, []string{acc}) {
		t.Errorf("standalone node runs %v, want [%s]", got, acc)
	}

	// Another process on the same server has only a router.
	other, err := cluster.NewRouter(cluster.RouterConfig{Conn: b.Conn(), Wait: time.Second})
	ok(t, err)
	second := "fedcba9876543210fedcba9876543210"
	must[engine.Queue](t)(engine.CreateQueue.Call(ctx, other, second, engine.QueueConfig{ID: "support", Name: "Support"}))
	qs := must[[]engine.Queue](t)(engine.ListQueues.Call(ctx, other, second, engine.None{}))
	if len(qs) != 1 || qs[0].ID != "support" {
		t.Errorf("queues through another process's router: %+v", qs)
	}
	for _, tc := range []struct {
		name     string
		err      error
		kind     error
		contains string
	}{
		{"unknown queue", errOf(engine.GetQueue.Call(ctx, other, acc, engine.QueueRef{QueueID: "nope"})), engine.ErrNotFound, "queue nope does not exist"},
		{"duplicate queue", errOf(engine.CreateQueue.Call(ctx, other, acc, engine.QueueConfig{ID: "sales", Name: "Sales"})), engine.ErrConflict, "queue sales already exists"},
		{"bad account", errOf(engine.ListQueues.Call(ctx, other, "*", engine.None{})), engine.ErrInvalid, "32 lowercase hex"},
		{"bad hangup", errOf(engine.Hangup.Call(ctx, other, acc, engine.HangupRequest{SessionID: "c1", HangupBy: "nobody"})), engine.ErrInvalid, "hangup_by must be"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var ee *engine.Error
			if !errors.As(tc.err, &ee) {
				t.Fatalf("got %T %v, want an *engine.Error", tc.err, tc.err)
			}
			wantKind(t, tc.err, tc.kind, tc.contains)
		})
	}
}
