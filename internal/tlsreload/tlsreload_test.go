package tlsreload

import (
	"context"
	"crypto/tls"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/testkit"
)

type fixture struct {
	ca                *testkit.CA
	certFile, keyFile string
	addr              string
}

// setup writes a pair named "first", loads it and serves TLS with it on
// 127.0.0.1.
func setup(t *testing.T, log *slog.Logger) (*fixture, *Certificate) {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{ca: testkit.NewCA(t), certFile: filepath.Join(dir, "tls.crt"), keyFile: filepath.Join(dir, "tls.key")}
	cp, kp := f.ca.Issue(t, "first")
	testkit.ReplaceFile(t, f.certFile, cp)
	testkit.ReplaceFile(t, f.keyFile, kp)
	c, err := Load(f.certFile, f.keyFile, log)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", c.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	testkit.ServeConns(t, ln, func(nc net.Conn) {
		_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
		_ = nc.(*tls.Conn).Handshake()
		_, _ = io.Copy(io.Discard, nc)
	})
	return f, c
}

// served connects and returns the common name of the certificate the
// server presents, verified against the test CA.
func (f *fixture) served(t *testing.T) string {
	t.Helper()
	conn, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: f.ca.Pool, ServerName: "127.0.0.1"})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

func TestReloadServesTheNewCertificateAfterTheFilesChange(t *testing.T) {
	f, c := setup(t, nil)
	if got := f.served(t); got != "first" {
		t.Fatalf("served %q before the change, want first", got)
	}
	if changed, err := c.Reload(); changed || err != nil {
		t.Fatalf("Reload with unchanged files = %v, %v; want false, nil", changed, err)
	}
	cp, kp := f.ca.Issue(t, "second")
	testkit.ReplaceFile(t, f.keyFile, kp)
	testkit.ReplaceFile(t, f.certFile, cp)
	changed, err := c.Reload()
	if !changed || err != nil {
		t.Fatalf("Reload after the change = %v, %v; want true, nil", changed, err)
	}
	if got := f.served(t); got != "second" {
		t.Fatalf("served %q after reload, want second", got)
	}
	if got := c.Leaf().Subject.CommonName; got != "second" {
		t.Fatalf("Leaf is %q, want second", got)
	}
}

func TestReloadPicksUpFilesRewrittenInPlace(t *testing.T) {
	f, c := setup(t, nil)
	cp, kp := f.ca.Issue(t, "second")
	if err := os.WriteFile(f.keyFile, kp, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.certFile, cp, 0o600); err != nil {
		t.Fatal(err)
	}
	// Coarse file systems may keep the old time for a quick rewrite; make
	// sure this one does not look unchanged.
	later := time.Now().Add(2 * time.Second)
	_ = os.Chtimes(f.certFile, later, later)
	if changed, err := c.Reload(); !changed || err != nil {
		t.Fatalf("Reload = %v, %v; want true, nil", changed, err)
	}
	if got := f.served(t); got != "second" {
		t.Fatalf("served %q, want second", got)
	}
}

func TestReloadKeepsTheOldCertificateWhenTheNewPairIsBad(t *testing.T) {
	tests := []struct {
		name    string
		breakIt func(t *testing.T, f *fixture)
		wantErr string
	}{
		{
			name: "certificate file is not PEM",
			breakIt: func(t *testing.T, f *fixture) {
				testkit.ReplaceFile(t, f.certFile, []byte("not a certificate\n"))
			},
			wantErr: "tls.crt",
		},
		{
			name: "key does not match the certificate",
			breakIt: func(t *testing.T, f *fixture) {
				cp, _ := f.ca.Issue(t, "second")
				testkit.ReplaceFile(t, f.certFile, cp)
			},
			wantErr: "private key does not match public key",
		},
		{
			name: "key file is half written",
			breakIt: func(t *testing.T, f *fixture) {
				cp, kp := f.ca.Issue(t, "second")
				testkit.ReplaceFile(t, f.certFile, cp)
				testkit.ReplaceFile(t, f.keyFile, kp[:len(kp)/2])
			},
			wantErr: "tls.key",
		},
		{
			name: "key file removed",
			breakIt: func(t *testing.T, f *fixture) {
				if err := os.Remove(f.keyFile); err != nil {
					t.Fatal(err)
				}
			},
			wantErr: "no such file",
		},
		{
			name: "certificate file empty",
			breakIt: func(t *testing.T, f *fixture) {
				testkit.ReplaceFile(t, f.certFile, nil)
			},
			wantErr: "tls.crt",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, c := setup(t, nil)
			tt.breakIt(t, f)
			changed, err := c.Reload()
			if changed || err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Reload = %v, %v; want false and an error mentioning %q", changed, err, tt.wantErr)
			}
			if got := f.served(t); got != "first" {
				t.Fatalf("served %q after a bad reload, want the old certificate (first)", got)
			}
			// Once the pair is good again it is picked up.
			cp, kp := f.ca.Issue(t, "third")
			testkit.ReplaceFile(t, f.keyFile, kp)
			testkit.ReplaceFile(t, f.certFile, cp)
			if changed, err := c.Reload(); !changed || err != nil {
				t.Fatalf("Reload after the fix = %v, %v; want true, nil", changed, err)
			}
			if got := f.served(t); got != "third" {
				t.Fatalf("served %q after the fix, want third", got)
			}
		})
	}
}

func TestLoadRefusesAnUnusablePair(t *testing.T) {
	dir := t.TempDir()
	authority := testkit.NewCA(t)
	cp, _ := authority.Issue(t, "a")
	_, otherKey := authority.Issue(t, "b")
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	testkit.ReplaceFile(t, certFile, cp)
	testkit.ReplaceFile(t, keyFile, otherKey)
	tests := []struct {
		name, cert, key, wantErr string
	}{
		{"missing certificate", filepath.Join(dir, "nope.pem"), keyFile, "nope.pem"},
		{"missing key", certFile, filepath.Join(dir, "nope.key"), "nope.key"},
		{"mismatched pair", certFile, keyFile, "does not match"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(tt.cert, tt.key, nil)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Load = %v, %v; want an error mentioning %q", c, err, tt.wantErr)
			}
		})
	}
}

func TestWatchServesARenewedCertificateAndLogsFailures(t *testing.T) {
	var logs testkit.Buffer
	f, c := setup(t, slog.New(slog.NewTextHandler(&logs, nil)))
	done := make(chan struct{})
	go func() { c.Watch(t.Context(), 5*time.Millisecond); close(done) }()
	t.Cleanup(func() { <-done }) // the test's context has ended by then

	testkit.ReplaceFile(t, f.certFile, []byte("garbage"))
	testkit.Eventually(t, 10*time.Second, "the failed reload to be logged", func() bool { return logs.Contains("TLS certificate not reloaded") })
	if got := f.served(t); got != "first" {
		t.Fatalf("served %q while the files are bad, want first", got)
	}

	cp, kp := f.ca.Issue(t, "renewed")
	testkit.ReplaceFile(t, f.keyFile, kp)
	testkit.ReplaceFile(t, f.certFile, cp)
	testkit.Eventually(t, 10*time.Second, "the renewed certificate to be served", func() bool { return f.served(t) == "renewed" })
	testkit.Eventually(t, 10*time.Second, "the reload to be logged", func() bool { return logs.Contains("TLS certificate reloaded") })
}

func TestWatchStopsWhenTheContextEnds(t *testing.T) {
	_, c := setup(t, nil)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	done := make(chan struct{})
	go func() { c.Watch(ctx, time.Millisecond); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after its context ended")
	}
}
