package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"

	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/ccevents/ccevents/internal/wstest"
)

// binDir holds the binary buildCCEvents builds; TestMain removes it.
var binDir = filepath.Join(os.TempDir(), fmt.Sprintf("ccevents-test-bin-%d", os.Getpid()))

// testLDFlags stamp the test binary as `make build` stamps a release.
const testLDFlags = "-X github.com/ccevents/ccevents/internal/buildinfo.version=v0.0.0-test -X github.com/ccevents/ccevents/internal/buildinfo.commit=0123abc"

// buildCCEvents builds the binary once for the tests that run it as a
// separate process, where any user may run it (a test runs it as nobody).
var buildCCEvents = sync.OnceValues(func() (string, error) {
	if err := os.MkdirAll(binDir, 0o755); err != nil {
		return "", err
	}
	if err := os.Chmod(binDir, 0o755); err != nil {
		return "", err
	}
	bin := filepath.Join(binDir, "ccevents")
	if out, err := exec.Command("go", "build", "-ldflags", testLDFlags, "-o", bin, ".").CombinedOutput(); err != nil {
		return "", fmt.Errorf("build: %v\n%s", err, out)
	}
	return bin, nil
})

func ccevents(t *testing.T) string {
	t.Helper()
	if testing.Short() {
		t.Skip("builds the binary")
	}
	bin, err := buildCCEvents()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// openFileLimit is the descriptor limit the flooded server runs with: low
// enough for a flood of a few hundred loopback connections to reach it.
const openFileLimit = 512

// floodClient is one connection of a flood: it asks once, keeps what it
// was let in with, and reports how it was answered.
func floodClient(addr, from, request string) (c net.Conn, status int, err error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err = d.Dial("tcp", addr)
	if err != nil {
		return nil, 0, err
	}
	if request == "" { // an idle connection that never sends a byte
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		var b [1]byte
		if _, err := c.Read(b[:]); err != nil && os.IsTimeout(err) {
			return c, 0, nil // held open: admitted
		}
		resp, err := http.ReadResponse(bufio.NewReader(io.MultiReader(bytes.NewReader(b[:]), c)), nil)
		c.Close()
		if err != nil {
			return nil, 0, err
		}
		return nil, resp.StatusCode, nil
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		c.Close()
		return nil, 0, err
	}
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		c.Close()
		return nil, 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	_ = c.SetDeadline(time.Time{})
	if resp.StatusCode != http.StatusOK {
		c.Close()
		return nil, resp.StatusCode, nil
	}
	return c, resp.StatusCode, nil // a keep-alive connection held idle
}

// flood opens connections to addr, 16 at once from each address from
// 127.0.0.2 upwards, until the listener refuses them with 503 (its share
// is in use) or a connection gets no answer at all (the process is out of
// descriptors), and returns the connections it holds.
func flood(t *testing.T, addr, request string) (held []net.Conn, refused int) {
	t.Helper()
	t.Cleanup(func() {
		for _, c := range held {
			c.Close()
		}
	})
	type outcome struct {
		c      net.Conn
		status int
		err    error
	}
	for batch := 0; batch*16 < 2*openFileLimit && refused == 0; batch++ {
		from := fmt.Sprintf("127.0.0.%d", 2+batch)
		outcomes := make([]outcome, 16)
		var wg sync.WaitGroup
		for i := range outcomes {
			wg.Go(func() {
				o := &outcomes[i]
				o.c, o.status, o.err = floodClient(addr, from, request)
			})
		}
		wg.Wait()
		for i, o := range outcomes {
			switch {
			case o.err != nil:
				t.Logf("flood of %s: a connection from %s got no answer (%v) with %d held", addr, from, o.err, len(held)+i)
				refused = -1
			case o.c != nil:
				held = append(held, o.c)
			case o.status == http.StatusServiceUnavailable:
				refused++
			default:
				t.Fatalf("flood of %s: a connection from %s was answered %d", addr, from, o.status)
			}
		}
		if refused < 0 {
			return held, 0
		}
	}
	return held, refused
}

// TestFloodingOneListenerLeavesTheOtherServing runs the real binary with a
// limit of 512 open files and floods its REST API, then its websocket
// port, with idle connections from many loopback addresses: each flood
// fills only its listener's share, and the other listener goes on serving.
func TestFloodingOneListenerLeavesTheOtherServing(t *testing.T) {
	bin := ccevents(t)
	dataDir := t.TempDir()
	wsAddr, apiAddr := testkit.FreeAddr(t), testkit.FreeAddr(t)
	var stderr syncBuffer
	// sh's ulimit sets the hard limit too, so Go cannot raise it again.
	cmd := exec.Command("sh", "-c", fmt.Sprintf(`ulimit -n %d && exec "$0" "$@"`, openFileLimit), bin,
		"serve", "--demo", "--demo-rate", "600", "--data-dir", dataDir, "--ws-addr", wsAddr, "--api-addr", apiAddr,
		"--api-idle-timeout", "5m", "--handshake-timeout", "5m", "--log-level", "warn")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
		}
		if t.Failed() {
			t.Logf("server log:\n%s", stderr.String())
		}
	})
	var demo demoInfo
	waitReady(t, "http://"+apiAddr, filepath.Join(dataDir, "demo.json"), exited, &stderr, nil)
	raw, err := os.ReadFile(filepath.Join(dataDir, "demo.json"))
	if err != nil || json.Unmarshal(raw, &demo) != nil || demo.AuthToken == "" {
		t.Fatalf("demo.json: %s, %v", raw, err)
	}

	held, refused := flood(t, apiAddr, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	t.Logf("REST flood: %d idle keep-alive connections held, then refused with 503", len(held))
	if refused == 0 || len(held) >= openFileLimit/2 {
		t.Fatalf("the REST API held %d connections of a %d-descriptor process and refused %d", len(held), openFileLimit, refused)
	}
	// The websocket gateway still admits, subscribes and delivers.
	receiveAnEvent(t, wsAddr, demo)
	for _, c := range held {
		c.Close()
	}

	held, refused = flood(t, wsAddr, "")
	t.Logf("websocket flood: %d idle connections held, then refused with 503", len(held))
	if refused == 0 {
		t.Fatalf("the websocket listener held %d connections and refused none", len(held))
	}
	// The REST API still answers, and says what was refused.
	metrics := get(t, "http://"+apiAddr+"/metrics")
	for series, positive := range map[string]bool{
		`ccevents_api_refused_total{reason="max_conns"}`:     true,
		`ccevents_ws_refused_total{reason="max_conns"}`:      true,
		`ccevents_too_many_open_files_total{listener="api"}`: false,
		`ccevents_too_many_open_files_total{listener="ws"}`:  false,
	} {
		if v := metricIn(metrics, series); (v > 0) != positive {
			t.Errorf("%s = %v, want it %s", series, v, map[bool]string{true: "above 0", false: "0"}[positive])
		}
	}
}

