package sipfront

import (
	"errors"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/ccevents/ccevents/internal/limit"
)

// floodGuard drops messages from an address that sends faster than its
// token bucket allows, before they are parsed: a flood costs a map lookup
// per packet and never gets an answer to amplify. Addresses are counted
// as limit.ClientKey counts them (IPv6 by /64); trusted ones (a trunk)
// are not limited.
type floodGuard struct {
	rate    float64
	burst   int
	max     int
	trusted func(netip.Addr) bool

	mu      sync.Mutex
	buckets map[netip.Addr]*limit.Bucket
}

var errFlood = errors.New("sip: address over its request rate")

func newFloodGuard(rate float64, burst, maxTracked int, trusted func(netip.Addr) bool) *floodGuard {
	return &floodGuard{rate: rate, burst: burst, max: maxTracked, trusted: trusted, buckets: map[netip.Addr]*limit.Bucket{}}
}

// allow takes a token for the address; a negative rate never limits.
func (g *floodGuard) allow(addr netip.Addr, now time.Time) bool {
	if g.rate < 0 || g.trusted(addr) {
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

// filter is the guard as sipgo's read filter. An error from it ends the
// read loop it runs in: for UDP that is the one socket every phone shares,
// so an over-rate datagram is dropped by returning nothing (a flood once
// stopped UDP for everyone this way); for TCP it is the flooder's own
// connection, which is closed, since dropping part of a stream would
// garble every message after it.
func (g *floodGuard) filter(m *metrics) sip.TransportReadFilter {
	return func(info sip.TransportReadProps, data []byte) ([]byte, error) {
		if g.allow(clientAddr(info.RemoteAddr), time.Now()) {
			return data, nil
		}
		if _, udp := info.RemoteAddr.(*net.UDPAddr); udp {
			m.droppedUDP.Inc()
			return nil, nil
		}
		m.droppedTCP.Inc()
		return nil, errFlood
	}
}

// clientAddr is the address per-address limits count a peer under: an
// IPv4 address as itself, IPv6 by its /64 (the rule of limit.ClientKey,
// without its string round trip on every packet).
func clientAddr(a net.Addr) netip.Addr {
	var ap netip.AddrPort
	switch v := a.(type) {
	case *net.UDPAddr:
		ap = v.AddrPort()
	case *net.TCPAddr:
		ap = v.AddrPort()
	default:
		if a != nil {
			ap, _ = netip.ParseAddrPort(a.String())
		}
	}
	addr := ap.Addr().Unmap()
	if addr.Is6() {
		p, _ := addr.WithZone("").Prefix(64)
		return p.Addr()
	}
	return addr
}
