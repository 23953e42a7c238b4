package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/ccevents/ccevents/internal/wstest"
	"github.com/gobwas/ws"
)

// servedName returns the common name of the certificate served at addr.
func servedName(t *testing.T, addr string, pool *x509.CertPool) string {
	t.Helper()
	conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: pool})
	if err != nil {
		t.Fatalf("TLS dial: %v", err)
	}
	defer conn.Close()
	return conn.ConnectionState().PeerCertificates[0].Subject.CommonName
}

// dialWSS opens a wss:// client trusting pool.
func dialWSS(t *testing.T, url string, pool *x509.CertPool) *wstest.Conn {
	t.Helper()
	return wstest.DialWith(t, url, ws.Dialer{TLSConfig: &tls.Config{RootCAs: pool}})
}

func TestWSSServesARenewedCertificateWithoutRestart(t *testing.T) {
	dir := t.TempDir()
	ca := testkit.NewCA(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.WritePair(t, certFile, keyFile, "first")
	e := newEnv(t, Config{TLSCertFile: certFile, TLSKeyFile: keyFile, TLSReloadInterval: 10 * time.Millisecond})
	addr := strings.TrimPrefix(e.url, "ws://")
	wss := "wss://" + addr

	acc := e.account("")
	c := dialWSS(t, wss, ca.Pool)
	c.Subscribe(e.token(acc), acc, "qubicle.queue."+acc+".*")
	if got := servedName(t, addr, ca.Pool); got != "first" {
		t.Fatalf("served %q, want first", got)
	}

	ca.WritePair(t, certFile, keyFile, "renewed")
	testkit.Eventually(t, waitLong, "the renewed certificate to be served", func() bool { return servedName(t, addr, ca.Pool) == "renewed" })
	// The open connection carries on; new ones use the new certificate.
	e.publish("qubicle.queue." + acc + ".Q1.join")
	if ev := c.Event(); ev.RoutingKey != "qubicle.queue."+acc+".Q1.join" {
		t.Fatalf("got %s", ev.Raw)
	}
	dialWSS(t, wss, ca.Pool).Ping()

	// Plain ws:// is not spoken on a TLS listener.
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, "GET / HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n")
	_ = nc.SetReadDeadline(time.Now().Add(waitLong))
	if p, _ := io.ReadAll(nc); strings.Contains(string(p), "101 Switching Protocols") {
		t.Fatal("a plain-text upgrade was accepted on the TLS listener")
	}
}

func TestNewRefusesIncompleteOrBadTLSFiles(t *testing.T) {
	e := newEnv(t, Config{})
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.pem")
	if err := os.WriteFile(bad, []byte("not PEM"), 0o600); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name      string
		cert, key string
		want      string
	}{
		{"certificate without key", bad, "", "wss needs both a certificate file and a key file"},
		{"key without certificate", "", bad, "wss needs both a certificate file and a key file"},
		{"unreadable pair", bad, bad, "load TLS certificate"},
		{"missing files", filepath.Join(dir, "nope.crt"), filepath.Join(dir, "nope.key"), "nope.crt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := New(Config{TLSCertFile: tt.cert, TLSKeyFile: tt.key}, e.bus, e.auth)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("New = %v, want an error mentioning %q", err, tt.want)
			}
		})
	}
}
