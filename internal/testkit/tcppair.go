package testkit

import (
	"net"
	"testing"
)

// TCPPair returns the two ends of a connected loopback TCP connection, the
// end dialed and the end accepted, for tests of code that needs a real
// socket (net.Pipe has no descriptor, no kernel buffers). Both ends are
// closed when the test ends.
func TCPPair(t testing.TB) (dialed, accepted *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatalf("listen on loopback: %v", err)
	}
	defer ln.Close()
	dialed, err = net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatalf("dial %s: %v", ln.Addr(), err)
	}
	t.Cleanup(func() { dialed.Close() })
	accepted, err = ln.AcceptTCP()
	if err != nil {
		t.Fatalf("accept on %s: %v", ln.Addr(), err)
	}
	t.Cleanup(func() { accepted.Close() })
	return dialed, accepted
}
