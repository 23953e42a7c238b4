package main

import (
	"bytes"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nkeys"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/loadtest"
	"github.com/ccevents/ccevents/internal/natstest"
)

func runBench(t *testing.T, args ...string) (stdout string, err error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := newBenchCommand(&out, &errb)
	cmd.FlagSet.SetOutput(&errb)
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
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
		{[]string{"--api-key", "k", "--accounts", "10", "--agents", "0", "--wallboards", "0"}, "at least one agent or wallboard"},
		{[]string{"--api-key", "k", "--server-pid", "one"}, "--server-pid"},
		{[]string{"--api-key", "k", "--nats-tls-cert", "c.pem"}, "--nats-tls-key"},
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
	cfg := benchConfig{DataDir: dir, Bindings: "account=1", SourceIPs: "127.0.0.1", Rate: 10, WSURLs: stringList{"ws://127.0.0.1:5555"},
		APIURL: "http://127.0.0.1:8000", NATS: "nats://127.0.0.1:4222", Conns: 1, Queues: 1, Duration: time.Second}
	// Publishing needs a NATS credential: the one in the data dir, or none.
	if _, err := cfg.scenario(nil); err == nil || !strings.Contains(err.Error(), "no NATS credential") {
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
	sc, err := cfg.scenario(nil)
	if err != nil {
		t.Fatal(err)
	}
	if sc.APIKey != "the-root-key" || len(sc.GatewayURLs) != 1 || len(sc.NATSOptions) == 0 {
		t.Fatalf("scenario key %q gateways %q, %d NATS options", sc.APIKey, sc.GatewayURLs, len(sc.NATSOptions))
	}
	// Connections split over processes need the way to start them, which
	// the command gives.
	cfg.Procs, cfg.Conns = 2, 10
	if _, err := cfg.scenario(nil); err == nil || !strings.Contains(err.Error(), "Spawn") {
		t.Fatalf("--procs 2 without a way to start processes: %v", err)
	}
	if _, err := cfg.scenario(func(context.Context) *exec.Cmd { return nil }); err != nil {
		t.Fatalf("--procs 2: %v", err)
	}
	cfg.Procs, cfg.Conns = 1, 1
	cfg.DataDir = t.TempDir() // no root.json
	if _, err := cfg.scenario(nil); err == nil || !strings.Contains(err.Error(), "--api-key") {
		t.Fatalf("error %v, want advice to give --api-key", err)
	}
}

func TestBenchMeasuresThePeerAndPrintsJSON(t *testing.T) {
	b := natstest.Bus(t, bus.Config{Memory: true, Listen: "127.0.0.1:0", WebsocketListen: "127.0.0.1:0", Name: "bench-test"})
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
	// The step publishes its 60 events however busy the machine (the
	// publisher catches up); how many arrive within the step's window is
	// a measurement, not a promise, so deliveries are counted over the run.
	if rep.Peer == nil || rep.Peer.Connected != 6 || rep.Peer.Drops != 0 || len(rep.Peer.Steps) != 1 || rep.Peer.Steps[0].Published != 60 || rep.Peer.Delivered == 0 {
		t.Fatalf("peer report %+v", rep.Peer)
	}
	if rep.Scenario.Mix != "account=0.5,queue=0.5" {
		t.Fatalf("scenario %+v", rep.Scenario)
	}
}

// A multi-tenant run: accounts with agents and wallboards, each account's
// events in the demo's mix, against the peer (the gateway side needs a
// whole ccevents and is tested in internal/loadtest).
func TestBenchRunsManyTenantsAgainstThePeer(t *testing.T) {
	b := natstest.Bus(t, bus.Config{Memory: true, Listen: "127.0.0.1:0", WebsocketListen: "127.0.0.1:0", Name: "bench-test"})
	out, err := runBench(t, "--peer-only", "--peer", b.Server().WebsocketURL(), "--nats", b.Server().ClientURL(),
		"--nats-nkey", b.SeedFile(bus.IdentityCCEvents),
		"--accounts", "5", "--agents", "2", "--wallboards", "1",
		"--rate", "200", "--duration", "300ms", "--warmup", "0s", "--settle", "0s")
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"15 connections (5 accounts × (2 agents serving 2 of 3 queues + 1 wallboards))", "peer      15/15"} {
		if !strings.Contains(out, want) {
			t.Fatalf("report lacks %q:\n%s", want, out)
		}
	}
}
