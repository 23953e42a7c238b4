package clustertest

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/client"
	"github.com/ccevents/ccevents/internal/lease"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/testkit"
)

func skipShort(t *testing.T) {
	t.Helper()
	if testing.Short() {
		t.Skip("runs ccevents processes on a 3-node NATS cluster")
	}
}

// rootOf reads the root account from whichever node created it.
func rootOf(t *testing.T, nodes ...*node) (account, apiKey string) {
	t.Helper()
	var errs []string
	for _, n := range nodes {
		acc, key, err := n.rootKey()
		if err == nil {
			return acc, key
		}
		errs = append(errs, fmt.Sprintf("%s: %v", n.name, err))
	}
	t.Fatalf("no node wrote root.json: %s", strings.Join(errs, "; "))
	return "", ""
}

// dialClient connects an SDK client to url with token, counting its
// connections in conns unless it is nil; it reconnects quickly so tests do
// not wait on back-off.
func dialClient(t *testing.T, url, token string, conns *connCounter) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	opts := client.Options{URL: url, Token: token, MinBackoff: 50 * time.Millisecond, MaxBackoff: 500 * time.Millisecond}
	if conns != nil {
		opts.OnConnState = conns.observe
	}
	c, err := client.Dial(ctx, opts)
	if err != nil {
		t.Fatalf("dial %s: %v", url, err)
	}
	t.Cleanup(func() { _ = c.Close(context.Background()) })
	return c
}

// subscribeTo subscribes c to binding, collecting events into got.
func subscribeTo(t *testing.T, c *client.Client, account, binding string, got *received) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	if _, err := c.Subscribe(ctx, account, binding, got.handle); err != nil {
		t.Fatalf("subscribe %s: %v", binding, err)
	}
}

// subscribe dials url with token and subscribes to the account's queue
// events, collecting them.
func subscribe(t *testing.T, url, token, account string, conns *connCounter) *received {
	t.Helper()
	c := dialClient(t, url, token, conns)
	got := &received{}
	subscribeTo(t, c, account, "qubicle.queue."+account+".*", got)
	return got
}

// produced is what produce did: the queue ids the API accepted, and the
// longest a create took (retries included), which shows failover stalls.
type produced struct {
	ids     []string
	slowest time.Duration
}

// produce creates queues q000… one after another, each retried while the
// engine is unavailable (an account being taken over, a NATS leader
// election); after half of them it calls midway once.
func produce(t *testing.T, rc *restClient, n int, midway func()) produced {
	t.Helper()
	var p produced
	for i := 0; i < n; i++ {
		if i == n/2 && midway != nil {
			midway()
		}
		id := fmt.Sprintf("q%03d", i)
		start := time.Now()
		rc.call(t, http.MethodPut, "/v2/accounts/{ACCOUNT_ID}/queues", map[string]string{"id": id, "name": "queue " + id}, http.StatusCreated)
		p.slowest = max(p.slowest, time.Since(start))
		p.ids = append(p.ids, id)
		time.Sleep(10 * time.Millisecond)
	}
	return p
}

func TestClientOnGatewayTwoReceivesWhatTheEngineOnNodeOnePublishes(t *testing.T) {
	skipShort(t)
	c := natstest.Start(t, 3)
	engineNode := startNode(t, c, "node1", "api,engine")
	gatewayNode := startNode(t, c, "node2", "gateway")
	account, key := rootOf(t, engineNode, gatewayNode)
	rc := login(t, engineNode, account, key)

	got := subscribe(t, gatewayNode.WSURL(), rc.token, account, nil)
	js := truth(t, c)
	baseline := lastSeq(t, js)
	ids := produce(t, rc, 5, nil).ids
	assertNothingMissed(t, js, got, "qubicle.queue."+account+".>", baseline, ids)
	for i, ev := range got.all() {
		if ev.Name != "create" || ev.RoutingKey != fmt.Sprintf("qubicle.queue.%s.%s.create", account, ids[i]) {
			t.Errorf("event %d: %s %s, want queue.create of %s", i, ev.RoutingKey, ev.Name, ids[i])
		}
	}
}

