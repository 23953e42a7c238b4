package promutil_test

import (
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/promutil"
)

func TestRegisterAgainReturnsTheCollectorRegisteredFirst(t *testing.T) {
	reg := prometheus.NewRegistry()
	opts := prometheus.CounterOpts{Name: "x_total", Help: "x"}
	first, err := promutil.Register(reg, prometheus.NewCounter(opts))
	if err != nil {
		t.Fatal(err)
	}
	first.Inc()
	again, err := promutil.Register(reg, prometheus.NewCounter(opts))
	if err != nil || again != first {
		t.Fatalf("second Register = %v, %v; want the first counter", again, err)
	}
	if _, err := promutil.Register(reg, prometheus.NewGauge(prometheus.GaugeOpts{Name: "x_total", Help: "other"})); err == nil {
		t.Error("a different collector of the same name was accepted")
	}
}

func TestSampleFindsTheMetricWithTheLabelsGiven(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"kind", "code"})
	h := prometheus.NewHistogram(prometheus.HistogramOpts{Name: "y_seconds", Help: "y"})
	reg.MustRegister(c, h)
	c.WithLabelValues("a", "1").Add(2)
	c.WithLabelValues("b", "1").Add(5)
	h.Observe(1)
	h.Observe(2)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
		found  bool
	}{
		{"x_total", []string{"kind", "b"}, 5, true},
		{"x_total", []string{"kind", "a", "code", "1"}, 2, true},
		{"x_total", []string{"kind", "c"}, 0, false},
		{"y_seconds", nil, 2, true},
		{"z", nil, 0, false},
	} {
		v, found, err := promutil.Sample(reg, tc.name, tc.labels...)
		if err != nil || v != tc.want || found != tc.found {
			t.Errorf("Sample(%s, %v) = %g, %v, %v; want %g, %v", tc.name, tc.labels, v, found, err, tc.want, tc.found)
		}
	}
}
