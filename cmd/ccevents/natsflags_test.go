package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/jwt/v2"
	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/ccevents/ccevents/internal/natstest"
)

func writeFile(t *testing.T, name string, data []byte) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	return path
}

// operatorServer runs a server in operator mode (JWT accounts, as nsc sets
// up) and returns its URL and a .creds file of one of its users.
func operatorServer(t *testing.T) (url, credsFile string) {
	t.Helper()
	okp, _ := nkeys.CreateOperator()
	opub, _ := okp.PublicKey()
	oc := jwt.NewOperatorClaims(opub)
	akp, _ := nkeys.CreateAccount()
	apub, _ := akp.PublicKey()
	ajwt, err := jwt.NewAccountClaims(apub).Encode(okp)
	if err != nil {
		t.Fatal(err)
	}
	ukp, _ := nkeys.CreateUser()
	upub, _ := ukp.PublicKey()
	useed, _ := ukp.Seed()
	ujwt, err := jwt.NewUserClaims(upub).Encode(akp)
	if err != nil {
		t.Fatal(err)
	}
	creds, err := jwt.FormatUserConfig(ujwt, useed)
	if err != nil {
		t.Fatal(err)
	}
	resolver := &server.MemAccResolver{}
	if err := resolver.Store(apub, ajwt); err != nil {
		t.Fatal(err)
	}
	return natstest.Server(t, &server.Options{TrustedOperators: []*jwt.OperatorClaims{oc}, AccountResolver: resolver}).ClientURL(), writeFile(t, "user.creds", creds)
}

// TestEachNATSCredentialFlagSignsIn connects with every kind of credential
// ccevents' own connection can present to an external cluster, to a server
// that requires exactly that kind, and checks that without it the server
// refuses.
func TestEachNATSCredentialFlagSignsIn(t *testing.T) {
	ukp, _ := nkeys.CreateUser()
	upub, _ := ukp.PublicKey()
	useed, _ := ukp.Seed()
	credsURL, credsFile := operatorServer(t)
	tests := []struct {
		name  string
		url   string
		flags natsClientFlags
	}{
		{"--nats-creds", credsURL, natsClientFlags{Creds: credsFile}},
		{"--nats-nkey", natstest.Server(t, &server.Options{Nkeys: []*server.NkeyUser{{Nkey: upub}}}).ClientURL(), natsClientFlags{Nkey: writeFile(t, "id.nk", useed)}},
		{"--nats-user", natstest.Server(t, &server.Options{Users: []*server.User{{Username: "gw", Password: "s3cret"}}}).ClientURL(), natsClientFlags{User: "gw", Password: "s3cret"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.flags.validate(); err != nil {
				t.Fatal(err)
			}
			opts, err := tt.flags.options()
			if err != nil {
				t.Fatal(err)
			}
			nc, err := nats.Connect(tt.url, append(opts, nats.Timeout(5*time.Second))...)
			if err != nil {
				t.Fatalf("connect with %s: %v", tt.name, err)
			}
			nc.Close()
			if nc, err := nats.Connect(tt.url, nats.Timeout(5*time.Second)); err == nil {
				nc.Close()
				t.Fatal("the server also admits a client without credentials")
			}
		})
	}
}

func TestNATSCredentialFlagsRefuseContradictions(t *testing.T) {
	seed := writeFile(t, "id.nk", []byte("SU"))
	tests := []struct {
		flags natsClientFlags
		want  string
	}{
		{natsClientFlags{Nkey: seed, User: "u", Password: "p"}, "give one NATS credential"},
		{natsClientFlags{User: "u"}, "--nats-user and --nats-password go together"},
		{natsClientFlags{TLSCert: seed}, "--nats-tls-cert and --nats-tls-key go together"},
		{natsClientFlags{Creds: "/nonexistent/user.creds"}, "--nats-creds"},
	}
	for _, tt := range tests {
		if err := tt.flags.validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%+v: %v, want %q", tt.flags, err, tt.want)
		}
	}
}
