package main

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/testkit"
)

// TestTLSClientCertificateIsTheCredential connects with --nats-tls-ca,
// --nats-tls-cert and --nats-tls-key to a server with verify_and_map, as
// docs/operations.md offers for an external cluster: the certificate's
// subject is the NATS user, so the connection gets that user's
// permissions; a certificate of the same CA that maps to no user, and no
// certificate, are refused.
func TestTLSClientCertificateIsTheCredential(t *testing.T) {
	ca := testkit.NewCA(t)
	dir := t.TempDir()
	file := func(name string) string { return filepath.Join(dir, name) }
	ca.WritePair(t, file("server.pem"), file("server.key"), "nats")
	ca.WritePair(t, file("gateway.pem"), file("gateway.key"), "ccevents-gateway")
	ca.WritePair(t, file("stranger.pem"), file("stranger.key"), "stranger")
	caFile := writeFile(t, "ca.pem", ca.CertPEM())
	tlsConfig, err := server.GenTLSConfig(&server.TLSConfigOpts{
		CertFile: file("server.pem"), KeyFile: file("server.key"), CaFile: caFile, Verify: true, Map: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	url := natstest.Server(t, &server.Options{
		TLSConfig: tlsConfig, TLSVerify: true, TLSMap: true, TLSTimeout: 5,
		Users: []*server.User{{
			Username:    "CN=ccevents-gateway",
			Permissions: &server.Permissions{Publish: &server.SubjectPermission{Allow: []string{"allowed.>"}}},
		}},
	}).ClientURL()

	connect := func(flags natsClientFlags) (*nats.Conn, error) {
		t.Helper()
		if err := flags.validate(); err != nil {
			t.Fatal(err)
		}
		opts, err := flags.options()
		if err != nil {
			t.Fatal(err)
		}
		return nats.Connect(url, append(opts, nats.Timeout(5*time.Second))...)
	}

	nc, err := connect(natsClientFlags{TLSCA: caFile, TLSCert: file("gateway.pem"), TLSKey: file("gateway.key")})
	if err != nil {
		t.Fatalf("connect with the gateway's certificate: %v", err)
	}
	defer nc.Close()
	denied := make(chan error, 1)
	nc.SetErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) { denied <- err })
	if err := nc.Publish("allowed.x", nil); err != nil {
		t.Fatal(err)
	}
	if err := nc.Publish("forbidden.x", nil); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-denied:
		if !strings.Contains(err.Error(), "Permissions Violation for Publish to \"forbidden.x\"") {
			t.Fatalf("publishing outside the mapped user's permissions: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("publishing outside the mapped user's permissions was not refused: the certificate was not mapped to that user")
	}

	for name, flags := range map[string]natsClientFlags{
		"a certificate that maps to no user": {TLSCA: caFile, TLSCert: file("stranger.pem"), TLSKey: file("stranger.key")},
		"no certificate":                     {TLSCA: caFile},
	} {
		if nc, err := connect(flags); err == nil {
			nc.Close()
			t.Errorf("the server admits a client with %s", name)
		}
	}
}
