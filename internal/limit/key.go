package limit

import (
	"net"
	"net/netip"
)

// ClientKey returns the key that per-address limits count a client under,
// given its remote address ("1.2.3.4:5678", "[2001:db8::1]:5678" or a bare
// address): an IPv4 address as itself, an IPv6 address as its /64 network
// ("2001:db8:0:1::/64"), because one subscriber line or host is handed a
// whole /64 and could otherwise step around every per-address limit. An
// IPv4-mapped IPv6 address counts as the IPv4 address. Anything that is not
// an address is returned unchanged.
func ClientKey(remoteAddr string) string {
	host := remoteAddr
	if h, _, err := net.SplitHostPort(remoteAddr); err == nil {
		host = h
	}
	addr, err := netip.ParseAddr(host)
	if err != nil {
		return host
	}
	switch {
	case addr.Is4():
		return host // canonical already: ParseAddr refuses other spellings
	case addr.Is4In6():
		return addr.Unmap().String()
	}
	p, _ := addr.WithZone("").Prefix(64)
	return p.String()
}
