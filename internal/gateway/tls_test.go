package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/wstest"
	"github.com/gobwas/ws"
)

// testCA issues certificates for 127.0.0.1.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pool *x509.CertPool
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, _ := x509.ParseCertificate(der)
	pool := x509.NewCertPool()
	pool.AddCert(cert)
	return &testCA{cert: cert, key: key, pool: pool}
}

// writePair writes a certificate for 127.0.0.1 named cn and its key, each
// as a new file renamed over the old one.
func (ca *testCA) writePair(t *testing.T, certFile, keyFile, cn string) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	serial, _ := rand.Int(rand.Reader, big.NewInt(1<<62))
	tmpl := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: cn},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		IPAddresses: []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:    x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kder, _ := x509.MarshalECPrivateKey(key)
	for path, data := range map[string][]byte{
		keyFile:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}),
		certFile: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
	} {
		if err := os.WriteFile(path+".tmp", data, 0o600); err != nil {
			t.Fatal(err)
		}
		if err := os.Rename(path+".tmp", path); err != nil {
			t.Fatal(err)
		}
	}
}

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
	ca := newTestCA(t)
	certFile, keyFile := filepath.Join(dir, "tls.crt"), filepath.Join(dir, "tls.key")
	ca.writePair(t, certFile, keyFile, "first")
	e := newEnv(t, Config{TLSCertFile: certFile, TLSKeyFile: keyFile, TLSReloadInterval: 10 * time.Millisecond})
	addr := strings.TrimPrefix(e.url, "ws://")
	wss := "wss://" + addr

	acc := e.account("")
	c := dialWSS(t, wss, ca.pool)
	c.Subscribe(e.token(acc), acc, "qubicle.queue."+acc+".*")
	if got := servedName(t, addr, ca.pool); got != "first" {
		t.Fatalf("served %q, want first", got)
	}

	ca.writePair(t, certFile, keyFile, "renewed")
	waitFor(t, "the renewed certificate to be served", func() bool { return servedName(t, addr, ca.pool) == "renewed" })
	// The open connection carries on; new ones use the new certificate.
	e.publish("qubicle.queue." + acc + ".Q1.join")
	if ev := c.Event(); ev.RoutingKey != "qubicle.queue."+acc+".Q1.join" {
		t.Fatalf("got %s", ev.Raw)
	}
	dialWSS(t, wss, ca.pool).Ping()

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
