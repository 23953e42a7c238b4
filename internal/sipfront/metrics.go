package sipfront

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/promutil"
)

type metrics struct {
	requests      *prometheus.CounterVec // by method
	dropped       *prometheus.CounterVec // reads dropped by the per-address rate limit, by transport
	droppedUDP    prometheus.Counter
	droppedTCP    prometheus.Counter
	authFailures  *prometheus.CounterVec // by method
	refused       *prometheus.CounterVec // requests refused, by reason
	registrations prometheus.GaugeFunc
	legs          *prometheus.GaugeVec   // legs in progress, by kind
	calls         *prometheus.CounterVec // inbound calls, by outcome
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		requests: promutil.CounterVec[string]("ccevents_sip_requests_total",
			"SIP requests handled, by method.", "method"),
		dropped: promutil.CounterVec[string]("ccevents_sip_rate_limited_total",
			"SIP datagrams (udp) or reads (tcp, whose connection is then closed) dropped unparsed because their address sent more than --sip-request-rate allows, by transport.", "transport"),
		authFailures: promutil.CounterVec[string]("ccevents_sip_auth_failures_total",
			"Digest authentications that failed (wrong password, unknown user, stale or forged nonce), by method.", "method"),
		refused: promutil.CounterVec[string]("ccevents_sip_refused_total",
			"SIP requests refused, by reason (max_calls, max_registrations, auth_backoff, untrusted, unknown_number, forbidden, bad_request).", "reason"),
		legs: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "ccevents_sip_legs",
			Help: "SIP call legs in progress, by kind (caller, agent, external, supervisor)."}, []string{"kind"}),
		calls: promutil.CounterVec[string]("ccevents_sip_calls_total",
			"Calls to queue numbers, by outcome (queued, full, no_agents, failed).", "outcome"),
	}
	m.droppedUDP, m.droppedTCP = m.dropped.WithLabelValues("udp"), m.dropped.WithLabelValues("tcp")
	if err := promutil.RegisterAll(reg, m.requests, m.dropped, m.authFailures, m.refused, m.legs, m.calls); err != nil {
		return nil, fmt.Errorf("register SIP metrics: %w", err)
	}
	return m, nil
}

// registerGauge adds the registrations gauge once the registrar exists.
func (m *metrics) registerGauge(reg prometheus.Registerer, count func() int) error {
	m.registrations = promutil.GaugeFunc("ccevents_sip_registrations",
		"Phones registered now.", func() float64 { return float64(count()) })
	if err := promutil.RegisterAll(reg, m.registrations); err != nil {
		return fmt.Errorf("register SIP metrics: %w", err)
	}
	return nil
}
