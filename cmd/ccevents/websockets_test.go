//go:build linux

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/socketlist"
	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/ccevents/ccevents/internal/wstest"
)

// TestListingWaitsForAFrozenGatewayProcess (Linux: it reads /proc to know
// a process has stopped) runs two real `ccevents serve`
// processes on a two-node NATS cluster: A (every role, the demo) and B (a
// gateway only). B is frozen with SIGSTOP, as a long GC pause or a starved
// machine would: the REST listing waits for it and lists its socket once
// it thaws, and names it when it stays frozen past the timeout. B stopped
// with SIGTERM leaves the registry, and listings go on without it.
func TestListingWaitsForAFrozenGatewayProcess(t *testing.T) {
	bin := ccevents(t)
	nc := natstest.Start(t, 2)
	host, err := os.Hostname()
	if err != nil {
		t.Fatal(err)
	}
	wsA, apiA, wsB := testkit.FreeAddr(t), testkit.FreeAddr(t), testkit.FreeAddr(t)
	nameA, nameB := host+":"+portOf(wsA), host+":"+portOf(wsB)
	dataA := t.TempDir()
	startProcess(t, bin, "serve", "--nats", nc.URL(0), "--memory", "--demo", "--data-dir", dataA,
		"--ws-addr", wsA, "--api-addr", apiA, "--log-level", "warn")
	b := startProcess(t, bin, "serve", "--nats", nc.URL(1), "--memory", "--roles", "gateway", "--data-dir", t.TempDir(),
		"--ws-addr", wsB, "--log-level", "warn")

	var demo demoInfo
	testkit.Eventually(t, time.Minute, "A's demo.json", func() bool {
		raw, err := os.ReadFile(filepath.Join(dataA, "demo.json"))
		return err == nil && json.Unmarshal(raw, &demo) == nil && demo.AuthToken != ""
	})
	listing := "http://" + apiA + "/v2/accounts/" + demo.AccountID + "/websockets"
	get := func(url string) (int, listingAnswer) {
		t.Helper()
		req, _ := http.NewRequest(http.MethodGet, url, nil)
		req.Header.Set("X-Auth-Token", demo.AuthToken)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var ans listingAnswer
		if err := json.NewDecoder(resp.Body).Decode(&ans); err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode, ans
	}
	// A socket on B, so B has something to list.
	var conn *wstest.Conn
	testkit.EventuallyNoError(t, time.Minute, "B accepts websockets", func() (err error) {
		conn, err = wstest.TryDial(t, "ws://"+wsB, ws.Dialer{})
		return err
	})
	defer conn.NetConn().Close()
	conn.Subscribe(demo.AuthToken, demo.AccountID, "qubicle.queue")
	both := []string{nameA, nameB}
	slices.Sort(both)
	testkit.Eventually(t, time.Minute, "both gateways in the listing", func() bool {
		status, ans := get(listing)
		return status == http.StatusOK && slices.Equal(ans.Gateways, both)
	})

	// Frozen while asked: the listing waits, and has B's socket once B
	// thaws.
	b.freeze()
	result := make(chan listingAnswer, 1)
	statuses := make(chan int, 1)
	go func() {
		status, ans := get(listing)
		statuses <- status
		result <- ans
	}()
	testkit.Eventually(t, time.Minute, "A's listing waiting for answers", func() bool {
		return metricValue(t, "http://"+apiA+"/metrics", "ccevents_websocket_listings_waiting") == "1"
	})
	select {
	case ans := <-result:
		t.Fatalf("the listing ended while B was frozen: %d %+v", <-statuses, ans)
	default:
	}
	b.signal(syscall.SIGCONT)
	if status, ans := <-statuses, <-result; status != http.StatusOK || !slices.Equal(ans.Gateways, both) || !ans.hasSocketOn(nameB) {
		t.Fatalf("after B thawed: %d %+v", status, ans)
	}

	// Frozen past the timeout: B is named.
	b.freeze()
	status, ans := get(listing)
	if status != http.StatusGatewayTimeout || !strings.HasPrefix(ans.Message, "websocket gateway "+nameB+" did not answer within 5s") {
		t.Errorf("B frozen: %d %+v", status, ans)
	}
	b.signal(syscall.SIGCONT)

	// Stopped cleanly: B leaves the registry before it exits (its entry
	// would otherwise only expire after 15s, three times the listing's
	// timeout), so once A's copy of the registry has seen it go, listings
	// neither wait for B nor name it. A's copy follows the bucket: under
	// load it may learn of the leave a moment after B has exited.
	b.signal(syscall.SIGTERM)
	if code := b.wait(t); code != 0 {
		t.Fatalf("B exited with %d after SIGTERM:\n%s", code, b.stderr.String())
	}
	if keys := registryKeys(t, nc); len(keys) != 1 {
		t.Fatalf("the registry holds %v after B exited, want only A's entry", keys)
	}
	testkit.Eventually(t, time.Minute, "A's registry copy to drop B", func() bool {
		return metricValue(t, "http://"+apiA+"/metrics", "ccevents_websocket_listing_gateways") == "1"
	})
	if status, ans := get(listing); status != http.StatusOK || !slices.Equal(ans.Gateways, []string{nameA}) || ans.Partial {
		t.Fatalf("after B stopped: %d %+v", status, ans)
	}
}