// metricIn is the value of series in a Prometheus text exposition, -1
// when it is missing.
func metricIn(exposition, series string) float64 {
	for line := range strings.Lines(exposition) {
		if rest, ok := strings.CutPrefix(line, series+" "); ok {
			var v float64
			if _, err := fmt.Sscan(rest, &v); err == nil {
				return v
			}
		}
	}
	return -1
}

func get(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: 10 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, body)
	}
	return string(body)
}

// receiveAnEvent connects to the gateway, subscribes to the demo account
// and waits for one of its events.
func receiveAnEvent(t *testing.T, wsAddr string, demo demoInfo) {
	t.Helper()
	conn, err := wstest.TryDial(t, "ws://"+wsAddr, ws.Dialer{})
	if err != nil {
		t.Fatalf("websocket connect during the REST flood: %v", err)
	}
	defer conn.NetConn().Close()
	conn.ReadWait = 30 * time.Second // the gateway shares the process with the flooded API
	sub := `{"action":"subscribe","auth_token":"` + demo.AuthToken + `","request_id":"s","data":{"account_id":"` + demo.AccountID + `","binding":"qubicle.*.` + demo.AccountID + `.#"}}`
	conn.Send(sub)
	for {
		msg, err := conn.Next()
		if err != nil {
			t.Fatalf("websocket during the REST flood: %v", err)
		}
		if bytes.Contains(msg, []byte(`"action":"event"`)) {
			return
		}
		if bytes.Contains(msg, []byte(`"status":"error"`)) {
			t.Fatalf("subscribe during the REST flood: %s", msg)
		}
	}
}
