package soak

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ccevents/ccevents/client"
	"github.com/ccevents/ccevents/internal/testkit"
)

// gatewayProc runs `ccevents serve` as a child process and restarts it on
// the same data dir and ports.
type gatewayProc struct {
	bin, dataDir, logDir      string
	wsAddr, apiAddr, natsAddr string
	flags                     []string
	http                      *http.Client

	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan error
	starts int

	// gen changes whenever the gateway goes down or comes up, so a client
	// can tell whether a restart overlapped what it was doing.
	gen  atomic.Int64
	down atomic.Bool
}

func newGatewayProc(t *testing.T, bin string, flags ...string) *gatewayProc {
	g := &gatewayProc{
		bin: bin, dataDir: t.TempDir(), logDir: t.TempDir(),
		wsAddr: testkit.FreeAddr(t), apiAddr: testkit.FreeAddr(t), natsAddr: testkit.FreeAddr(t),
		flags: flags,
		http:  &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 8}},
	}
	g.down.Store(true)
	t.Cleanup(func() {
		g.mu.Lock()
		defer g.mu.Unlock()
		if g.cmd != nil && g.cmd.ProcessState == nil {
			_ = g.cmd.Process.Kill()
			<-g.exited
		}
		if t.Failed() {
			t.Logf("the gateway's warnings and errors, most frequent first:\n%s", g.logSummary())
		}
	})
	return g
}

func (g *gatewayProc) wsURL() string   { return "ws://" + g.wsAddr }
func (g *gatewayProc) apiURL() string  { return "http://" + g.apiAddr }
func (g *gatewayProc) natsURL() string { return "nats://" + g.natsAddr }

// start runs the gateway and waits until it serves websockets and REST.
func (g *gatewayProc) start(ctx context.Context) (time.Duration, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	begin := time.Now()
	g.starts++
	logf, err := os.Create(g.logPath(g.starts))
	if err != nil {
		return 0, err
	}
	args := append([]string{"serve", "--data-dir", g.dataDir, "--ws-addr", g.wsAddr, "--api-addr", g.apiAddr,
		"--nats-listen", g.natsAddr}, g.flags...)
	cmd := exec.Command(g.bin, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = childAttrs()
	// Settings come from the flags above only, not from CCEVENTS_* in the
	// environment of whoever runs the test.
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "CCEVENTS_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	if err := cmd.Start(); err != nil {
		logf.Close()
		return 0, fmt.Errorf("start %s: %w", g.bin, err)
	}
	exited := make(chan error, 1)
	go func() {
		exited <- cmd.Wait()
		logf.Close()
	}()
	g.cmd, g.exited = cmd, exited

	deadline := time.Now().Add(90 * time.Second)
	for {
		if g.ready(ctx) {
			break
		}
		select {
		case err := <-exited:
			exited <- err
			return 0, fmt.Errorf("gateway exited while starting (%v):\n%s", err, g.logTail(20))
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-time.After(100 * time.Millisecond):
		}
		if time.Now().After(deadline) {
			return 0, fmt.Errorf("gateway not ready after 90s:\n%s", g.logTail(20))
		}
	}
	g.down.Store(false)
	g.gen.Add(1)
	return time.Since(begin), nil
}

// ready reports whether /readyz answers 200 and the websocket port accepts.
func (g *gatewayProc) ready(ctx context.Context) bool {
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, g.apiURL()+"/readyz", nil)
	resp, err := g.http.Do(req)
	if err != nil {
		return false
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return false
	}
	c, err := net.DialTimeout("tcp", g.wsAddr, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}

// stop sends SIGTERM and waits for the process to exit; a graceful
// shutdown exits 0.
func (g *gatewayProc) stop(timeout time.Duration) (time.Duration, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.down.Store(true)
	g.gen.Add(1)
	begin := time.Now()
	if err := g.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		return 0, fmt.Errorf("SIGTERM: %w", err)
	}
	select {
	case err := <-g.exited:
		g.exited <- err
		if err != nil {
			return time.Since(begin), fmt.Errorf("gateway exited with %v after SIGTERM:\n%s", err, g.logTail(20))
		}
		return time.Since(begin), nil
	case <-time.After(timeout):
		_ = g.cmd.Process.Kill()
		return time.Since(begin), fmt.Errorf("gateway still running %s after SIGTERM; killed:\n%s", timeout, g.logTail(20))
	}
}