// registryKeys are the keys of the gateway registry now, read from the
// bucket itself.
func registryKeys(t *testing.T, c *natstest.Cluster) []string {
	t.Helper()
	js, err := jetstream.New(c.Connect())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, socketlist.RegistryBucket)
	if err != nil {
		t.Fatalf("open the gateway registry: %v", err)
	}
	keys, err := kv.Keys(ctx)
	if err != nil && !errors.Is(err, jetstream.ErrNoKeysFound) {
		t.Fatalf("list the gateway registry: %v", err)
	}
	return keys
}

// listingAnswer is what the REST listing answers, a page or an error.
type listingAnswer struct {
	Status   string          `json:"status"`
	Message  string          `json:"message"`
	Gateways []string        `json:"gateways"`
	Partial  bool            `json:"partial"`
	Data     json.RawMessage `json:"data"`
}

func (a listingAnswer) hasSocketOn(gateway string) bool {
	var sockets []struct {
		Destination string `json:"destination"`
	}
	_ = json.Unmarshal(a.Data, &sockets)
	return slices.ContainsFunc(sockets, func(s struct {
		Destination string `json:"destination"`
	}) bool {
		return s.Destination == gateway
	})
}

// process is a running ccevents binary.
type process struct {
	t      *testing.T
	cmd    *exec.Cmd
	stderr syncBuffer
	exited chan int
}

func startProcess(t *testing.T, bin string, args ...string) *process {
	t.Helper()
	p := &process{t: t, cmd: exec.Command(bin, args...), exited: make(chan int, 1)}
	p.cmd.Stderr = &p.stderr
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() {
		_ = p.cmd.Wait()
		p.exited <- p.cmd.ProcessState.ExitCode()
	}()
	t.Cleanup(func() {
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		_ = p.cmd.Process.Kill()
		if t.Failed() {
			t.Logf("%s stderr:\n%s", args, p.stderr.String())
		}
	})
	return p
}

func (p *process) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

// freeze stops the process with SIGSTOP and waits until every one of its
// threads has stopped: the signal only asks the kernel to stop them.
func (p *process) freeze() {
	p.t.Helper()
	p.signal(syscall.SIGSTOP)
	tasks := fmt.Sprintf("/proc/%d/task", p.cmd.Process.Pid)
	testkit.Eventually(p.t, time.Minute, "the process stopped", func() bool {
		entries, err := os.ReadDir(tasks)
		if err != nil {
			return false
		}
		for _, e := range entries {
			stat, err := os.ReadFile(filepath.Join(tasks, e.Name(), "stat"))
			// The state follows the command name in parentheses.
			i := strings.LastIndexByte(string(stat), ')')
			if err != nil || i < 0 || i+2 >= len(stat) || stat[i+2] != 'T' {
				return false
			}
		}
		return true
	})
}

// wait returns the exit code, failing the test if the process runs on.
func (p *process) wait(t *testing.T) int {
	t.Helper()
	select {
	case code := <-p.exited:
		return code
	case <-time.After(time.Minute):
		t.Fatal("the process did not exit within a minute")
		return -1
	}
}

// metricValue reads one unlabelled metric from a Prometheus endpoint.
func metricValue(t *testing.T, url, name string) string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		return ""
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), name+" "); ok {
			return v
		}
	}
	return ""
}

func portOf(addr string) string { return addr[strings.LastIndexByte(addr, ':')+1:] }
