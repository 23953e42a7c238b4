package gateway

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/auth/authtest"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/ccevents/ccevents/internal/wstest"
)

// clusterGateway is a gateway on its own bus connection to one node of a
// cluster, with its own auth service on the shared bucket.
type clusterGateway struct {
	bus  *bus.Bus
	auth *auth.Service
	srv  *Server
	reg  *prometheus.Registry
	url  string
}

// startClusterGateway runs a gateway with its own bus connection to node;
// every gateway of a test shares seal, as the nodes of a deployment share
// their seal key file.
func startClusterGateway(t *testing.T, c *natstest.Cluster, node int, seal []byte) *clusterGateway {
	t.Helper()
	b := natstest.Bus(t, bus.Config{URLs: []string{c.URL(node)}, Replicas: 3, Name: fmt.Sprintf("gateway-%d", node)})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	g := &clusterGateway{bus: b, auth: authtest.Open(t, ctx, b, auth.Options{SealKey: seal}), reg: prometheus.NewRegistry()}
	srv, err := New(Config{Registerer: g.reg, PingInterval: -1}, b, g.auth)
	if err != nil {
		t.Fatal(err)
	}
	g.srv = srv
	g.url = "ws://" + testkit.Serve(t, func(ln net.Listener) error { return srv.Serve(context.Background(), ln) }, srv.Shutdown)
	return g
}

// Two gateways on two nodes of a cluster, one following accounts of its
// own, the other others, both following some shared ones: each client gets
// exactly its account's events in order, a client moves between gateways
// without loss, and the stream holds one consumer per gateway.
func TestTwoGatewaysOnAClusterFollowDisjointAndOverlappingAccounts(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a three-node cluster")
	}
	c := natstest.Start(t, 3)
	seal := auth.NewSealKey()
	gws := []*clusterGateway{startClusterGateway(t, c, 0, seal), startClusterGateway(t, c, 1, seal)}
	ctx := t.Context()
	root, _ := authtest.Root(t, ctx, gws[0].auth)
	tok := authtest.Token(t, ctx, gws[0].auth, root.ID)
	const each, shared = 20, 10
	type follower struct {
		gw  int
		acc string
		c   *wstest.Conn
	}
	var accs [3][]string // only on gateway 0, only on 1, on both
	for k := range accs {
		n := each
		if k == 2 {
			n = shared
		}
		for range n {
			accs[k] = append(accs[k], authtest.Account(t, ctx, gws[0].auth, root.ID))
		}
	}
	// The second gateway's auth service learns of the accounts and the
	// signing key through the replicated bucket.
	testkit.Eventually(t, waitLong, "the second gateway to know every account", func() bool {
		if _, err := gws[1].auth.Verify(tok); err != nil {
			return false
		}
		for _, list := range accs {
			for _, a := range list {
				if ok, err := gws[1].auth.MayAccess(ctx, root.ID, a); err != nil || !ok {
					return false
				}
			}
		}
		return true
	})
	var fs []follower
	for k, list := range accs {
		for _, acc := range list {
			for gw := range gws {
				if k == 2 || k == gw {
					cl := wstest.Dial(t, gws[gw].url).Buffered()
					cl.Subscribe(tok, acc, "qubicle.*."+acc+".*")
					fs = append(fs, follower{gw: gw, acc: acc, c: cl})
				}
			}
		}
	}
	for i, want := range []float64{each + shared, each + shared} {
		testkit.Eventually(t, waitLong, "both gateways to count their accounts", func() bool {
			return metricOf(t, gws[i].reg, "ccevents_ws_accounts_followed") == want
		})
	}

	// Each account gets events through both nodes, interleaved.
	published := map[string][]uint64{}
	var all []string
	for _, list := range accs {
		all = append(all, list...)
	}
	for round := range 3 {
		for i, acc := range all {
			b := gws[(i+round)%2].bus
			seq, err := b.Publish(ctx, fmt.Sprintf("qubicle.queue.%s.Q%d.join", acc, round), payloadFor("qubicle.queue."+acc+".Q.join"), "")
			if err != nil {
				t.Fatal(err)
			}
			published[acc] = append(published[acc], seq)
		}
	}
	for _, f := range fs {
		var got []uint64
		for range published[f.acc] {
			got = append(got, f.c.Event().Sequence)
		}
		if !slices.Equal(got, published[f.acc]) {
			t.Fatalf("account %s on gateway %d: got %v, want %v", f.acc, f.gw, got, published[f.acc])
		}
	}

	// A client of an account only the first gateway followed moves to the
	// second and resumes there; events stored meanwhile are not lost.
	moved := accs[0][0]
	last := published[moved][len(published[moved])-1]
	missed, err := gws[0].bus.Publish(ctx, "qubicle.queue."+moved+".Q9.join", payloadFor("qubicle.queue."+moved+".Q.join"), "")
	if err != nil {
		t.Fatal(err)
	}
	cl := wstest.Dial(t, gws[1].url)
	if _, f := sinceSubscribe(cl, tok, moved, last, gws[0].bus.Epoch(), "qubicle.*."+moved+".*"); f.Recovered == nil || !*f.Recovered {
		t.Fatalf("resume on the other gateway: %+v", f)
	}
	if ev := cl.Event(); ev.Sequence != missed {
		t.Fatalf("resumed with %d, want %d", ev.Sequence, missed)
	}

	s, err := gws[0].bus.JetStream().Stream(ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if info.State.Consumers != len(gws) {
		t.Errorf("%d consumers on the stream for %d gateways following %d accounts, want one per gateway",
			info.State.Consumers, len(gws), 2*each+shared)
	}
}

// metricOf reads a gauge or counter from a registry.
func metricOf(t testing.TB, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	e := &env{t: t, reg: reg}
	return e.metric(name)
}
