package cluster

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/promutil"
)

// routerMetrics count the commands a Router serves, wherever they run.
type routerMetrics struct {
	duration *prometheus.HistogramVec
	errors   *prometheus.CounterVec
}

// Error kinds counted in ccevents_engine_command_errors_total.
const (
	errKindInvalid     = "invalid"     // 400: the request is malformed
	errKindNotFound    = "not_found"   // 404: a queue, recipient or call does not exist
	errKindConflict    = "conflict"    // 409: impossible in the current state
	errKindUnavailable = "unavailable" // 503: the engine cannot take it now
	errKindMoved       = "moved"       // 503: no engine node ran the account within the wait
	errKindCanceled    = "canceled"    // the caller went away
	errKindInternal    = "internal"    // anything else
)

func newRouterMetrics(reg prometheus.Registerer) (*routerMetrics, error) {
	m := &routerMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ccevents_engine_command_duration_seconds",
			Help:    "Engine commands (create_queue, set_status, arrive, snapshot, …) from the caller's side: until the local engine or the engine node owning the account answered, including any wait for an account moving between nodes.",
			Buckets: []float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"command"}),
		errors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ccevents_engine_command_errors_total",
			Help: "Engine commands that failed, by command and kind: invalid, not_found, conflict (the caller's mistakes), unavailable, moved, canceled, internal (the engine's).",
		}, []string{"command", "kind"}),
	}
	var err error
	if m.duration, err = promutil.Register(reg, m.duration); err != nil {
		return nil, fmt.Errorf("register engine metrics: %w", err)
	}
	if m.errors, err = promutil.Register(reg, m.errors); err != nil {
		return nil, fmt.Errorf("register engine metrics: %w", err)
	}
	return m, nil
}

// done records one command that started at start and ended with err.
func (m *routerMetrics) done(op string, start time.Time, err error) {
	m.duration.WithLabelValues(op).Observe(time.Since(start).Seconds())
	if err != nil {
		m.errors.WithLabelValues(op, errorKind(err)).Inc()
	}
}

func errorKind(err error) string {
	var e *engine.Error
	switch {
	case errors.As(err, &e) && e.Moved:
		return errKindMoved
	case errors.As(err, &e):
		switch e.Kind {
		case engine.KindInvalid:
			return errKindInvalid
		case engine.KindNotFound:
			return errKindNotFound
		case engine.KindConflict:
			return errKindConflict
		case engine.KindUnavailable:
			return errKindUnavailable
		}
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return errKindCanceled
	}
	return errKindInternal
}
