package api_test

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"

	"github.com/ccevents/ccevents/internal/api"
	"github.com/ccevents/ccevents/internal/promutil"
	"github.com/ccevents/ccevents/internal/testkit"
)

// slowGatherer makes GET /metrics take as long as the test says.
type slowGatherer struct{ delay time.Duration }

func (g slowGatherer) Gather() ([]*dto.MetricFamily, error) {
	time.Sleep(g.delay)
	return nil, nil
}

// limitedAPI serves the fixture's API on a loopback listener with limits
// and returns its address and metrics registry.
func limitedAPI(t *testing.T, f *fixture, lim api.Limits, gatherer prometheus.Gatherer) (string, *prometheus.Registry) {
	t.Helper()
	reg := prometheus.NewRegistry()
	srv, err := api.New(api.Config{Auth: f.auth, Publisher: f.bus, Gatherer: gatherer, Registerer: reg, Limits: lim})
	if err != nil {
		t.Fatal(err)
	}
	return testkit.Serve(t, srv.Serve, srv.Shutdown), reg
}

func waitMetric(t *testing.T, reg *prometheus.Registry, name, label, value string, want float64) {
	t.Helper()
	testkit.EventuallyNoError(t, 10*time.Second, fmt.Sprintf("%s{%s=%q} to be %v", name, label, value, want), func() error {
		got, _, err := promutil.Sample(reg, name, label, value)
		if err != nil {
			t.Fatal(err)
		}
		if got != want {
			return fmt.Errorf("it is %v", got)
		}
		return nil
	})
}

func dialFrom(t *testing.T, addr, from string) net.Conn {
	t.Helper()
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(from)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// waitClosed waits until the server closes c.
func waitClosed(t *testing.T, c net.Conn) {
	t.Helper()
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	_, err := io.Copy(io.Discard, c)
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		t.Fatal("the server kept the connection open")
	}
}

func TestRESTConnectionsAreOnAClock(t *testing.T) {
	f := newFixture(t)
	// The 408 for a trickling body is written once ReadTimeout passes, and
	// must be out before WriteTimeout (which net/http counts from the
	// request's headers) or it is lost and the request counts as a write
	// timeout too: the gap between the two is what a loaded machine gets
	// to answer in. /metrics sleeps past WriteTimeout, however busy.
	lim := api.Limits{ReadHeaderTimeout: 300 * time.Millisecond, ReadTimeout: 400 * time.Millisecond, WriteTimeout: 3 * time.Second, IdleTimeout: 300 * time.Millisecond}
	addr, reg := limitedAPI(t, f, lim, slowGatherer{delay: lim.WriteTimeout + 100*time.Millisecond})

	t.Run("headers that never finish", func(t *testing.T) {
		c := dialFrom(t, addr, "127.0.0.1")
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n")
		waitClosed(t, c)
		waitMetric(t, reg, "ccevents_api_timeouts_total", "timeout", "header", 1)
	})
	t.Run("a body that trickles", func(t *testing.T) {
		c := dialFrom(t, addr, "127.0.0.1")
		_, _ = io.WriteString(c, "PUT /v2/api_auth HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"data\":")
		status, body := testkit.ReadResponse(t, c)
		if status != http.StatusRequestTimeout || !strings.Contains(body, "did not arrive in time") {
			t.Fatalf("slow body answered %d %s, want 408 saying why", status, body)
		}
		waitClosed(t, c)
		waitMetric(t, reg, "ccevents_api_timeouts_total", "timeout", "read", 1)
	})
	t.Run("an idle keep-alive connection", func(t *testing.T) {
		c := dialFrom(t, addr, "127.0.0.1")
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if status, _ := testkit.ReadResponse(t, c); status != http.StatusOK {
			t.Fatalf("healthz %d", status)
		}
		waitClosed(t, c)
		waitMetric(t, reg, "ccevents_api_timeouts_total", "timeout", "idle", 1)
	})
	t.Run("a response slower than the write timeout", func(t *testing.T) {
		c := dialFrom(t, addr, "127.0.0.1")
		_, _ = io.WriteString(c, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
		waitClosed(t, c)
		waitMetric(t, reg, "ccevents_api_timeouts_total", "timeout", "write", 1)
	})
}

func TestRESTBoundsConnectionsPerAddressAndInAll(t *testing.T) {
	f := newFixture(t)
	addr, reg := limitedAPI(t, f, api.Limits{MaxConns: 3, MaxConnsPerIP: 2}, nil)
	held := []net.Conn{dialFrom(t, addr, "127.0.0.1"), dialFrom(t, addr, "127.0.0.1")}
	for _, c := range held { // both admitted and served
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if status, _ := testkit.ReadResponse(t, c); status != http.StatusOK {
			t.Fatalf("healthz %d", status)
		}
	}
	c := dialFrom(t, addr, "127.0.0.1")
	_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if status, body := testkit.ReadResponse(t, c); status != http.StatusTooManyRequests || !strings.Contains(body, "too many connections from your address (limit 2)") {
		t.Fatalf("third connection from one address: %d %s", status, body)
	}
	dialFrom(t, addr, "127.0.0.2") // the third and last place
	c = dialFrom(t, addr, "127.0.0.3")
	_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
	if status, body := testkit.ReadResponse(t, c); status != http.StatusServiceUnavailable || !strings.Contains(body, "limit of 3 connections") {
		t.Fatalf("connection beyond the listener's share: %d %s", status, body)
	}
	waitMetric(t, reg, "ccevents_api_refused_total", "reason", "conns_per_ip", 1)
	waitMetric(t, reg, "ccevents_api_refused_total", "reason", "max_conns", 1)
	// A place freed is a place for someone else.
	held[0].Close()
	testkit.EventuallyNoError(t, 10*time.Second, "a connection admitted after one closed", func() error {
		c := dialFrom(t, addr, "127.0.0.3")
		_, _ = io.WriteString(c, "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
		if status, _ := testkit.ReadResponse(t, c); status != http.StatusOK {
			c.Close()
			return fmt.Errorf("still refused (%d)", status)
		}
		return nil
	})
}
