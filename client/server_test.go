package client_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccevents/ccevents/client"
	"github.com/ccevents/ccevents/internal/api"
	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/gateway"
	"github.com/ccevents/ccevents/internal/testkit"
)

// server is a whole ccevents assembled in-process from its packages, on
// loopback ports that stay the same across restarts so clients can come
// back to it.
type server struct {
	cfg    serverConfig
	tmpDir string // removed by stop

	account, apiKey string
	wsURL, apiURL   string
	wsAddr, apiAddr string

	mu      sync.Mutex
	bus     *bus.Bus
	auth    *auth.Service
	eng     *engine.Engine
	gw      *gateway.Server
	gwDone  chan error
	apiSrv  *http.Server
	stopped bool
}

type serverConfig struct {
	dir      string
	tokenTTL time.Duration
	gateway  gateway.Config
}

// startServer runs a server until the test ends. A zero dir means a fresh
// temporary one.
func startServer(tb testing.TB, cfg serverConfig) *server {
	tb.Helper()
	s, err := newServer(cfg)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(s.stop)
	return s
}

func newServer(cfg serverConfig) (*server, error) {
	s := &server{cfg: cfg, wsAddr: "127.0.0.1:0", apiAddr: "127.0.0.1:0"}
	if err := s.start(); err != nil {
		s.stop()
		return nil, err
	}
	return s, nil
}

func (s *server) start() error {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cfg := bus.Config{DataDir: s.cfg.dir}
	if cfg.DataDir == "" {
		// History in memory; the directory only keeps JetStream's own files
		// apart from other test processes.
		dir, err := os.MkdirTemp("", "ccevents-client-test-")
		if err != nil {
			return err
		}
		s.tmpDir, cfg.DataDir, cfg.Memory = dir, dir, true
	}
	b, err := bus.Open(ctx, cfg)
	if err != nil {
		return err
	}
	s.bus = b
	kv, err := b.KeyValue(ctx, "ccevents_auth")
	if err != nil {
		return err
	}
	s.auth, err = auth.NewService(ctx, kv, auth.Options{TokenTTL: s.cfg.tokenTTL})
	if err != nil {
		return err
	}
	acct, key, created, err := s.auth.EnsureRoot(ctx, "root")
	if err != nil {
		return err
	}
	s.account = acct.ID
	if created {
		s.apiKey = key
	}
	ekv, err := b.KeyValue(ctx, engine.Bucket)
	if err != nil {
		return err
	}
	s.eng, err = engine.New(ctx, engine.Config{Publisher: b, KV: ekv, SyncInterval: -1})
	if err != nil {
		return err
	}
	apiSrv, err := api.New(api.Config{Auth: s.auth, Publisher: b, Engine: s.eng})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", s.apiAddr)
	if err != nil {
		return err
	}
	s.apiAddr = ln.Addr().String()
	s.apiURL = "http://" + s.apiAddr
	s.apiSrv = &http.Server{Handler: apiSrv.Handler(), ReadHeaderTimeout: 5 * time.Second}
	go s.apiSrv.Serve(ln)
	return s.startGateway()
}

func (s *server) startGateway() error {
	gw, err := gateway.New(s.cfg.gateway, s.bus, s.auth)
	if err != nil {
		return err
	}
	ln, err := listenRetrying(s.wsAddr)
	if err != nil {
		return err
	}
	s.wsAddr = ln.Addr().String()
	s.wsURL = "ws://" + s.wsAddr
	done := make(chan error, 1)
	go func() { done <- gw.Serve(context.Background(), ln) }()
	s.mu.Lock()
	s.gw, s.gwDone = gw, done
	s.mu.Unlock()
	return nil
}

// listenRetrying listens on addr, retrying for a while: the port of a
// server just stopped can take a moment to be free again.
func listenRetrying(addr string) (net.Listener, error) {
	var ln net.Listener
	var err error
	testkit.Until(context.Background(), wait, func() bool {
		ln, err = net.Listen("tcp", addr)
		return err == nil
	})
	return ln, err
}

// gateway is the gateway running now.
func (s *server) gateway() *gateway.Server {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.gw
}

func (s *server) stopGateway() {
	s.mu.Lock()
	gw, done := s.gw, s.gwDone
	s.gw = nil
	s.mu.Unlock()
	if gw == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_ = gw.Shutdown(ctx)
	<-done
}

