package lease_test

import (
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/lease"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/promutil"
)

func TestLeaseMetricsCountTakeoversLossesAndReleases(t *testing.T) {
	c := natstest.Start(t, 1)
	regA, regB := prometheus.NewRegistry(), prometheus.NewRegistry()
	ncA := c.Connect(nats.Name("a"))
	a, err := lease.New(bucket(t, ncA, 1), lease.Config{Owner: "a", TTL: ttl, Registerer: regA})
	if err != nil {
		t.Fatal(err)
	}
	b, err := lease.New(bucket(t, c.Connect(nats.Name("b")), 1), lease.Config{Owner: "b", TTL: ttl, Registerer: regB})
	if err != nil {
		t.Fatal(err)
	}
	ctx := ctxFor(t, 20*time.Second)
	la, err := a.TryAcquire(ctx, "k")
	if err != nil {
		t.Fatal(err)
	}
	ncA.Close() // a dies: no renewal, no release
	lb, err := b.Acquire(ctx, "k")
	if err != nil {
		t.Fatalf("b never took over: %v", err)
	}
	<-la.Done()
	if err := lb.Release(ctx); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		reg                *prometheus.Registry
		name, label, value string
		want               float64
	}{
		{regA, "ccevents_lease_acquired_total", "how", "free", 1},
		{regA, "ccevents_lease_ended_total", "reason", "lost", 1},
		{regB, "ccevents_lease_acquired_total", "how", "takeover", 1},
		{regB, "ccevents_lease_acquired_total", "how", "free", 0},
		{regB, "ccevents_lease_ended_total", "reason", "released", 1},
		{regB, "ccevents_lease_ended_total", "reason", "lost", 0},
	} {
		got, found, err := promutil.Sample(tc.reg, tc.name, tc.label, tc.value)
		if err != nil || !found || got != tc.want {
			t.Errorf("%s{%s=%q} = %g, want %g", tc.name, tc.label, tc.value, got, tc.want)
		}
	}
}
