package testkit

import (
	"io"
	"net"
	"testing"
)

func TestTCPPairEndsAreConnectedBothWays(t *testing.T) {
	dialed, accepted := TCPPair(t)
	if dialed.LocalAddr().String() != accepted.RemoteAddr().String() {
		t.Errorf("dialed from %s, accepted from %s: not one connection", dialed.LocalAddr(), accepted.RemoteAddr())
	}
	for _, tc := range []struct {
		name     string
		from, to net.Conn
	}{
		{"dialed to accepted", dialed, accepted},
		{"accepted to dialed", accepted, dialed},
	} {
		if _, err := tc.from.Write([]byte(tc.name)); err != nil {
			t.Fatalf("%s: write: %v", tc.name, err)
		}
		got := make([]byte, len(tc.name))
		if _, err := io.ReadFull(tc.to, got); err != nil || string(got) != tc.name {
			t.Errorf("%s: read %q, %v", tc.name, got, err)
		}
	}
}
