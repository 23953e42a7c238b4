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