// logPath is where the start-th process (counting from 1) logs.
func (g *gatewayProc) logPath(start int) string {
	return filepath.Join(g.logDir, fmt.Sprintf("serve-%d.log", start))
}

// logTail returns the last n lines of the current process's log.
func (g *gatewayProc) logTail(n int) string {
	raw, err := os.ReadFile(g.logPath(g.starts))
	if err != nil {
		return "(no log: " + err.Error() + ")"
	}
	lines := strings.Split(strings.TrimRight(string(raw), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// logSummary counts the warnings and errors in every log the gateway wrote
// during the run by message and error (what differs between occurrences,
// such as addresses and sequences, left out), most frequent first.
func (g *gatewayProc) logSummary() string {
	counts := map[string]int{}
	for i := 1; i <= g.starts; i++ {
		raw, err := os.ReadFile(g.logPath(i))
		if err != nil {
			continue
		}
		for line := range strings.Lines(string(raw)) {
			level := logField(line, "level")
			if level != "WARN" && level != "ERROR" {
				continue
			}
			key := level + " " + strconv.Quote(logField(line, "msg"))
			if e := logField(line, "err"); e != "" {
				key += " err=" + e
			}
			counts[key]++
		}
	}
	var b strings.Builder
	for _, e := range mostFrequent(counts, 10) {
		fmt.Fprintf(&b, "%7d  %.300s\n", e.n, e.k)
	}
	if b.Len() == 0 {
		return "(none)"
	}
	return b.String()
}

// counted is one entry of mostFrequent.
type counted struct {
	k string
	n int
}

// mostFrequent returns the n entries of counts with the highest counts,
// highest first.
func mostFrequent(counts map[string]int, n int) []counted {
	var all []counted
	for k, c := range counts {
		all = append(all, counted{k, c})
	}
	slices.SortFunc(all, func(a, b counted) int { return b.n - a.n })
	return first(all, n)
}

// logField returns the value of name=value in a log/slog text line.
func logField(line, name string) string {
	i := strings.Index(line, " "+name+"=")
	if i < 0 {
		return ""
	}
	v := line[i+len(name)+2:]
	if strings.HasPrefix(v, `"`) {
		if q, err := strconv.QuotedPrefix(v); err == nil {
			u, _ := strconv.Unquote(q)
			return u
		}
	}
	if j := strings.IndexAny(v, " \n"); j >= 0 {
		v = v[:j]
	}
	return v
}

// rest makes one REST call with the Kazoo envelope and decodes its data.
func (g *gatewayProc) rest(ctx context.Context, method, path, token string, body, out any) error {
	raw, err := json.Marshal(map[string]any{"data": body})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, g.apiURL()+path, bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := g.http.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer resp.Body.Close()
	var env struct {
		Status  string          `json:"status"`
		Message string          `json:"message"`
		Data    json.RawMessage `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s %s: HTTP %d, body not JSON: %w", method, path, resp.StatusCode, err)
	}
	if resp.StatusCode >= 300 || env.Status != "success" {
		return fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, env.Message)
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return fmt.Errorf("%s %s: data: %w", method, path, err)
		}
	}
	return nil
}

// account is one child account the soak publishes to and subscribes to.
type account struct {
	idx    int
	id     string
	token  string
	kinds  []*evKind
	weight float64 // share of the published events
}

// login exchanges an API key for a token, as the SDK does.
func (g *gatewayProc) login(ctx context.Context, key string) (id, token string, err error) {
	tok, err := client.Login(ctx, g.apiURL(), key, g.http)
	if err == nil && tok.AccountID == "" {
		err = errors.New("login: reply without account_id")
	}
	return tok.AccountID, tok.Value, err
}

// createAccounts creates n child accounts of the root account (its API key
// is in DATA_DIR/root.json) and logs in as each.
func (g *gatewayProc) createAccounts(ctx context.Context, n int) ([]*account, error) {
	raw, err := os.ReadFile(filepath.Join(g.dataDir, "root.json"))
	if err != nil {
		return nil, err
	}
	var root struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal(raw, &root); err != nil {
		return nil, fmt.Errorf("root.json: %w", err)
	}
	rootID, rootToken, err := g.login(ctx, root.APIKey)
	if err != nil {
		return nil, err
	}
	var out []*account
	for i := range n {
		var child struct {
			AccountID string `json:"account_id"`
			APIKey    string `json:"api_key"`
		}
		if err := g.rest(ctx, http.MethodPut, "/v2/accounts/"+rootID, rootToken, map[string]string{"name": fmt.Sprintf("soak %d", i)}, &child); err != nil {
			return nil, err
		}
		id, token, err := g.login(ctx, child.APIKey)
		if err != nil {
			return nil, err
		}
		if id != child.AccountID {
			return nil, fmt.Errorf("logged in as %s with the key of %s", id, child.AccountID)
		}
		out = append(out, &account{idx: i, id: id, token: token, kinds: kindsFor(id)})
	}
	return out, nil
}

// metrics is one scrape of /metrics: value by series ("name" or
// `name{label="v"}`).
type metrics map[string]float64

func (g *gatewayProc) scrape(ctx context.Context) (metrics, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, g.apiURL()+"/metrics", nil)
	if err != nil {
		return nil, err
	}
	resp, err := g.http.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("/metrics: HTTP %d", resp.StatusCode)
	}
	m := metrics{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	return m, sc.Err()
}

// closed4008 is how many connections the gateway closed as slow consumers.
func (m metrics) closed4008() float64 { return m[`ccevents_ws_closed_total{code="4008"}`] }

// usage is what the leak check compares.
type usage struct {
	goroutines int
	heapInuse  float64
	rss        float64
	conns      int
	subs       int
}

func (m metrics) usage() usage {
	return usage{
		goroutines: int(m["go_goroutines"]),
		heapInuse:  m["go_memstats_heap_inuse_bytes"],
		rss:        m["process_resident_memory_bytes"],
		conns:      int(m["ccevents_ws_connections"]),
		subs:       int(m["ccevents_ws_subscriptions"]),
	}
}

func (u usage) String() string {
	return fmt.Sprintf("%d goroutines, heap in use %.1f MiB, RSS %.1f MiB, %d connections, %d bindings",
		u.goroutines, u.heapInuse/(1<<20), u.rss/(1<<20), u.conns, u.subs)
}

// settledUsage scrapes /metrics until the server has completed two garbage
// collections since the call (each scrape allocates in the server, so an
// idle server gets there too), then returns the usage after them: the heap
// then holds what is live, not garbage awaiting collection.
func (g *gatewayProc) settledUsage(ctx context.Context) (usage, error) {
	first, err := g.scrape(ctx)
	if err != nil {
		return usage{}, err
	}
	gcs := first["go_gc_duration_seconds_count"]
	deadline := time.Now().Add(time.Minute)
	for {
		m, err := g.scrape(ctx)
		if err != nil {
			return usage{}, err
		}
		if m["go_gc_duration_seconds_count"] >= gcs+2 {
			return m.usage(), nil
		}
		if time.Now().After(deadline) {
			return usage{}, fmt.Errorf("no two garbage collections within a minute of scraping")
		}
	}
}

// dumpGoroutines makes the gateway print its goroutines (SIGQUIT, which
// also ends it) and summarizes the dump: the most common stacks first.
func (g *gatewayProc) dumpGoroutines() string {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.down.Store(true)
	g.gen.Add(1)
	_ = g.cmd.Process.Signal(syscall.SIGQUIT)
	select {
	case err := <-g.exited:
		g.exited <- err
	case <-time.After(30 * time.Second):
		_ = g.cmd.Process.Kill()
		return "the gateway did not exit on SIGQUIT"
	}
	raw, err := os.ReadFile(g.logPath(g.starts))
	if err != nil {
		return err.Error()
	}
	counts := map[string]int{}
	for _, block := range strings.Split(string(raw), "\n\n") {
		if !strings.HasPrefix(block, "goroutine ") {
			continue
		}
		lines := strings.Split(block, "\n")
		state := lines[0][strings.Index(lines[0], "[")+1:]
		state = strings.TrimSuffix(strings.SplitN(state, ",", 2)[0], "]:")
		var funcs []string
		for _, l := range lines[1:] {
			if !strings.HasPrefix(l, "\t") && l != "" {
				if i := strings.LastIndexByte(l, '('); i > 0 {
					l = l[:i]
				}
				funcs = append(funcs, l)
			}
		}
		counts["["+state+"] "+strings.Join(first(funcs, 6), " < ")]++
	}
	var b strings.Builder
	for _, e := range mostFrequent(counts, 12) {
		fmt.Fprintf(&b, "%6d  %s\n", e.n, e.k)
	}
	return b.String()
}
