package engine

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/promutil"
)

// engineMetrics count what an Engine does on its own, apart from the
// commands it is given.
type engineMetrics struct {
	offerHolds prometheus.Counter
}

func newEngineMetrics(reg prometheus.Registerer) (*engineMetrics, error) {
	m := &engineMetrics{
		offerHolds: promutil.Counter("ccevents_engine_offer_holds_total",
			"Recipients held back from their next offer because they rejected one less than engine.MinOfferInterval (1 s) after it began: a phone or desktop rejecting calls at machine speed, which would otherwise be offered calls in a tight loop."),
	}
	var err error
	if m.offerHolds, err = promutil.Register(reg, m.offerHolds); err != nil {
		return nil, fmt.Errorf("register engine metrics: %w", err)
	}
	return m, nil
}