func TestResumingClientMissesNothingWhenANATSNodeDiesDuringTraffic(t *testing.T) {
	skipShort(t)
	for _, tc := range []struct {
		name   string
		victim func(c *natstest.Cluster) int
	}{
		// The node every stored event goes through.
		{"stream leader", func(c *natstest.Cluster) int { return c.StreamLeader("QUBICLE") }},
		// The node ccevents talks to: its engine and gateway must fail over.
		{"node ccevents is connected to", func(c *natstest.Cluster) int { return connectedNode(c, "ccevents-") }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := natstest.Start(t, 3)
			n1 := startNode(t, c, "node1", "gateway,api,engine")
			account, key := rootOf(t, n1)
			rc := login(t, n1, account, key)

			conns := &connCounter{}
			got := subscribe(t, n1.WSURL(), rc.token, account, conns)
			js := truth(t, c)
			baseline := lastSeq(t, js)
			killed := -1
			stats := produce(t, rc, 120, func() {
				killed = tc.victim(c)
				if killed < 0 {
					t.Fatalf("no NATS node is the %s", tc.name)
				}
				c.Kill(killed)
			})
			assertNothingMissed(t, js, got, "qubicle.queue."+account+".>", baseline, stats.ids)
			t.Logf("killed NATS node %s (%s) mid-traffic: slowest create %s, client connections %d",
				c.Name(killed), tc.name, stats.slowest.Round(time.Millisecond), conns.connections())
		})
	}
}

// connectedNode is the index of the NATS node holding a client connection
// whose name starts with prefix, or -1.
func connectedNode(c *natstest.Cluster, prefix string) int {
	for i := 0; i < c.Size(); i++ {
		srv := c.Server(i)
		if srv == nil {
			continue
		}
		cz, err := srv.Connz(nil)
		if err != nil {
			continue
		}
		for _, ci := range cz.Conns {
			if strings.HasPrefix(ci.Name, prefix) {
				return i
			}
		}
	}
	return -1
}

func TestClientsOfAKilledGatewayResumeOnAnotherWithoutLoss(t *testing.T) {
	skipShort(t)
	c := natstest.Start(t, 3)
	engineNode := startNode(t, c, "node1", "api,engine")
	gw1 := startNode(t, c, "gw1", "gateway")
	gw2 := startNode(t, c, "gw2", "gateway")
	account, key := rootOf(t, engineNode, gw1, gw2)
	rc := login(t, engineNode, account, key)
	lb := testkit.StartProxy(t, gw1.WSAddr(), gw2.WSAddr()) // a balancer in front of the gateways

	const clients = 3
	var subs []*received
	var counters []*connCounter
	for i := 0; i < clients; i++ {
		cc := &connCounter{}
		subs = append(subs, subscribe(t, "ws://"+lb.Addr(), rc.token, account, cc))
		counters = append(counters, cc)
	}
	js := truth(t, c)
	baseline := lastSeq(t, js)
	stats := produce(t, rc, 100, gw1.kill)
	ids := stats.ids

	for i := range subs {
		t.Run(fmt.Sprintf("client%d", i), func(t *testing.T) {
			assertNothingMissed(t, js, subs[i], "qubicle.queue."+account+".>", baseline, ids)
			if n := counters[i].connections(); n < 2 {
				t.Errorf("client connected %d times: it never had to resume, so the gateway kill proved nothing", n)
			}
		})
	}
	t.Logf("killed gateway gw1 mid-traffic: slowest create %s", stats.slowest.Round(time.Millisecond))
}

// call calls the API until it answers with want, retrying while the engine
// is unavailable (503: the account has no owner yet or is changing hands),
// and returns the answer's data. A 409 after a failed attempt means that
// attempt was applied; it returns nil then.
func (rc *restClient) call(t *testing.T, method, path string, body any, want int) json.RawMessage {
	t.Helper()
	var wrapped any
	if body != nil {
		wrapped = map[string]any{"data": body}
	}
	var data json.RawMessage
	attempt := 0
	testkit.EventuallyNoError(t, 60*time.Second, fmt.Sprintf("%s %s to answer %d", method, path, want), func() error {
		attempt++
		status, raw, err := rc.do(method, path, wrapped)
		switch {
		case err != nil:
			return err
		case status == want:
			var env struct {
				Data json.RawMessage `json:"data"`
			}
			if err := json.Unmarshal(raw, &env); err != nil {
				t.Fatalf("%s %s: %v in %s", method, path, err, raw)
			}
			data = env.Data
			return nil
		case status == http.StatusConflict && attempt > 1:
			return nil // an earlier attempt was applied
		case status < 500:
			t.Fatalf("%s %s: %d %s, want %d", method, path, status, raw, want)
		}
		return fmt.Errorf("%d %s", status, raw)
	})
	return data
}

