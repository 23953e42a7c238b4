package engine_test

import (
	"context"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/engine"
)

func TestRouterCountsCommandsAndTheirErrorsByKind(t *testing.T) {
	b := openBus(t, t.TempDir(), true)
	t.Cleanup(b.Close)
	ctx := context.Background()
	kv, err := b.KeyValue(ctx, engine.Bucket)
	ok(t, err)
	n, err := engine.StartNode(ctx, engine.NodeConfig{
		Engine: engine.Config{Publisher: b, KV: kv, SyncInterval: -1},
		Conn:   b.Conn(),
	})
	ok(t, err)
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	reg := prometheus.NewRegistry()
	r, err := engine.NewRouter(engine.RouterConfig{Conn: b.Conn(), Wait: time.Second, Registerer: reg})
	ok(t, err)

	must[engine.Queue](t)(r.CreateQueue(ctx, acc, engine.QueueConfig{ID: "sales", Name: "Sales"}))
	_, _ = r.CreateQueue(ctx, acc, engine.QueueConfig{ID: "sales", Name: "Sales"}) // conflict
	_, _ = r.Queue(ctx, acc, "nope")                                               // not found
	_, _ = r.Queues(ctx, "*")                                                      // invalid

	mfs, err := reg.Gather()
	ok(t, err)
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range m.GetLabel() {
				key += " " + l.GetName() + "=" + l.GetValue()
			}
			got[key] = m.GetCounter().GetValue() + float64(m.GetHistogram().GetSampleCount())
		}
	}
	for key, want := range map[string]float64{
		"ccevents_engine_command_duration_seconds command=create_queue":           2,
		"ccevents_engine_command_duration_seconds command=queue":                  1,
		"ccevents_engine_command_duration_seconds command=queues":                 1,
		"ccevents_engine_command_errors_total command=create_queue kind=conflict": 1,
		"ccevents_engine_command_errors_total command=queue kind=not_found":       1,
		"ccevents_engine_command_errors_total command=queues kind=invalid":        1,
	} {
		if got[key] != want {
			t.Errorf("%s = %g, want %g (all: %v)", key, got[key], want, got)
		}
	}
}
