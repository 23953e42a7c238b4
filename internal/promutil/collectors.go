package promutil

import "github.com/prometheus/client_golang/prometheus"

// Counter returns a new counter named name, described by help.
func Counter(name, help string) prometheus.Counter {
	return prometheus.NewCounter(prometheus.CounterOpts{Name: name, Help: help})
}

// Gauge returns a new gauge named name, described by help.
func Gauge(name, help string) prometheus.Gauge {
	return prometheus.NewGauge(prometheus.GaugeOpts{Name: name, Help: help})
}

// GaugeFunc returns a gauge named name, described by help, whose value
// is read from value at each scrape.
func GaugeFunc(name, help string, value func() float64) prometheus.GaugeFunc {
	return prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: name, Help: help}, value)
}

// CounterVec returns a new counter named name, described by help, with
// one label. The series of each of values exist from the start, at zero,
// so dashboards and alerts see zeros rather than missing series.
func CounterVec[V ~string](name, help, label string, values ...V) *prometheus.CounterVec {
	vec := prometheus.NewCounterVec(prometheus.CounterOpts{Name: name, Help: help}, []string{label})
	for _, v := range values {
		vec.WithLabelValues(string(v))
	}
	return vec
}

// RegisterAll registers each of cs with reg, stopping at the first that
// fails; unlike Register, a collector registered before is an error. A
// nil reg registers nothing: the metrics count on, unexported.
func RegisterAll(reg prometheus.Registerer, cs ...prometheus.Collector) error {
	if reg == nil {
		return nil
	}
	for _, c := range cs {
		if err := reg.Register(c); err != nil {
			return err
		}
	}
	return nil
}
