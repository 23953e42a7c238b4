// Package promutil holds what ccevents' packages share about Prometheus
// metrics beyond client_golang itself. It never defines a metric.
package promutil

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// Register registers c with reg and returns it, or returns the equal
// collector registered before: a component started again after a failed
// start (start-up retries while NATS recovers) counts on in the same
// series instead of failing on the duplicate. A nil reg registers nothing.
func Register[T prometheus.Collector](reg prometheus.Registerer, c T) (T, error) {
	if reg == nil {
		return c, nil
	}
	err := reg.Register(c)
	var dup prometheus.AlreadyRegisteredError
	if errors.As(err, &dup) {
		if existing, ok := dup.ExistingCollector.(T); ok {
			return existing, nil
		}
	}
	return c, err
}
