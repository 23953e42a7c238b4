package lease

import (
	"fmt"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/promutil"
)

// metrics count how this node's leases begin and end.
type metrics struct {
	acquired *prometheus.CounterVec
	ended    *prometheus.CounterVec
}

// How a lease was taken, in ccevents_lease_acquired_total.
const (
	acquiredFree     = "free"     // the key was free (new, or released by its holder)
	acquiredTakeover = "takeover" // its holder stopped renewing it: a dead or cut-off node
)

// How a lease ended, in ccevents_lease_ended_total.
const (
	endedReleased = "released" // given back on purpose (rebalancing, shutdown)
	endedLost     = "lost"     // not renewed in time, or taken over by another node
)

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		acquired: promutil.CounterVec("ccevents_lease_acquired_total",
			"Leases (an account each, and this node's membership) this node took, by how: free, or takeover of a lease its holder stopped renewing.",
			"how", acquiredFree, acquiredTakeover),
		ended: promutil.CounterVec("ccevents_lease_ended_total",
			"Leases of this node that ended, by reason: released on purpose, or lost (not renewed within the TTL, or taken over). Lost leases outside upgrades mean this node cannot reach NATS in time.",
			"reason", endedReleased, endedLost),
	}
	var err error
	if m.acquired, err = promutil.Register(reg, m.acquired); err != nil {
		return nil, fmt.Errorf("register lease metrics: %w", err)
	}
	if m.ended, err = promutil.Register(reg, m.ended); err != nil {
		return nil, fmt.Errorf("register lease metrics: %w", err)
	}
	return m, nil
}
