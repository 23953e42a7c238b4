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

func TestSumAddsEveryMetricWithTheLabelsGiven(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounterVec(prometheus.CounterOpts{Name: "x_total", Help: "x"}, []string{"kind", "code"})
	g := prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "g", Help: "g"}, []string{"kind"})
	h := prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "y_seconds", Help: "y"}, []string{"kind"})
	reg.MustRegister(c, g, h)
	c.WithLabelValues("a", "1").Add(2)
	c.WithLabelValues("a", "2").Add(3)
	c.WithLabelValues("b", "1").Add(5)
	g.WithLabelValues("a").Set(-1)
	g.WithLabelValues("b").Set(4)
	h.WithLabelValues("a").Observe(1)
	h.WithLabelValues("b").Observe(2)
	h.WithLabelValues("b").Observe(3)
	for _, tc := range []struct {
		name   string
		labels []string
		want   float64
	}{
		{"x_total", nil, 10},
		{"x_total", []string{"kind", "a"}, 5},
		{"x_total", []string{"code", "1"}, 7},
		{"x_total", []string{"kind", "b", "code", "2"}, 0},
		{"g", nil, 3},
		{"y_seconds", []string{"kind", "b"}, 2},
		{"y_seconds", nil, 3},
		{"z", nil, 0},
	} {
		if got, err := promutil.Sum(reg, tc.name, tc.labels...); err != nil || got != tc.want {
			t.Errorf("Sum(%s, %v) = %g, %v; want %g", tc.name, tc.labels, got, err, tc.want)
		}
	}
}

func TestCounterVecStartsEveryValueAtZero(t *testing.T) {
	type reason string
	reg := prometheus.NewRegistry()
	vec := promutil.CounterVec("x_total", "x", "reason", reason("a"), reason("b"))
	if err := promutil.RegisterAll(reg, vec); err != nil {
		t.Fatal(err)
	}
	vec.WithLabelValues("b").Inc()
	for _, tc := range []struct {
		value string
		want  float64
		found bool
	}{{"a", 0, true}, {"b", 1, true}, {"c", 0, false}} {
		v, found, err := promutil.Sample(reg, "x_total", "reason", tc.value)
		if err != nil || v != tc.want || found != tc.found {
			t.Errorf("reason %s = %g, %v, %v; want %g, %v", tc.value, v, found, err, tc.want, tc.found)
		}
	}
}

func TestRegisterAllRefusesACollectorRegisteredBefore(t *testing.T) {
	reg := prometheus.NewRegistry()
	if err := promutil.RegisterAll(reg, promutil.Counter("x_total", "x"), promutil.Gauge("y", "y")); err != nil {
		t.Fatal(err)
	}
	if err := promutil.RegisterAll(reg, promutil.GaugeFunc("z", "z", func() float64 { return 1 }), promutil.Counter("x_total", "x")); err == nil {
		t.Error("a second x_total was registered")
	}
	if err := promutil.RegisterAll(nil, promutil.Counter("x_total", "x")); err != nil {
		t.Errorf("RegisterAll(nil) = %v; want nothing registered and no error", err)
	}
}