// restartGateway replaces the gateway with a new one on the same port,
// which every connected client sees as a shutdown notice and close 1001.
func (s *server) restartGateway(tb testing.TB) {
	tb.Helper()
	s.stopGateway()
	if err := s.startGateway(); err != nil {
		tb.Fatalf("restart gateway: %v", err)
	}
}

// restart stops everything and starts it again on the same data directory
// and ports, as an operator restarting the process would.
func (s *server) restart(tb testing.TB) {
	tb.Helper()
	s.stop()
	s.stopped = false
	if err := s.start(); err != nil {
		tb.Fatalf("restart server: %v", err)
	}
}

func (s *server) stop() {
	if s.stopped {
		return
	}
	s.stopped = true
	s.stopGateway()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if s.apiSrv != nil {
		_ = s.apiSrv.Shutdown(ctx)
	}
	if s.eng != nil {
		_ = s.eng.Close(ctx)
	}
	if s.auth != nil {
		s.auth.Close()
	}
	if s.bus != nil {
		s.bus.Close()
	}
	if s.tmpDir != "" {
		os.RemoveAll(s.tmpDir)
		s.tmpDir = ""
	}
}

// publishJoins stores n queue.join events of queue q and returns their
// sequences.
func (s *server) publishJoins(tb testing.TB, q string, n int) []uint64 {
	tb.Helper()
	seqs := make([]uint64, 0, n)
	for i := range n {
		p := &event.QueueJoin{Envelope: event.Envelope{AccountID: s.account, QueueID: q, SessionID: fmt.Sprintf("s%d", i)},
			CallerIDNumber: "+14155550123", Position: i + 1, EstimatedWaitS: 30}
		event.Stamp(p, time.Now())
		subject, data, err := event.Marshal(p)
		if err != nil {
			tb.Fatalf("marshal: %v", err)
		}
		seq, err := s.bus.Publish(tb.Context(), subject, data, p.EventID)
		if err != nil {
			tb.Fatalf("publish: %v", err)
		}
		seqs = append(seqs, seq)
	}
	return seqs
}

// rest calls the REST API with the root account's token and decodes the
// data of the answer into out (if not nil).
func (s *server) rest(tb testing.TB, method, path string, body any, out any) {
	tb.Helper()
	if err := s.call(method, path, body, out); err != nil {
		tb.Fatal(err)
	}
}

func (s *server) call(method, path string, body any, out any) error {
	tok, _, err := s.auth.IssueToken(context.Background(), s.account, time.Hour)
	if err != nil {
		return err
	}
	var raw []byte
	if body != nil {
		raw, _ = json.Marshal(map[string]any{"data": body})
	}
	req, err := http.NewRequest(method, s.apiURL+strings.ReplaceAll(path, "{ACCOUNT_ID}", s.account), bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("X-Auth-Token", tok)
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	var env struct {
		Data    json.RawMessage `json:"data"`
		Message string          `json:"message"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&env); err != nil {
		return fmt.Errorf("%s %s: %w", method, path, err)
	}
	if resp.StatusCode >= 300 {
		return fmt.Errorf("%s %s: %d %s", method, path, resp.StatusCode, env.Message)
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	return nil
}

// token issues a token for the root account.
func (s *server) token(tb testing.TB, ttl time.Duration) string {
	tb.Helper()
	tok, _, err := s.auth.IssueToken(tb.Context(), s.account, ttl)
	if err != nil {
		tb.Fatal(err)
	}
	return tok
}

// recorder collects what a handler sees.
type recorder struct {
	mu     sync.Mutex
	events []eventSeen
}

type eventSeen struct {
	binding string
	seq     uint64
	epoch   string
}

func newRecorder() *recorder { return &recorder{} }

func (r *recorder) handle(ev client.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, eventSeen{ev.SubscribedKey, ev.Sequence, ev.Epoch})
}

func (r *recorder) seen() []eventSeen {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]eventSeen(nil), r.events...)
}

// waitFor waits until the recorder holds n events, failing after d.
func (r *recorder) waitFor(tb testing.TB, n int, d time.Duration) []eventSeen {
	tb.Helper()
	var got []eventSeen
	testkit.EventuallyNoError(tb, d, fmt.Sprintf("the handler to see %d events", n), func() error {
		if got = r.seen(); len(got) < n {
			return fmt.Errorf("saw %d", len(got))
		}
		return nil
	})
	return got
}
