package sipfront

import (
	"errors"
	"net"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/ccevents/ccevents/internal/limit"
)

// floodGuard drops messages from an address that sends faster than its
// token bucket allows, before they are parsed: a flood costs a map lookup
// per packet and never gets an answer to amplify.
type floodGuard struct {
	rate  float64
	burst int
	max   int

	mu      sync.Mutex
	buckets map[string]*limit.Bucket
}

var errFlood = errors.New("sip: address over its request rate")

func newFloodGuard(rate float64, burst, maxTracked int) *floodGuard {
	return &floodGuard{rate: rate, burst: burst, max: maxTracked, buckets: map[string]*limit.Bucket{}}
}

// allow takes a token for the address; a negative rate never limits.
func (g *floodGuard) allow(addr string, now time.Time) bool {
	if g.rate < 0 {
		return true
	}
	g.mu.Lock()
	defer g.mu.Unlock()
	b := g.buckets[addr]
	if b == nil {
		if len(g.buckets) >= g.max {
			// Forget everyone rather than grow without bound; a flooder
			// starts again from a full bucket, which is harmless.
			clear(g.buckets)
		}
		nb := limit.NewBucket(g.rate, g.burst)
		b = &nb
		g.buckets[addr] = b
	}
	return b.Allow(now)
}

func (g *floodGuard) filter(m *metrics) sip.TransportReadFilter {
	return func(info sip.TransportReadProps, data []byte) ([]byte, error) {
		if !g.allow(hostOf(info.RemoteAddr), time.Now()) {
			m.dropped.Inc()
			return nil, errFlood
		}
		return data, nil
	}
}

func hostOf(a net.Addr) string {
	if a == nil {
		return ""
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}
