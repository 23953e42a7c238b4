package loadtest

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/natstest"
)

// childEnv makes the test binary act as a load tool child process, the way
// `ccevents bench` re-executes itself.
const childEnv = "LOADTEST_TEST_CHILD"

func TestMain(m *testing.M) {
	if os.Getenv(childEnv) == "1" {
		if err := ServeChild(context.Background(), os.Stdin, os.Stdout, nil); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func spawnTestChild(ctx context.Context) *exec.Cmd {
	cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), childEnv+"=1")
	cmd.Stderr = os.Stderr
	return cmd
}

// openBus runs a real embedded NATS server with JetStream, the QUBICLE
// stream and nats-server's own websocket listener: the peer.
func openBus(t *testing.T) *bus.Bus {
	t.Helper()
	return natstest.Bus(t, bus.Config{Memory: true, Listen: "127.0.0.1:0", WebsocketListen: "127.0.0.1:0", Name: "loadtest-" + t.Name()})
}

// startBus is openBus for tests that only need its NATS and peer URLs and
// the credential of ccevents' identity there.
func startBus(t *testing.T) (natsURL, wsURL string, as signIn) {
	t.Helper()
	b := openBus(t)
	return b.Server().ClientURL(), b.Server().WebsocketURL(), signInAs(t, b.SeedFile(bus.IdentityCCEvents))
}

// signIn is how a test's publisher and peer connections authenticate.
type signIn struct {
	opts []nats.Option
	peer PeerAuth
}

