package engine_test

import (
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/engine/cluster"
	"github.com/ccevents/ccevents/internal/promutil"
)

func TestRouterCountsCommandsAndTheirErrorsByKind(t *testing.T) {
	b, _ := standaloneNode(t, nil)
	ctx := t.Context()
	reg := prometheus.NewRegistry()
	r, err := cluster.NewRouter(cluster.RouterConfig{Conn: b.Conn(), Wait: time.Second, Registerer: reg})
	ok(t, err)

	must[engine.Queue](t)(engine.CreateQueue.Call(ctx, r, acc, engine.QueueConfig{ID: "sales", Name: "Sales"}))
	_, _ = engine.CreateQueue.Call(ctx, r, acc, engine.QueueConfig{ID: "sales", Name: "Sales"}) // conflict
	_, _ = engine.GetQueue.Call(ctx, r, acc, engine.QueueRef{QueueID: "nope"})                  // not found
	_, _ = engine.ListQueues.Call(ctx, r, "*", engine.None{})                                   // invalid

	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"ccevents_engine_command_duration_seconds", []string{"command", "create_queue"}, 2},
		{"ccevents_engine_command_duration_seconds", []string{"command", "queue"}, 1},
		{"ccevents_engine_command_duration_seconds", []string{"command", "queues"}, 1},
		{"ccevents_engine_command_errors_total", []string{"command", "create_queue", "kind", "conflict"}, 1},
		{"ccevents_engine_command_errors_total", []string{"command", "queue", "kind", "not_found"}, 1},
		{"ccevents_engine_command_errors_total", []string{"command", "queues", "kind", "invalid"}, 1},
	} {
		if got, _, err := promutil.Sample(reg, tc.name, tc.labels...); err != nil || got != tc.want {
			t.Errorf("%s%v = %g (%v), want %g", tc.name, tc.labels, got, err, tc.want)
		}
	}
}
