package tlsreload

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"io"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// ca is a test certificate authority that issues certificates for 127.0.0.1.
type ca struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newCA(t *testing.T) *ca {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "test CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &ca{cert: cert, key: key, pool: pool}
}

// issue returns PEM certificate and key for 127.0.0.1 named cn.
func (c *ca) issue(t *testing.T, cn string) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: cn},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(90 * 24 * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, c.cert, &key.PublicKey, c.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder})
}

// replace writes data to path the way deployment tools do: a new file
// renamed over the old one.
func replace(t *testing.T, path string, data []byte) {
	t.Helper()
	tmp := path + ".new"
	if err := os.WriteFile(tmp, data, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

type fixture struct {
	ca                *ca
	certFile, keyFile string
	addr              string
}

// setup writes a pair named "first", loads it and serves TLS with it on
// 127.0.0.1.
func setup(t *testing.T, log *slog.Logger) (*fixture, *Certificate) {
	t.Helper()
	dir := t.TempDir()
	f := &fixture{ca: newCA(t), certFile: filepath.Join(dir, "tls.crt"), keyFile: filepath.Join(dir, "tls.key")}
	cp, kp := f.ca.issue(t, "first")
	replace(t, f.certFile, cp)
	replace(t, f.keyFile, kp)
	c, err := Load(f.certFile, f.keyFile, log)
	if err != nil {
		t.Fatalf("Load: %v", err)
	}
	ln, err := tls.Listen("tcp", "127.0.0.1:0", c.TLSConfig())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	f.addr = ln.Addr().String()
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				_ = nc.SetDeadline(time.Now().Add(5 * time.Second))
				_ = nc.(*tls.Conn).Handshake()
				_, _ = io.Copy(io.Discard, nc)
			}()
		}
	}()
	return f, c
}

// served connects and returns the common name of the certificate the
// server presents, verified against the test CA.
func (f *fixture) served(t *testing.T) string {
	t.Helper()
	conn, err := tls.Dial("tcp", f.addr, &tls.Config{RootCAs: f.ca.pool, ServerName: "127.0.0.1"})
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
	cp, kp := f.ca.issue(t, "second")
	replace(t, f.keyFile, kp)
	replace(t, f.certFile, cp)
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
	cp, kp := f.ca.issue(t, "second")
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
				replace(t, f.certFile, []byte("not a certificate\n"))
			},
			wantErr: "tls.crt",
		},
		{
			name: "key does not match the certificate",
			breakIt: func(t *testing.T, f *fixture) {
				cp, _ := f.ca.issue(t, "second")
				replace(t, f.certFile, cp)
			},
			wantErr: "private key does not match public key",
		},
		{
			name: "key file is half written",
			breakIt: func(t *testing.T, f *fixture) {
				cp, kp := f.ca.issue(t, "second")
				replace(t, f.certFile, cp)
				replace(t, f.keyFile, kp[:len(kp)/2])
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
				replace(t, f.certFile, nil)
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
			cp, kp := f.ca.issue(t, "third")
			replace(t, f.keyFile, kp)
			replace(t, f.certFile, cp)
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
	authority := newCA(t)
	cp, _ := authority.issue(t, "a")
	_, otherKey := authority.issue(t, "b")
	certFile, keyFile := filepath.Join(dir, "c.pem"), filepath.Join(dir, "k.pem")
	replace(t, certFile, cp)
	replace(t, keyFile, otherKey)
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

// logBuffer collects log output from the watcher goroutine.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func TestWatchServesARenewedCertificateAndLogsFailures(t *testing.T) {
	var logs logBuffer
	f, c := setup(t, slog.New(slog.NewTextHandler(&logs, nil)))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { c.Watch(ctx, 5*time.Millisecond); close(done) }()
	defer func() { cancel(); <-done }()

	replace(t, f.certFile, []byte("garbage"))
	waitFor(t, func() bool { return strings.Contains(logs.String(), "TLS certificate not reloaded") })
	if got := f.served(t); got != "first" {
		t.Fatalf("served %q while the files are bad, want first", got)
	}

	cp, kp := f.ca.issue(t, "renewed")
	replace(t, f.keyFile, kp)
	replace(t, f.certFile, cp)
	waitFor(t, func() bool { return f.served(t) == "renewed" })
	waitFor(t, func() bool { return strings.Contains(logs.String(), "TLS certificate reloaded") })
}

func TestWatchStopsWhenTheContextEnds(t *testing.T) {
	_, c := setup(t, nil)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	done := make(chan struct{})
	go func() { c.Watch(ctx, time.Millisecond); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Watch did not return after its context ended")
	}
}

// waitFor polls cond until it holds, failing the test after a generous
// deadline (a hang, not a speed requirement).
func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(errors.New("condition not met within 10s"))
		}
		time.Sleep(5 * time.Millisecond)
	}
}
