package sipfront

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"
)

func TestFloodGuardLimitsEachAddressOnItsOwn(t *testing.T) {
	trunk := netip.MustParsePrefix("192.0.2.0/24")
	trusted := func(a netip.Addr) bool { return trunk.Contains(a) }
	now := time.Unix(1000, 0)
	udp := func(s string) net.Addr { return net.UDPAddrFromAddrPort(netip.MustParseAddrPort(s)) }
	for _, tc := range []struct {
		name        string
		rate        float64
		flooder     net.Addr
		other       net.Addr
		otherLimits bool // other shares the flooder's allowance
	}{
		{name: "another IPv4 address keeps its own", rate: 1, flooder: udp("198.51.100.1:5060"), other: udp("198.51.100.2:5060")},
		{name: "another port of the same address shares it", rate: 1, flooder: udp("198.51.100.1:5060"), other: udp("198.51.100.1:5062"), otherLimits: true},
		{name: "an IPv4-mapped IPv6 address is the IPv4 one", rate: 1, flooder: udp("198.51.100.1:5060"), other: udp("[::ffff:198.51.100.1]:5060"), otherLimits: true},
		{name: "IPv6 addresses of one /64 share it", rate: 1, flooder: udp("[2001:db8:1:2::1]:5060"), other: udp("[2001:db8:1:2::99]:5060"), otherLimits: true},
		{name: "another IPv6 /64 keeps its own", rate: 1, flooder: udp("[2001:db8:1:2::1]:5060"), other: udp("[2001:db8:1:3::1]:5060")},
		{name: "a trusted address is never limited", rate: 1, flooder: udp("192.0.2.7:5060"), other: udp("192.0.2.7:5060")},
		{name: "a negative rate never limits", rate: -1, flooder: udp("198.51.100.1:5060"), other: udp("198.51.100.1:5060")},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := newFloodGuard(tc.rate, 3, 100, trusted)
			for range 10 {
				g.allow(clientAddr(tc.flooder), now)
			}
			flooderAllowed := g.allow(clientAddr(tc.flooder), now)
			otherAllowed := g.allow(clientAddr(tc.other), now)
			limited := tc.rate > 0 && !trusted(clientAddr(tc.flooder))
			if flooderAllowed == limited {
				t.Errorf("after 10 messages at once the flooder is allowed: %v, want %v", flooderAllowed, !limited)
			}
			if otherAllowed == (limited && tc.otherLimits) {
				t.Errorf("the other address is allowed: %v, want %v", otherAllowed, !(limited && tc.otherLimits))
			}
		})
	}
}

func TestFloodGuardForgetsEveryoneRatherThanGrow(t *testing.T) {
	g := newFloodGuard(1, 1, 3, func(netip.Addr) bool { return false })
	now := time.Unix(1000, 0)
	for i := range 10 {
		g.allow(netip.AddrFrom4([4]byte{10, 0, 0, byte(i)}), now)
		if len(g.buckets) > 3 {
			t.Fatalf("%d addresses tracked, limit 3", len(g.buckets))
		}
	}
}

// BenchmarkFloodFilterDrop is the guard's cost per datagram of a flood,
// which the one UDP read loop pays before reading the next.
func BenchmarkFloodFilterDrop(b *testing.B) {
	m, err := newMetrics(prometheus.NewRegistry())
	if err != nil {
		b.Fatal(err)
	}
	f := newFloodGuard(1, 1, maxTracked, func(netip.Addr) bool { return false }).filter(m)
	info := sip.TransportReadProps{Transport: "UDP", RemoteAddr: &net.UDPAddr{IP: net.IPv4(198, 51, 100, 1), Port: 5060}}
	data := []byte("OPTIONS sip:x SIP/2.0\r\n\r\n")
	b.ReportAllocs()
	for b.Loop() {
		_, _ = f(info, data)
	}
}
