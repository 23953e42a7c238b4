package testkit

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
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

// ReadResponse reads one HTTP response from a raw connection (one a test
// wrote its request to by hand, or one a server refused with an answer)
// within 10 s, and returns its status and body.
func ReadResponse(t testing.TB, c net.Conn) (status int, body string) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("testkit: no HTTP response on %s: %v", c.RemoteAddr(), err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(raw)
}
