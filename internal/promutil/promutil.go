// Package promutil holds what ccevents' packages share about Prometheus
// metrics beyond client_golang itself. It never defines a metric.
package promutil

import (
	"errors"
	"iter"
	"slices"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
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

// Sample reads one metric from g: the one of family name whose labels
// include every pair of labels ("outcome", "stored", …). It returns a
// counter's or gauge's value, or a histogram's sample count, and whether
// such a metric exists. Tests and tools use it; the server never reads
// its own metrics.
func Sample(g prometheus.Gatherer, name string, labels ...string) (float64, bool, error) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, false, err
	}
	for m := range matching(mfs, name, labels) {
		if v, ok := value(m); ok {
			return v, true, nil
		}
	}
	return 0, false, nil
}

// Sum adds up what Sample would read from every metric of family name
// whose labels include every pair of labels: the total over the labels
// not named (all transports, all reasons). It is 0 when there is none.
func Sum(g prometheus.Gatherer, name string, labels ...string) (float64, error) {
	mfs, err := g.Gather()
	if err != nil {
		return 0, err
	}
	var sum float64
	for m := range matching(mfs, name, labels) {
		v, _ := value(m)
		sum += v
	}
	return sum, nil
}

// matching yields the metrics of family name in mfs whose labels include
// every pair of labels.
func matching(mfs []*dto.MetricFamily, name string, labels []string) iter.Seq[*dto.Metric] {
	return func(yield func(*dto.Metric) bool) {
		for _, mf := range mfs {
			if mf.GetName() != name {
				continue
			}
		next:
			for _, m := range mf.GetMetric() {
				for i := 0; i+1 < len(labels); i += 2 {
					if !slices.ContainsFunc(m.GetLabel(), func(l *dto.LabelPair) bool {
						return l.GetName() == labels[i] && l.GetValue() == labels[i+1]
					}) {
						continue next
					}
				}
				if !yield(m) {
					return
				}
			}
		}
	}
}

// value is a counter's or gauge's value, or a histogram's sample count;
// false for other kinds.
func value(m *dto.Metric) (float64, bool) {
	switch {
	case m.Histogram != nil:
		return float64(m.GetHistogram().GetSampleCount()), true
	case m.Counter != nil:
		return m.GetCounter().GetValue(), true
	case m.Gauge != nil:
		return m.GetGauge().GetValue(), true
	}
	return 0, false
}
