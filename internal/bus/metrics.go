package bus

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/promutil"
)

// metrics are the bus connection's: how long stores take and how the
// connection to NATS behaves.
type metrics struct {
	publish     *prometheus.HistogramVec
	stored      prometheus.Observer // publish, outcome stored
	failed      prometheus.Observer // publish, outcome failed
	disconnects prometheus.Counter
	reconnects  prometheus.Counter
}

// Publish outcomes in ccevents_bus_publish_duration_seconds.
const (
	publishStored = "stored"
	publishFailed = "failed"
)

func newMetrics(reg prometheus.Registerer, b *Bus) (*metrics, error) {
	m := &metrics{
		publish: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ccevents_bus_publish_duration_seconds",
			Help:    "Time to store one event in the stream (publish until the stream's acknowledgement), by outcome: stored or failed. Every event goes through here, from the engine and from REST or NATS producers.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10},
		}, []string{"outcome"}),
		disconnects: promutil.Counter("ccevents_bus_disconnects_total",
			"Times the connection to NATS was lost."),
		reconnects: promutil.Counter("ccevents_bus_reconnects_total",
			"Times the connection to NATS was re-established (to the same or another server)."),
	}
	connected := promutil.GaugeFunc("ccevents_bus_connected",
		"1 while the connection to NATS is up, 0 while it is not.",
		func() float64 {
			if b.Connected() {
				return 1
			}
			return 0
		})
	if err := promutil.RegisterAll(reg, m.publish, m.disconnects, m.reconnects, connected); err != nil {
		return nil, fmt.Errorf("register bus metrics: %w", err)
	}
	m.stored, m.failed = m.publish.WithLabelValues(publishStored), m.publish.WithLabelValues(publishFailed)
	return m, nil
}
