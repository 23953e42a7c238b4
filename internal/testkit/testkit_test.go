package testkit

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// recorder is a testing.TB that records a failure instead of ending the
// test, so the tests below can see what a helper reports.
type recorder struct {
	testing.TB
	failed string
}

func (r *recorder) Helper() {}

func (r *recorder) Fatalf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func (r *recorder) Errorf(format string, args ...any) { r.failed = fmt.Sprintf(format, args...) }

func TestEventuallyWaitsForTheConditionAndReportsWhatNeverHappened(t *testing.T) {
	tests := []struct {
		name       string
		trueAfter  int64 // checks before the condition holds; -1 never
		limit      time.Duration
		wantFailed string // "" when the wait succeeds
	}{
		{"holds at once", 0, time.Second, ""},
		{"holds after a few checks", 5, time.Minute, ""},
		{"never holds", -1, 50 * time.Millisecond, "checks): the answer"},
		{"a zero limit still checks once", 0, 0, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var checks atomic.Int64
			cond := func() bool { return tt.trueAfter >= 0 && checks.Add(1) > tt.trueAfter }
			r := &recorder{TB: t}
			Eventually(r, tt.limit, "the answer", cond)
			if tt.wantFailed == "" && r.failed != "" {
				t.Fatalf("failed: %s", r.failed)
			}
			if tt.wantFailed != "" && !strings.Contains(r.failed, tt.wantFailed) {
				t.Fatalf("failure %q, want one naming %q", r.failed, tt.wantFailed)
			}
		})
	}
}

func TestEventuallyNoErrorReportsTheLastError(t *testing.T) {
	r := &recorder{TB: t}
	n := 0
	EventuallyNoError(r, 20*time.Millisecond, "the stream", func() error {
		n++
		return fmt.Errorf("%d events stored, want 3", n)
	})
	if !strings.Contains(r.failed, "): the stream: ") || !strings.Contains(r.failed, fmt.Sprintf("%d events stored", n)) {
		t.Fatalf("failure %q, want what was awaited and the last error (check %d)", r.failed, n)
	}
	if n < 2 {
		t.Errorf("checked %d times in 20ms, want a poll, not one look", n)
	}
}

// A condition that comes true while the poll sleeps past the deadline is
// seen: the last check runs after the deadline.
func TestEventuallyChecksOnceMoreAtTheDeadline(t *testing.T) {
	start := time.Now()
	r := &recorder{TB: t}
	Eventually(r, 30*time.Millisecond, "the deadline", func() bool { return time.Since(start) >= 30*time.Millisecond })
	if r.failed != "" {
		t.Fatalf("failed: %s", r.failed)
	}
}

func TestUntilEndsWithItsContext(t *testing.T) {
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	start := time.Now()
	if Until(ctx, time.Hour, func() bool { return false }) {
		t.Fatal("Until = true for a condition that never holds")
	}
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Until took %s after its context ended", d)
	}
	if !Until(t.Context(), time.Hour, func() bool { return true }) {
		t.Fatal("Until = false for a condition that holds")
	}
}

func TestCAIssuesCertificatesForLoopbackThatOnlyItsPoolTrusts(t *testing.T) {
	ca, other := NewCA(t), NewCA(t)
	certPEM, keyPEM := ca.Issue(t, "first")
	pair, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		t.Fatalf("the issued pair does not load: %v", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	if leaf.Subject.CommonName != "first" {
		t.Errorf("common name %q, want first", leaf.Subject.CommonName)
	}
	tests := []struct {
		name    string
		roots   *x509.CertPool
		host    string
		wantErr bool
	}{
		{"its own pool for 127.0.0.1", ca.Pool, "127.0.0.1", false},
		{"another CA's pool", other.Pool, "127.0.0.1", true},
		{"another address", ca.Pool, "127.0.0.2", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := leaf.Verify(x509.VerifyOptions{Roots: tt.roots, DNSName: tt.host, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}})
			if (err != nil) != tt.wantErr {
				t.Fatalf("Verify error %v, want error %v", err, tt.wantErr)
			}
		})
	}
	block, _ := pem.Decode(ca.CertPEM())
	if block == nil || block.Type != "CERTIFICATE" {
		t.Fatalf("CertPEM is not a PEM certificate: %q", ca.CertPEM())
	}
}

