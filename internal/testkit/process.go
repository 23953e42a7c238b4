package testkit

import (
	"net"
	"os/exec"
	"path/filepath"
	"testing"
)

// FreeAddr is a 127.0.0.1 address whose port nothing listens on right now
// (it was listened on and closed), for a server a test starts on a fixed
// address so that it comes back on the same one after a restart. Where the
// server can listen on 127.0.0.1:0 itself, let it: another process may
// take a freed port before the server binds it.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("testkit: reserve a loopback port: %v", err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// BuildCCEvents builds the ccevents binary as an operator would (no race
// detector) into the test's temporary directory and returns its path.
func BuildCCEvents(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "ccevents")
	out, err := exec.Command("go", "build", "-o", bin, "github.com/ccevents/ccevents/cmd/ccevents").CombinedOutput()
	if err != nil {
		t.Fatalf("testkit: go build ./cmd/ccevents: %v\n%s", err, out)
	}
	return bin
}
