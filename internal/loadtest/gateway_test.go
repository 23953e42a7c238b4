package loadtest

import (
	"context"
	"errors"
	"net"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/api"
	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/auth/authtest"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/gateway"
	"github.com/ccevents/ccevents/internal/testkit"
)

// server is a real ccevents assembled in-process the way `ccevents serve`
// does it: embedded NATS with JetStream (and its websocket listener as the
// peer), auth, the REST API and the websocket gateway, all on random ports.
type server struct {
	natsURL, peerURL, apiURL, wsURL string
	rootKey                         string
	as                              signIn
}

func startServer(t *testing.T, gcfg gateway.Config) server {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	b := openBus(t)
	authSvc := authtest.Open(t, ctx, b, auth.Options{TokenTTL: time.Hour})
	_, rootKey := authtest.Root(t, ctx, authSvc)
	apiSrv, err := api.New(api.Config{Auth: authSvc, Publisher: b})
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: apiSrv.Handler(), ReadHeaderTimeout: 5 * time.Second}
	apiAddr := testkit.Serve(t, hs.Serve, hs.Shutdown)
	gw, err := gateway.New(gcfg, b, authSvc)
	if err != nil {
		t.Fatal(err)
	}
	// Not t.Context(): the gateway serves until the cleanup, after that
	// context has ended.
	wsAddr := testkit.Serve(t, func(ln net.Listener) error { return gw.Serve(context.Background(), ln) }, gw.Shutdown)
	return server{
		natsURL: b.Server().ClientURL(), peerURL: b.Server().WebsocketURL(),
		apiURL: "http://" + apiAddr, wsURL: "ws://" + wsAddr, rootKey: rootKey,
		as: signInAs(t, b.SeedFile(bus.IdentityCCEvents)),
	}
}

func TestRunAgainstGatewayAndPeerReportsRatios(t *testing.T) {
	srv := startServer(t, gateway.Config{})
	sc := Scenario{
		GatewayURLs: []string{srv.wsURL}, APIURL: srv.apiURL, APIKey: srv.rootKey, NATSURL: srv.natsURL, PeerURL: srv.peerURL,
		Conns: 12, Mix: Mix{KindAccount: 0.5, KindQueue: 0.25, KindRecipient: 0.25}, Queues: 3, Recipients: 3,
		Rates: []float64{300}, StepDuration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond,
		PayloadBytes: 300, SourceIPs: mustAddrs(t, "127.0.0.1-127.0.0.4"), Logger: testLogger(t),
	}
	rep := srv.as.run(t, sc)
	for _, tr := range []*TargetReport{rep.Gateway, rep.Peer} {
		if tr == nil {
			t.Fatal("a target is missing from the report")
		}
		if tr.Connected != 12 || tr.Published == 0 || tr.Drops != 0 || tr.Undelivered != 0 || tr.Duplicates != 0 || tr.Unparsed != 0 || tr.OtherCloses != 0 {
			t.Fatalf("%s: connected %d, published %d, drops %d, undelivered %d, dups %d, unparsed %d, closes %d, errors %v %v",
				tr.Name, tr.Connected, tr.Published, tr.Drops, tr.Undelivered, tr.Duplicates, tr.Unparsed, tr.OtherCloses, tr.SetupErrors, tr.Errors)
		}
		// 6 account-wide connections see every event; 6 per-entity ones a sixth each.
		if want := 6*tr.Published + tr.Published; tr.Delivered < want-12 || tr.Delivered > want+12 {
			t.Fatalf("%s: delivered %d, want about %d", tr.Name, tr.Delivered, want)
		}
		if tr.ServerPID != os.Getpid() || tr.Steps[0].Latency.Count == 0 {
			t.Fatalf("%s: server pid %d, step %+v", tr.Name, tr.ServerPID, tr.Steps[0])
		}
	}
	if rep.Ratios == nil || rep.Ratios.PeakDelivered <= 0 || rep.Ratios.SetupRate <= 0 || len(rep.Ratios.P99) != 1 {
		t.Fatalf("ratios %+v", rep.Ratios)
	}
	var out strings.Builder
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(out.String(), "gateway ÷ peer") {
		t.Fatalf("table has no ratios:\n%s", out.String())
	}
}

func TestRunCountsSlowConsumerCloses(t *testing.T) {
	// A two-message outbound queue overflows as soon as the gateway's
	// writer falls behind a burst, and the gateway closes with 4008.
	srv := startServer(t, gateway.Config{OutboundMaxMessages: 2, OutboundMaxBytes: 4096})
	sc := Scenario{
		GatewayURLs: []string{srv.wsURL}, APIURL: srv.apiURL, APIKey: srv.rootKey, NATSURL: srv.natsURL,
		Conns: 20, Queues: 1, Rates: []float64{20000}, StepDuration: 500 * time.Millisecond, PayloadBytes: 2000,
		Logger: testLogger(t),
	}
	rep := srv.as.run(t, sc)
	if g := rep.Gateway; g.SlowConsumerCloses == 0 || g.OtherCloses != 0 {
		t.Fatalf("slow closes %d, other closes %d (%v)", g.SlowConsumerCloses, g.OtherCloses, g.Errors)
	}
}