func TestCAWritePairServesOverTLS(t *testing.T) {
	ca := NewCA(t)
	dir := t.TempDir()
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.WritePair(t, certFile, keyFile, "served")
	pair, err := tls.LoadX509KeyPair(certFile, keyFile)
	if err != nil {
		t.Fatalf("the written pair does not load: %v", err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", &tls.Config{Certificates: []tls.Certificate{pair}})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		_ = c.(*tls.Conn).Handshake()
	}()
	c, err := tls.Dial("tcp", ln.Addr().String(), &tls.Config{RootCAs: ca.Pool})
	if err != nil {
		t.Fatalf("handshake with the CA's pool: %v", err)
	}
	defer c.Close()
	if cn := c.ConnectionState().PeerCertificates[0].Subject.CommonName; cn != "served" {
		t.Errorf("served %q, want served", cn)
	}
	if _, err := os.Stat(certFile + ".new"); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the temporary file stayed behind: %v", err)
	}
}

// echoServer answers each line with the same line prefixed by name.
func echoServer(t *testing.T, name string) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ServeConns(t, ln, func(c net.Conn) {
		sc := bufio.NewScanner(c)
		for sc.Scan() {
			if _, err := fmt.Fprintf(c, "%s:%s\n", name, sc.Text()); err != nil {
				return
			}
		}
	})
	return ln.Addr().String()
}

// dial connects to addr and closes the connection when the test ends.
func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// roundTrip sends line through c and reads the answer.
func roundTrip(c net.Conn, line string) (string, error) {
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := fmt.Fprintf(c, "%s\n", line); err != nil {
		return "", err
	}
	answer, err := bufio.NewReader(c).ReadString('\n')
	return strings.TrimSuffix(answer, "\n"), err
}

func TestProxyForwardsToTheFirstBackendThatAccepts(t *testing.T) {
	tests := []struct {
		name     string
		backends func(t *testing.T) []string
		want     string
	}{
		{"one backend", func(t *testing.T) []string { return []string{echoServer(t, "a")} }, "a:hello"},
		{"the first of two", func(t *testing.T) []string { return []string{echoServer(t, "a"), echoServer(t, "b")} }, "a:hello"},
		{"past a dead one", func(t *testing.T) []string { return []string{FreeAddr(t), echoServer(t, "b")} }, "b:hello"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := StartProxy(t, tt.backends(t)...)
			c := dial(t, p.Addr())
			if got, err := roundTrip(c, "hello"); got != tt.want {
				t.Fatalf("answer %q (%v), want %q", got, err, tt.want)
			}
		})
	}
}

func TestProxyCutDropsConnectionsUntilRestored(t *testing.T) {
	p := StartProxy(t, echoServer(t, "a"))
	c := dial(t, p.Addr())
	if got, err := roundTrip(c, "before"); got != "a:before" {
		t.Fatalf("answer %q (%v) before the cut", got, err)
	}
	Eventually(t, time.Minute, "the connection to be tracked", func() bool { return p.Open() == 1 })
	p.Cut()
	if got, err := roundTrip(c, "during"); err == nil {
		t.Fatalf("a connection through a cut proxy answered %q", got)
	}
	refused := dial(t, p.Addr())
	_ = refused.SetReadDeadline(time.Now().Add(time.Minute))
	if n, err := refused.Read(make([]byte, 1)); err != io.EOF {
		t.Fatalf("a new connection through a cut proxy read %d bytes, %v; want EOF", n, err)
	}
	p.Restore()
	again := dial(t, p.Addr())
	if got, err := roundTrip(again, "after"); got != "a:after" {
		t.Fatalf("answer %q (%v) after Restore", got, err)
	}
}

