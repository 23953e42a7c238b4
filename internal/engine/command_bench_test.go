package engine_test

import (
	"testing"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/engine/cluster"
)

// BenchmarkCommand runs commands the way the REST API does, through a
// Router: on the local engine, and forwarded over NATS to the node that
// runs the account (request, JSON both ways, reply). A read (queue) shows
// the cost of carrying a command; a change (set_status) adds its events.
func BenchmarkCommand(b *testing.B) {
	bs, n := standaloneNode(b, nil)
	ctx := b.Context()
	remote, err := cluster.NewRouter(cluster.RouterConfig{Conn: bs.Conn()})
	ok(b, err)
	must[engine.Queue](b)(engine.CreateQueue.Call(ctx, n.Router(), acc, engine.QueueConfig{ID: "sales", Name: "Sales"}))
	must[engine.Recipient](b)(engine.CreateRecipient.Call(ctx, n.Router(), acc, engine.RecipientConfig{ID: "alice", Queues: []string{"sales"}}))
	must[engine.Recipient](b)(engine.SetStatus.Call(ctx, n.Router(), acc, engine.SetStatusRequest{RecipientID: "alice", StatusRequest: engine.StatusRequest{Action: engine.ActionLogin}}))
	// alice goes away and ready in turn, across both runs.
	actions, i := []engine.Action{engine.ActionAway, engine.ActionReady}, 0
	for _, r := range []struct {
		name string
		svc  engine.Service
	}{{"local", n.Router()}, {"remote", remote}} {
		b.Run(r.name+"/queue", func(b *testing.B) {
			for b.Loop() {
				must[engine.Queue](b)(engine.GetQueue.Call(ctx, r.svc, acc, engine.QueueRef{QueueID: "sales"}))
			}
		})
		b.Run(r.name+"/set_status", func(b *testing.B) {
			for b.Loop() {
				must[engine.Recipient](b)(engine.SetStatus.Call(ctx, r.svc, acc, engine.SetStatusRequest{RecipientID: "alice", StatusRequest: engine.StatusRequest{Action: actions[i%2]}}))
				i++
			}
		})
	}
}
