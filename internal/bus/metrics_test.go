package bus_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/promutil"
)

func TestBusMetricsCountStoresDisconnectsAndReconnects(t *testing.T) {
	host, port := freeAddr(t)
	store := t.TempDir()
	// The server restarts on the same address and store: the bus reconnects.
	serve := func() *server.Server {
		return natstest.Server(t, &server.Options{Host: host, Port: port, JetStream: true, StoreDir: store})
	}
	ns := serve()
	reg := prometheus.NewRegistry()
	w := newLogWatch()
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	b := natstest.Bus(t, bus.Config{URLs: []string{fmt.Sprintf("nats://%s:%d", host, port)}, Name: "test", Registerer: reg, Logger: slog.New(w)})
	if _, err := b.Publish(ctx, "qubicle.queue."+acc+".Q1.join", []byte(`{}`), ""); err != nil {
		t.Fatal(err)
	}
	if got := value(t, reg, "ccevents_bus_publish_duration_seconds", "outcome", "stored"); got != 1 {
		t.Errorf("%g stores counted, want 1", got)
	}

	ns.Shutdown()
	ns.WaitForShutdown()
	w.waitLine(t, time.Minute, nil, "nats disconnected")
	if v := value(t, reg, "ccevents_bus_connected"); v != 0 {
		t.Errorf("ccevents_bus_connected = %g while the server is down", v)
	}
	serve()
	w.waitLine(t, time.Minute, nil, "nats reconnected")
	for name, want := range map[string]float64{"ccevents_bus_disconnects_total": 1, "ccevents_bus_reconnects_total": 1, "ccevents_bus_connected": 1} {
		if v := value(t, reg, name); v != want {
			t.Errorf("%s = %g, want %g", name, v, want)
		}
	}
}

// value is the value of the metric name{labels…}; it fails the test when
// there is none.
func value(t *testing.T, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	v, found, err := promutil.Sample(reg, name, labels...)
	if err != nil || !found {
		t.Fatalf("metric %s%v: found %v, %v", name, labels, found, err)
	}
	return v
}