func TestClockMovesOnlyWhenAdvanced(t *testing.T) {
	start := time.Date(2026, 11, 25, 11, 32, 43, 0, time.UTC)
	c := NewClock(start)
	if !c.Now().Equal(start) {
		t.Fatalf("Now = %s, want %s", c.Now(), start)
	}
	c.Advance(90 * time.Second)
	if want := start.Add(90 * time.Second); !c.Now().Equal(want) {
		t.Fatalf("Now = %s after Advance, want %s", c.Now(), want)
	}
	at := start.Add(time.Hour)
	c.AdvanceTo(at)
	if !c.Now().Equal(at) {
		t.Fatalf("Now = %s after AdvanceTo, want %s", c.Now(), at)
	}
}

func TestClockTimersFireWhenTheClockPassesThem(t *testing.T) {
	c := NewClock(time.Date(2026, 11, 25, 11, 32, 43, 0, time.UTC))
	var fired []string
	record := func(name string) func() { return func() { fired = append(fired, name) } }
	late := c.AfterFunc(3*time.Second, record("late"))
	c.AfterFunc(time.Second, record("early"))
	stopped := c.AfterFunc(2*time.Second, record("stopped"))
	moved := c.AfterFunc(time.Second, record("moved"))

	if !stopped.Stop() || stopped.Stop() {
		t.Fatal("Stop should report an armed timer once")
	}
	if !moved.Reset(5 * time.Second) {
		t.Fatal("Reset of an armed timer should report it was armed")
	}
	c.Advance(500 * time.Millisecond)
	if len(fired) != 0 {
		t.Fatalf("fired %v before any timer was due", fired)
	}
	c.Advance(3 * time.Second)
	if !slices.Equal(fired, []string{"early", "late"}) {
		t.Fatalf("fired %v at 3.5 s, want early then late", fired)
	}
	if late.Stop() {
		t.Fatal("Stop of a timer that fired reported it armed")
	}
	c.Advance(2 * time.Second)
	if !slices.Equal(fired, []string{"early", "late", "moved"}) {
		t.Fatalf("fired %v at 5.5 s, want the reset timer too", fired)
	}

	now := make(chan struct{})
	c.AfterFunc(0, func() { close(now) })
	select {
	case <-now:
	case <-time.After(10 * time.Second):
		t.Fatal("a timer of no duration did not fire on its own")
	}
}

func TestBufferTakesWritesFromManyGoroutines(t *testing.T) {
	var b Buffer
	done := make(chan struct{})
	for range 4 {
		go func() {
			defer func() { done <- struct{}{} }()
			for range 100 {
				fmt.Fprintln(&b, "line")
			}
		}()
	}
	for range 4 {
		<-done
	}
	if n := strings.Count(b.String(), "line\n"); n != 400 {
		t.Fatalf("%d lines, want 400", n)
	}
	if !b.Contains("line") || b.Contains("other") {
		t.Fatal("Contains does not report what was written")
	}
}

func TestFreeAddrIsALoopbackAddressAServerCanTake(t *testing.T) {
	addr := FreeAddr(t)
	host, _, err := net.SplitHostPort(addr)
	if err != nil || host != "127.0.0.1" {
		t.Fatalf("FreeAddr = %q (%v), want 127.0.0.1:<port>", addr, err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen on %s: %v", addr, err)
	}
	ln.Close()
}

func TestMatchesGeneratedNamesTheFirstDifferentLine(t *testing.T) {
	path := filepath.Join(t.TempDir(), "gen.txt")
	if err := os.WriteFile(path, []byte("a\nb\nc\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, want, failure string
	}{
		{"same", "a\nb\nc\n", ""},
		{"second line", "a\nx\nc\n", "first difference at line 2); regenerate"},
		{"longer", "a\nb\nc\nd\n", "first difference at line 4); regenerate"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := &recorder{TB: t}
			MatchesGenerated(rec, path, []byte(tt.want), "regenerate")
			if got := rec.failed; !strings.Contains(got, tt.failure) || (tt.failure == "") != (got == "") {
				t.Errorf("failure %q, want one containing %q", got, tt.failure)
			}
		})
	}
	rec := &recorder{TB: t}
	MatchesGenerated(rec, filepath.Join(t.TempDir(), "missing"), nil, "regenerate")
	if !strings.Contains(rec.failed, "regenerate") {
		t.Errorf("a missing file: %q", rec.failed)
	}
}