func TestRunReportsRefusedSubscriptions(t *testing.T) {
	srv := startServer(t, gateway.Config{MaxConnsPerAccount: 3})
	sc := Scenario{
		GatewayURLs: []string{srv.wsURL}, APIURL: srv.apiURL, APIKey: srv.rootKey, NATSURL: srv.natsURL,
		Conns: 5, Queues: 1, Rates: []float64{0}, StepDuration: 100 * time.Millisecond, Logger: testLogger(t),
	}
	rep := srv.as.run(t, sc)
	if g := rep.Gateway; g.Connected != 3 || len(g.SetupErrors) == 0 || !strings.Contains(g.SetupErrors[0], "refused") {
		t.Fatalf("connected %d, errors %v", g.Connected, g.SetupErrors)
	}
}

func TestRunRefusesAWrongAPIKey(t *testing.T) {
	srv := startServer(t, gateway.Config{})
	_, err := Run(t.Context(), Scenario{GatewayURLs: []string{srv.wsURL}, APIURL: srv.apiURL, APIKey: "nope", Conns: 1, Queues: 1, StepDuration: time.Second})
	if err == nil || !strings.Contains(err.Error(), "401") {
		t.Fatalf("error %v, want the API's refusal", err)
	}
	var ne net.Error
	if errors.As(err, &ne) {
		t.Fatalf("a refusal reported as a network error: %v", err)
	}
}

// The multi-tenant scenario: every account's agents and wallboards get all
// their events and nothing of another account's, on the gateway and on the
// peer, and the bus's consumers are counted.
func TestRunManyTenants(t *testing.T) {
	srv := startServer(t, gateway.Config{})
	sc := Scenario{
		GatewayURLs: []string{srv.wsURL}, APIURL: srv.apiURL, APIKey: srv.rootKey, NATSURL: srv.natsURL, PeerURL: srv.peerURL,
		Accounts: 20, Agents: 2, Wallboards: 1, AgentQueues: 2, Queues: 3,
		Rates: []float64{400}, StepDuration: 500 * time.Millisecond, Warmup: 100 * time.Millisecond,
		PayloadBytes: 300, SourceIPs: mustAddrs(t, "127.0.0.1-127.0.0.4"), Logger: testLogger(t),
	}
	rep := srv.as.run(t, sc)
	for _, tr := range []*TargetReport{rep.Gateway, rep.Peer} {
		if tr.Connected != 60 || tr.Refused != 0 || tr.Published == 0 || tr.Drops != 0 || tr.Undelivered != 0 || tr.Duplicates != 0 ||
			tr.Strays != 0 || tr.Unparsed != 0 || tr.OtherCloses != 0 {
			t.Fatalf("%s: connected %d, refused %d, published %d, drops %d, undelivered %d, dups %d, strays %d, unparsed %d, closes %d, errors %v %v",
				tr.Name, tr.Connected, tr.Refused, tr.Published, tr.Drops, tr.Undelivered, tr.Duplicates, tr.Strays, tr.Unparsed, tr.OtherCloses, tr.SetupErrors, tr.Errors)
		}
		// Each event reaches its account's wallboard, and most reach an agent too.
		if tr.Delivered < tr.Published || tr.Delivered > 3*tr.Published {
			t.Fatalf("%s: delivered %d for %d published", tr.Name, tr.Delivered, tr.Published)
		}
		if tr.Accounts != 20 || tr.IdleBytesPerAccount == 0 || tr.Steps[0].ServerCPUPerMillionEvents == 0 {
			t.Fatalf("%s: accounts %d, bytes per account %g, step %+v", tr.Name, tr.Accounts, tr.IdleBytesPerAccount, tr.Steps[0])
		}
		if n := tr.NATS; n == nil || n.ConsumersIdle < 0 || n.ConsumersIdle > 1 {
			t.Fatalf("%s: bus %+v, want one consumer at most (the gateway's)", tr.Name, n)
		}
	}
	var out strings.Builder
	if err := rep.WriteTable(&out); err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"20 accounts × (2 agents serving 2 of 3 queues + 1 wallboards)", "per account with its connections", "consumers on QUBICLE"} {
		if !strings.Contains(out.String(), want) {
			t.Fatalf("table lacks %q:\n%s", want, out.String())
		}
	}
}
