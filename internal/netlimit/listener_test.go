package netlimit

import (
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ccevents/ccevents/internal/testkit"
)

// server accepts on a wrapped loopback listener and keeps every accepted
// connection open until the test ends.
type server struct {
	ln       *Listener
	mu       sync.Mutex
	accepted []net.Conn
	refused  map[Reason]int
}

func startServer(t *testing.T, cfg Config) *server {
	t.Helper()
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s := &server{refused: map[Reason]int{}}
	cfg.OnRefuse = func(r Reason) { s.mu.Lock(); s.refused[r]++; s.mu.Unlock() }
	cfg.Refusal = func(r Reason, limit int) []byte {
		return HTTPResponse(http.StatusServiceUnavailable, `{"reason":"`+string(r)+`"}`)
	}
	s.ln = Wrap(raw, cfg)
	testkit.ServeConns(t, s.ln, func(c net.Conn) {
		s.mu.Lock()
		s.accepted = append(s.accepted, c)
		s.mu.Unlock()
		<-t.Context().Done() // held open until the test ends
	})
	return s
}

func (s *server) acceptedCount() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.accepted)
}

// dial connects from the loopback address from and sends an HTTP request.
func dial(t *testing.T, s *server, from string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", s.ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	if _, err := io.WriteString(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n"); err != nil {
		t.Fatal(err)
	}
	return c
}

func TestListenerRefusesBeyondItsShareAndAdmitsAgainWhenOneCloses(t *testing.T) {
	s := startServer(t, Config{Name: "api", MaxConns: 2})
	dial(t, s, "127.0.0.1")
	dial(t, s, "127.0.0.2")
	testkit.Eventually(t, 10*time.Second, "two connections accepted", func() bool { return s.acceptedCount() == 2 })
	status, body := testkit.ReadResponse(t, dial(t, s, "127.0.0.3"))
	if status != http.StatusServiceUnavailable || !strings.Contains(body, "max_conns") {
		t.Fatalf("refusal %d %s, want 503 naming max_conns", status, body)
	}
	if s.ln.Open() != 2 {
		t.Errorf("open = %d after a refusal, want 2", s.ln.Open())
	}
	s.mu.Lock()
	s.accepted[0].Close()
	s.mu.Unlock()
	testkit.Eventually(t, 10*time.Second, "the closed connection's place is free", func() bool { return s.ln.Open() == 1 })
	dial(t, s, "127.0.0.3")
	testkit.Eventually(t, 10*time.Second, "a new connection accepted", func() bool { return s.acceptedCount() == 3 })
	if s.refused[MaxConns] != 1 {
		t.Errorf("refusals %v, want one max_conns", s.refused)
	}
}

func TestListenerBoundsConnectionsPerAddress(t *testing.T) {
	s := startServer(t, Config{Name: "api", MaxConnsPerIP: 2})
	dial(t, s, "127.0.0.1")
	dial(t, s, "127.0.0.1")
	testkit.Eventually(t, 10*time.Second, "two connections accepted", func() bool { return s.acceptedCount() == 2 })
	if status, body := testkit.ReadResponse(t, dial(t, s, "127.0.0.1")); status != http.StatusServiceUnavailable || !strings.Contains(body, "conns_per_ip") {
		t.Fatalf("third connection from one address: %d %s", status, body)
	}
	dial(t, s, "127.0.0.2") // another address is not affected
	testkit.Eventually(t, 10*time.Second, "the other address's connection accepted", func() bool { return s.acceptedCount() == 3 })
	// Closing twice gives the place back once.
	s.mu.Lock()
	c := s.accepted[0]
	s.mu.Unlock()
	c.Close()
	c.Close()
	testkit.Eventually(t, 10*time.Second, "place freed", func() bool { return s.ln.Open() == 2 })
	dial(t, s, "127.0.0.1")
	testkit.Eventually(t, 10*time.Second, "the address may connect again", func() bool { return s.acceptedCount() == 4 })
	if s.ln.Open() != 3 || s.refused[ConnsPerIP] != 1 {
		t.Errorf("open %d, refusals %v; want 3 and one conns_per_ip", s.ln.Open(), s.refused)
	}
}

func TestAcceptedTCPConnectionsKeepTheirRawSocket(t *testing.T) {
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := Wrap(raw, Config{MaxConns: 1})
	defer ln.Close()
	go func() {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			defer c.Close()
			time.Sleep(100 * time.Millisecond)
		}
	}()
	c, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for name, ok := range map[string]bool{
		"SyscallConn": func() bool { _, ok := c.(syscall.Conn); return ok }(),
		"CloseWrite":  func() bool { _, ok := c.(interface{ CloseWrite() error }); return ok }(),
		"ReadFrom":    func() bool { _, ok := c.(io.ReaderFrom); return ok }(),
	} {
		if !ok {
			t.Errorf("an accepted TCP connection lost its %s method", name)
		}
	}
}

func TestSplitLeavesEveryListenerAndTheReserveTheirShare(t *testing.T) {
	tests := []struct {
		limit int
		want  Shares
	}{
		{0, Shares{}},
		{512, Shares{Limit: 512, WS: 304, API: 64, NATS: 16, Reserve: 128}},
		{20000, Shares{Limit: 20000, WS: 15938, API: 2500, NATS: 312, Reserve: 1250}},
		{1 << 20, Shares{Limit: 1 << 20, WS: 1<<20 - 65536 - 8192 - 1024, API: 8192, NATS: 1024, Reserve: 65536}},
	}
	for _, tt := range tests {
		got := Split(tt.limit)
		if got != tt.want {
			t.Errorf("Split(%d) = %+v, want %+v", tt.limit, got, tt.want)
		}
		if tt.limit > 0 && got.WS+got.API+got.NATS+got.Reserve != tt.limit {
			t.Errorf("Split(%d) shares add up to %d", tt.limit, got.WS+got.API+got.NATS+got.Reserve)
		}
	}
}

func TestExhaustedCounterIsSharedByListeners(t *testing.T) {
	reg := prometheus.NewRegistry()
	api, err := ExhaustedCounter(reg, "api")
	if err != nil {
		t.Fatal(err)
	}
	ws, err := ExhaustedCounter(reg, "ws")
	if err != nil {
		t.Fatal(err)
	}
	api.Inc()
	ws.Add(2)
	if got := counterValue(t, ws); got != 2 {
		t.Errorf("ws counter %v, want 2", got)
	}
	families, err := reg.Gather()
	if err != nil || len(families) != 1 || len(families[0].GetMetric()) != 2 {
		t.Errorf("registry holds %v (%v), want one family with a series per listener", families, err)
	}
}

func counterValue(t *testing.T, c prometheus.Counter) float64 {
	t.Helper()
	var m dto.Metric
	if err := c.Write(&m); err != nil {
		t.Fatal(err)
	}
	return m.GetCounter().GetValue()
}
