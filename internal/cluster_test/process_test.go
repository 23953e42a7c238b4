package clustertest

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/natstest"
)

// node is one running `ccevents serve` process.
type node struct {
	t       *testing.T
	name    string
	dataDir string
	cmd     *exec.Cmd
	exited  chan struct{}

	mu      sync.Mutex
	logs    []string
	wsAddr  string
	apiAddr string
	ready   chan struct{} // closed when every role's listener is up
	roles   string
}

// startNode runs ccevents with roles on the cluster and waits until its
// listeners are up. It is stopped (SIGTERM) when the test ends.
//
// A process that exits while starting is started again, at most twice, as
// systemd's Restart=on-failure would: right after a cluster forms, the
// first write to a new R3 bucket can find no leader yet ("no response from
// stream"). Each such restart is logged.
func startNode(t *testing.T, c *natstest.Cluster, name, roles string, extra ...string) *node {
	t.Helper()
	dataDir := filepath.Join(t.TempDir(), name)
	for attempt := 1; ; attempt++ {
		n, err := tryStartNode(t, c, name, roles, dataDir, extra)
		if err == nil {
			return n
		}
		if attempt == 3 {
			t.Fatalf("%s: %v", name, err)
		}
		t.Logf("%s exited while starting (attempt %d), starting it again: %v", name, attempt, err)
	}
}

func tryStartNode(t *testing.T, c *natstest.Cluster, name, roles, dataDir string, extra []string) (*node, error) {
	t.Helper()
	n := &node{t: t, name: name, dataDir: dataDir, roles: roles,
		exited: make(chan struct{}), ready: make(chan struct{})}
	if !slices.Contains(extra, "--signing-key-file") {
		extra = append(extra, "--signing-key-file", sealKeyFile(t))
	}
	args := append([]string{"serve",
		"--roles", roles,
		"--nats", strings.Join(c.URLs(), ","),
		"--replicas", "3",
		"--ws-addr", "127.0.0.1:0",
		"--api-addr", "127.0.0.1:0",
		"--data-dir", n.dataDir,
		"--shutdown-timeout", "5s",
		"--log-format", "json",
		"--log-level", "debug",
	}, extra...)
	n.cmd = exec.Command(binary, args...)
	n.cmd.Env = cleanEnv()
	stderr, err := n.cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	n.cmd.Stdout = io.Discard
	if err := n.cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	go n.readLogs(stderr)
	select {
	case <-n.ready:
		t.Cleanup(n.stop)
		return n, nil
	case <-n.exited:
		return nil, fmt.Errorf("exited before it was ready:\n%s", n.tail(40))
	case <-time.After(60 * time.Second):
		n.kill()
		return nil, fmt.Errorf("not ready after 60s:\n%s", n.tail(40))
	}
}

// sealKeys holds each test's seal key file.
var sealKeys sync.Map // *testing.T → path

// sealKeyFile is the seal key every node of the test's deployment shares,
// as operators give each API node the same file.
func sealKeyFile(t *testing.T) string {
	t.Helper()
	if p, ok := sealKeys.Load(t); ok {
		return p.(string)
	}
	path := filepath.Join(t.TempDir(), "signing.key")
	if err := os.WriteFile(path, auth.FormatSealKey(auth.NewSealKey()), 0o600); err != nil {
		t.Fatal(err)
	}
	sealKeys.Store(t, path)
	t.Cleanup(func() { sealKeys.Delete(t) })
	return path
}

// cleanEnv is this process's environment without CCEVENTS_ settings, so a
// developer's shell cannot change what the test runs.
func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CCEVENTS_") {
			env = append(env, kv)
		}
	}
	return env
}

func (n *node) has(role string) bool {
	for _, r := range strings.Split(n.roles, ",") {
		if r == role {
			return true
		}
	}
	return false
}

func (n *node) readLogs(r io.Reader) {
	defer close(n.exited)
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	readyClosed := false
	for sc.Scan() {
		line := sc.Text()
		var rec struct {
			Msg  string `json:"msg"`
			Addr string `json:"addr"`
		}
		_ = json.Unmarshal([]byte(line), &rec)
		n.mu.Lock()
		n.logs = append(n.logs, line)
		switch rec.Msg {
		case "websocket gateway listening":
			n.wsAddr = rec.Addr
		case "REST API listening":
			n.apiAddr = rec.Addr
		}
		up := (!n.has("gateway") || n.wsAddr != "") && (!n.has("api") || n.apiAddr != "")
		n.mu.Unlock()
		if up && !readyClosed {
			readyClosed = true
			close(n.ready)
		}
	}
	_ = n.cmd.Wait()
}

// tail is the last lines of the node's log, for failure messages.
func (n *node) tail(lines int) string {
	n.mu.Lock()
	defer n.mu.Unlock()
	from := max(len(n.logs)-lines, 0)
	return strings.Join(n.logs[from:], "\n")
}

// logged reports whether a log line contains every one of parts.
func (n *node) logged(parts ...string) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	for _, l := range n.logs {
		ok := true
		for _, p := range parts {
			if !strings.Contains(l, p) {
				ok = false
				break
			}
		}
		if ok {
			return true
		}
	}
	return false
}

// WSURL is the node's websocket gateway.
func (n *node) WSURL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return "ws://" + n.wsAddr
}

// WSAddr is host:port of the node's websocket gateway.
func (n *node) WSAddr() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.wsAddr
}

// APIURL is the node's REST API.
func (n *node) APIURL() string {
	n.mu.Lock()
	defer n.mu.Unlock()
	return "http://" + n.apiAddr
}

// kill ends the process at once (SIGKILL): no notice, no hand-over.
func (n *node) kill() {
	_ = n.cmd.Process.Signal(syscall.SIGKILL)
	<-n.exited
}

// terminate asks the process to shut down gracefully (SIGTERM) and waits.
func (n *node) terminate() {
	_ = n.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-n.exited:
	case <-time.After(20 * time.Second):
		n.t.Errorf("%s did not stop within 20s of SIGTERM", n.name)
		n.kill()
	}
}

func (n *node) stop() {
	select {
	case <-n.exited:
	default:
		n.terminate()
	}
	if n.t.Failed() {
		n.t.Logf("--- last log lines of %s ---\n%s", n.name, n.tail(60))
	}
}

// rootKey reads the root account id and API key the node wrote when it
// created the root account (only the first node started does).
func (n *node) rootKey() (account, apiKey string, err error) {
	raw, err := os.ReadFile(filepath.Join(n.dataDir, "root.json"))
	if err != nil {
		return "", "", err
	}
	var root struct {
		AccountID string `json:"account_id"`
		APIKey    string `json:"api_key"`
	}
	if err := json.Unmarshal(raw, &root); err != nil {
		return "", "", err
	}
	if root.AccountID == "" || root.APIKey == "" {
		return "", "", errors.New("root.json lacks account_id or api_key")
	}
	return root.AccountID, root.APIKey, nil
}
