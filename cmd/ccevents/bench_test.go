package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/loadtest"
)

func runBench(t *testing.T, args ...string) (stdout string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := newBenchCommand(&out, &errb)
	cmd.FlagSet.SetOutput(&errb)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	err = cmd.ParseAndRun(ctx, args)
	return out.String(), err
}

func TestBenchRefusesTargetsOffThisMachine(t *testing.T) {
	tests := []struct {
		name string
		args []string
	}{
		{"gateway", []string{"--ws-url", "ws://10.0.0.1:5555", "--api-key", "k"}},
		{"api", []string{"--api-url", "http://example.com:8000", "--api-key", "k"}},
		{"nats", []string{"--nats", "nats://192.168.0.9:4222", "--api-key", "k"}},
		{"peer", []string{"--peer-only", "--peer", "ws://10.1.1.1:8080"}},
		{"source address", []string{"--api-key", "k", "--source-ips", "10.0.0.1-10.0.0.5"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := runBench(t, tt.args...)
			if err == nil || !strings.Contains(err.Error(), "127.0.0.x") {
				t.Fatalf("error %v, want a refusal naming 127.0.0.x", err)
			}
		})
	}
}

func TestBenchRefusesConflictingOrBadFlags(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"--api-key", "k", "--rate", "10", "--ramp", "1:2:1"}, "either --rate or --ramp"},
		{[]string{"--api-key", "k", "--ramp", "5:1:1"}, "--ramp"},
		{[]string{"--api-key", "k", "--bindings", "everyone=1"}, "--bindings"},
		{[]string{"--peer-only"}, "--peer-only needs --peer"},
		{[]string{"--api-key", "k", "extra"}, "no arguments"},
	}
	for _, tt := range tests {
		_, err := runBench(t, tt.args...)
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%v: error %v, want one mentioning %q", tt.args, err, tt.want)
		}
	}
}

func TestBenchReadsTheRootKeyFromTheDataDir(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "root.json"), []byte(`{"account_id":"a","api_key":"the-root-key"}`), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg := benchConfig{DataDir: dir, Bindings: "account=1", SourceIPs: "127.0.0.1", Rate: 10, WSURL: "ws://127.0.0.1:5555",
		APIURL: "http://127.0.0.1:8000", NATS: "nats://127.0.0.1:4222", Conns: 1, Queues: 1, Duration: time.Second}
	// Publishing needs a NATS credential: the one in the data dir, or none.
	if _, err := cfg.scenario(); err == nil || !strings.Contains(err.Error(), "no NATS credential") {
		t.Fatalf("scenario without NATS credentials: %v", err)
	}
	kp, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := kp.Seed()
	if err := os.MkdirAll(filepath.Join(dir, "nats"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(bus.SeedFile(dir, bus.IdentityCCEvents), seed, 0o600); err != nil {
		t.Fatal(err)
	}
	sc, err := cfg.scenario()
	if err != nil {
		t.Fatal(err)
	}
	if sc.APIKey != "the-root-key" || sc.GatewayURL == "" || len(sc.NATSOptions) == 0 {
		t.Fatalf("scenario key %q gateway %q, %d NATS options", sc.APIKey, sc.GatewayURL, len(sc.NATSOptions))
	}
	cfg.DataDir = t.TempDir() // no root.json
	if _, err := cfg.scenario(); err == nil || !strings.Contains(err.Error(), "--api-key") {
		t.Fatalf("error %v, want advice to give --api-key", err)
	}
}

func TestBenchMeasuresThePeerAndPrintsJSON(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{DataDir: t.TempDir(), Memory: true, Listen: "127.0.0.1:0", WebsocketListen: "127.0.0.1:0", Name: "bench-test"})
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	// The peer and the publisher sign in as ccevents, as an operator's
	// bench does with --data-dir of the server.
	out, err := runBench(t, "--peer-only", "--peer", b.Server().WebsocketURL(), "--nats", b.Server().ClientURL(),
		"--nats-nkey", b.SeedFile(bus.IdentityCCEvents),
		"--conns", "6", "--bindings", "account=1,queue=1", "--queues", "2", "--recipients", "0",
		"--rate", "200", "--duration", "300ms", "--warmup", "0s", "--settle", "0s", "--json")
	if err != nil {
		t.Fatal(err)
	}
	var rep loadtest.Report
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("output is not the JSON report: %v\n%s", err, out)
	}
	if rep.Peer == nil || rep.Peer.Connected != 6 || rep.Peer.Drops != 0 || len(rep.Peer.Steps) != 1 || rep.Peer.Steps[0].Delivered == 0 {
		t.Fatalf("peer report %+v", rep.Peer)
	}
	if rep.Scenario.Mix != "account=0.5,queue=0.5" {
		t.Fatalf("scenario %+v", rep.Scenario)
	}
}