func signInAs(t *testing.T, seedFile string) signIn {
	t.Helper()
	opt, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	seed, err := os.ReadFile(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	return signIn{opts: []nats.Option{opt}, peer: PeerAuth{NkeySeed: strings.TrimSpace(string(seed))}}
}

// apply makes sc publish and connect to the peer as s.
// run runs sc signed in with s's credentials and fails the test if Run
// returns an error.
func (s signIn) run(t *testing.T, sc Scenario) *Report {
	t.Helper()
	sc.NATSOptions, sc.PeerAuth = s.opts, s.peer
	rep, err := Run(t.Context(), sc)
	if err != nil {
		t.Fatal(err)
	}
	return rep
}

func testLogger(t *testing.T) *slog.Logger {
	return slog.New(slog.NewTextHandler(tWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
}

type tWriter struct{ t *testing.T }

func (w tWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func TestRunAgainstNATSPeerDeliversEveryEvent(t *testing.T) {
	natsURL, wsURL, as := startBus(t)
	sc := Scenario{
		PeerURL: wsURL, NATSURL: natsURL,
		Conns: 20, Mix: Mix{KindAccount: 0.5, KindQueue: 0.25, KindRecipient: 0.25}, Queues: 2, Recipients: 2,
		Rates: []float64{200, 400}, StepDuration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond,
		PayloadBytes: 300, SourceIPs: mustAddrs(t, "127.0.0.1-127.0.0.3"), Logger: testLogger(t),
	}
	rep := as.run(t, sc)
	p := rep.Peer
	if p == nil || rep.Gateway != nil || rep.Ratios != nil {
		t.Fatalf("report targets: gateway %v, peer %v, ratios %v", rep.Gateway, rep.Peer, rep.Ratios)
	}
	if p.Connected != 20 || len(p.SetupErrors) != 0 {
		t.Fatalf("connected %d of 20, errors %v", p.Connected, p.SetupErrors)
	}
	if p.Published == 0 || p.PublishErrors != 0 {
		t.Fatalf("published %d, errors %d", p.Published, p.PublishErrors)
	}
	if p.Drops != 0 || p.Undelivered != 0 || p.Duplicates != 0 || p.OtherCloses != 0 || p.SlowConsumerCloses != 0 || p.Unparsed != 0 {
		t.Fatalf("drops %d, undelivered %d, dups %d, closes %d/%d, unparsed %d, errors %v",
			p.Drops, p.Undelivered, p.Duplicates, p.SlowConsumerCloses, p.OtherCloses, p.Unparsed, p.Errors)
	}
	// 10 account-wide connections see every event; the 10 others see a
	// quarter of them each (one of 4 entities).
	if want := 10*p.Published + 10*p.Published/4; p.Delivered < want-10 || p.Delivered > want+10 {
		t.Fatalf("delivered %d, want about %d for %d published", p.Delivered, want, p.Published)
	}
	if len(p.Steps) != 2 {
		t.Fatalf("%d steps, want 2", len(p.Steps))
	}
	for _, st := range p.Steps {
		if st.Delivered == 0 || st.Latency.Count != st.Delivered || st.Latency.P99 <= 0 || st.Latency.Max < st.Latency.P99 {
			t.Fatalf("step %+v", st)
		}
		if st.OfferedPerSecond <= 0 || st.DeliveredPerSecond <= 0 {
			t.Fatalf("step rates %+v", st)
		}
	}
	if p.ServerPID != os.Getpid() {
		t.Errorf("server pid %d, want this process %d (the in-process NATS server)", p.ServerPID, os.Getpid())
	}
	var out strings.Builder
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"peer", "20/20", "p99 ms", "delivered/s"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("table lacks %q:\n%s", want, out.String())
		}
	}
}

func TestRunSplitsConnectionsOverChildProcesses(t *testing.T) {
	natsURL, wsURL, as := startBus(t)
	sc := Scenario{
		PeerURL: wsURL, NATSURL: natsURL, Conns: 9, Mix: Mix{KindAccount: 1}, Queues: 1,
		Rates: []float64{100}, StepDuration: 500 * time.Millisecond, PayloadBytes: 200,
		Procs: 3, Spawn: spawnTestChild, Logger: testLogger(t),
	}
	rep := as.run(t, sc)
	p := rep.Peer
	if p.Connected != 9 || p.Drops != 0 || p.Undelivered != 0 || p.Delivered != 9*p.Published {
		t.Fatalf("connected %d, drops %d, delivered %d of %d×9", p.Connected, p.Drops, p.Delivered, p.Published)
	}
	if p.Steps[0].Latency.Count == 0 || p.Steps[0].ToolCPUSeconds <= 0 {
		t.Fatalf("step %+v", p.Steps[0])
	}
}

func TestRunIdleMeasuresSetupAndMemory(t *testing.T) {
	_, wsURL, as := startBus(t)
	sc := Scenario{
		PeerURL: wsURL, Conns: 50, Queues: 1, StepDuration: 100 * time.Millisecond,
		SourceIPs: mustAddrs(t, "127.0.0.1-127.0.0.5"), Logger: testLogger(t),
	}
	rep := as.run(t, sc)
	p := rep.Peer
	if p.Connected != 50 || p.SetupPerSecond <= 0 || p.RSSIdleBytes <= 0 || len(p.Steps) != 0 || p.Published != 0 {
		t.Fatalf("idle run: %+v", p)
	}
}

func TestRunReportsAnUnreachableTarget(t *testing.T) {
	_, wsURL, _ := startBus(t)
	u, _ := url.Parse(wsURL)
	dead := "ws://127.0.0.1:1" + u.Path // port 1: nothing listens there
	rep, err := Run(t.Context(), Scenario{PeerURL: dead, Conns: 3, Queues: 1, StepDuration: 100 * time.Millisecond, ServerPIDs: []int{os.Getpid()}})
	if err == nil || !strings.Contains(err.Error(), "no connection could be set up") || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("error %v", err)
	}
	if rep == nil || rep.Peer == nil || rep.Peer.Connected != 0 {
		t.Fatalf("report %+v", rep)
	}
}

func mustAddrs(t *testing.T, s string) []netip.Addr {
	t.Helper()
	a, err := ParseAddrRange(s)
	if err != nil {
		t.Fatal(err)
	}
	return a
}