// owner is the node whose engine holds the account's lease now, read from
// the lease bucket, or nil.
func owner(t *testing.T, js jetstream.JetStream, account string, nodes ...*node) *node {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Second)
	defer cancel()
	kv, err := js.KeyValue(ctx, lease.Bucket)
	if err != nil {
		return nil
	}
	e, err := kv.Get(ctx, lease.AccountKey(account))
	if err != nil {
		return nil
	}
	var rec struct {
		Owner string `json:"owner"`
	}
	if json.Unmarshal(e.Value(), &rec) != nil {
		return nil
	}
	for _, n := range nodes {
		if n.logged(`"msg":"engine node balancing accounts"`, `"node":"`+rec.Owner+`"`) {
			return n
		}
	}
	return nil
}

func TestAnotherEngineTakesOverTheAccountsOfAnEngineThatStops(t *testing.T) {
	skipShort(t)
	for _, tc := range []struct {
		name string
		stop func(*node)
		// handedOver: the stopping engine gives the account back itself
		// (rolling upgrade), rather than the survivor waiting for its
		// lease to expire (crash).
		handedOver bool
	}{
		{"killed", (*node).kill, false},
		{"stopped with SIGTERM", (*node).terminate, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			testEngineTakeover(t, tc.stop, tc.handedOver)
		})
	}
}

func testEngineTakeover(t *testing.T, stop func(*node), handedOver bool) {
	c := natstest.Start(t, 3)
	e1 := startNode(t, c, "e1", "api,engine")
	e2 := startNode(t, c, "e2", "api,engine")
	gw := startNode(t, c, "gw", "gateway")
	account, key := rootOf(t, e1, e2, gw)
	rc := login(t, e1, account, key)

	// A queue and a logged-in recipient: the state a successor must restore.
	rc.call(t, http.MethodPut, "/v2/accounts/{ACCOUNT_ID}/queues", map[string]any{"id": "sales", "name": "Sales"}, http.StatusCreated)
	rc.call(t, http.MethodPut, "/v2/accounts/{ACCOUNT_ID}/recipients", map[string]any{"id": "agent1", "name": "Agent One", "queues": []string{"sales"}}, http.StatusCreated)
	// Logging in makes the recipient ready.
	rc.call(t, http.MethodPost, "/v2/accounts/{ACCOUNT_ID}/recipients/agent1/status", map[string]any{"action": "login"}, http.StatusOK)

	js := truth(t, c)
	var first *node
	testkit.Eventually(t, 30*time.Second, "an engine to hold the account's lease", func() bool { first = owner(t, js, account, e1, e2); return first != nil })
	survivor := e2
	if first == e2 {
		survivor = e1
	}

	got := &received{}
	cl := dialClient(t, gw.WSURL(), rc.token, nil)
	subscribeTo(t, cl, account, "qubicle.recipient."+account+".*", got)
	baseline := lastSeq(t, js)

	stoppedAt := time.Now()
	stop(first)
	testkit.Eventually(t, 60*time.Second, fmt.Sprintf("%s to take the account over from %s", survivor.name, first.name), func() bool { return owner(t, js, account, survivor) != nil })
	tookOver := time.Since(stoppedAt)
	if handedOver && !first.logged(`"msg":"account given back"`, account) {
		t.Errorf("%s stopped without giving the account back: %s waited for the lease to expire", first.name, survivor.name)
	}

	syncKey := "qubicle.recipient." + account + ".agent1.sync"
	var sync client.Event
	testkit.EventuallyNoError(t, 30*time.Second, "a recipient.sync of agent1 after the takeover", func() error {
		for _, ev := range got.all() {
			if ev.RoutingKey == syncKey && ev.Sequence > baseline {
				sync = ev
				return nil
			}
		}
		return fmt.Errorf("got %d events, none of them", len(got.all()))
	})
	var payload struct {
		State string `json:"state"`
	}
	if err := json.Unmarshal(sync.Data, &payload); err != nil || payload.State != "ready" {
		t.Errorf("sync after takeover says state %q (%v), want ready: %s", payload.State, err, sync.Data)
	}

	rs := login(t, survivor, account, key)
	rs.call(t, http.MethodGet, "/v2/accounts/{ACCOUNT_ID}/queues/sales", nil, http.StatusOK)
	var rec struct {
		State  string   `json:"state"`
		Queues []string `json:"queues"`
	}
	raw := rs.call(t, http.MethodGet, "/v2/accounts/{ACCOUNT_ID}/recipients/agent1", nil, http.StatusOK)
	if err := json.Unmarshal(raw, &rec); err != nil {
		t.Fatal(err)
	}
	if rec.State != "ready" || len(rec.Queues) != 1 || rec.Queues[0] != "sales" {
		t.Errorf("after takeover agent1 is %s serving %v, want ready serving [sales]", rec.State, rec.Queues)
	}
	t.Logf("engine %s stopped; %s took the account over after %s", first.name, survivor.name, tookOver.Round(100*time.Millisecond))
}
