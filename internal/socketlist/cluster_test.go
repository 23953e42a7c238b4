package socketlist_test

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/api"
	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/auth/authtest"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/gateway"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/promutil"
	"github.com/ccevents/ccevents/internal/socketlist"
	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/ccevents/ccevents/internal/wstest"
	"github.com/ccevents/ccevents/protocol"
)

// waitLong bounds every wait; it only matters when a test is about to fail.
const waitLong = 30 * time.Second

// cluster is two gateways, each on its own NATS node and bus, and a REST
// API on the first, asking both.
type cluster struct {
	t        *testing.T
	ctx      context.Context
	auth     *auth.Service
	root     string
	api      string
	gatherer *socketlist.Gatherer
	gw       map[string]*member
}

// member is one gateway of the cluster.
type member struct {
	url       string // ws://
	bus       *bus.Bus
	responder *socketlist.Responder
	metrics   *prometheus.Registry
	stop      context.CancelFunc // ends its Serve contexts, as SIGTERM does
}

// clusterConfig changes what startCluster builds; zero values keep the
// product's defaults.
type clusterConfig struct {
	ttl     time.Duration    // the registry's TTL
	timeout time.Duration    // the gatherer's wait for answers
	gates   map[string]*gate // gateways whose answers wait on a gate
}

func startCluster(t *testing.T, cfg clusterConfig) *cluster {
	t.Helper()
	if cfg.ttl == 0 {
		cfg.ttl = socketlist.RegistryTTL
	}
	nc := natstest.Start(t, 2)
	cl := &cluster{t: t, ctx: t.Context(), gw: map[string]*member{}}
	// The nodes of one deployment share the seal key of its signing keys.
	seal := auth.NewSealKey()
	for i, name := range []string{"gw-a", "gw-b"} {
		b := natstest.Bus(t, bus.Config{URLs: []string{nc.URL(i)}, Memory: true, Name: name})
		ctx, cancel := context.WithTimeout(cl.ctx, waitLong)
		as := authtest.Open(t, ctx, b, auth.Options{SealKey: seal})
		registry, err := b.KeyValue(ctx, socketlist.RegistryBucket, bus.ExpireAfter(cfg.ttl))
		if err != nil {
			t.Fatalf("%s: registry: %v", name, err)
		}
		if i == 0 {
			root, _ := authtest.Root(t, ctx, as)
			cl.auth, cl.root = as, root.ID
			if cl.gatherer, err = socketlist.NewGatherer(cl.ctx, b.Conn(), socketlist.GathererConfig{Registry: registry, Timeout: cfg.timeout}); err != nil {
				t.Fatal(err)
			}
			t.Cleanup(cl.gatherer.Close)
		}
		cancel()
		gw, err := gateway.New(gateway.Config{Name: name}, b, as)
		if err != nil {
			t.Fatal(err)
		}
		gwCtx, stop := context.WithCancel(cl.ctx)
		addr := testkit.Serve(t, func(ln net.Listener) error { return gw.Serve(gwCtx, ln) }, gw.Shutdown)
		m := &member{url: "ws://" + addr, bus: b, metrics: prometheus.NewRegistry(), stop: stop}
		var lister socketlist.Lister = gw
		if g := cfg.gates[name]; g != nil {
			g.lister, lister = gw, g
		}
		if m.responder, err = socketlist.Serve(gwCtx, b.Conn(), lister, socketlist.ServeConfig{Name: name, Registry: registry, Registerer: m.metrics}); err != nil {
			t.Fatal(err)
		}
		cl.gw[name] = m
	}
	apiSrv, err := api.New(api.Config{Auth: cl.auth, Publisher: nopPublisher{}, Sockets: cl.gatherer})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(apiSrv.Handler())
	t.Cleanup(hs.Close)
	cl.api = hs.URL
	// Both gateways joined before Serve returned; the API's view of the
	// registry follows them.
	testkit.Eventually(t, waitLong, "both gateways in the API's registry", func() bool { return slices.Equal(cl.gatherer.Registered(), []string{"gw-a", "gw-b"}) })
	return cl
}

// gate holds a gateway's answers until it is opened: a gateway slower than
// any fixed wait (a long GC pause, a starved machine). It stands where the
// responder calls the gateway, the Lister interface, so nothing in the
// product changes for the test.
type gate struct {
	lister socketlist.Lister
	asked  chan socketlist.Query // each question, as it arrives
	open   chan struct{}
}

func newGate() *gate {
	return &gate{asked: make(chan socketlist.Query, 16), open: make(chan struct{})}
}

func (g *gate) Sockets(ctx context.Context, q socketlist.Query) socketlist.Answer {
	select {
	case g.asked <- q:
	default:
	}
	select {
	case <-g.open:
	case <-ctx.Done():
	}
	return g.lister.Sockets(ctx, q)
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, string, []byte, string) (uint64, error) { return 0, nil }

// account creates a child of parent (the root when empty).
func (cl *cluster) account(parent string) string {
	cl.t.Helper()
	return authtest.Account(cl.t, cl.ctx, cl.auth, cmp.Or(parent, cl.root))
}

func (cl *cluster) token(account string) string {
	cl.t.Helper()
	return authtest.Token(cl.t, cl.ctx, cl.auth, account)
}

// socket is a websocket to one gateway, sending requests as Kazoo clients
// do and reading their replies.
type socket struct{ *wstest.Conn }

func (cl *cluster) dial(gateway string) socket {
	cl.t.Helper()
	c := wstest.Dial(cl.t, cl.gw[gateway].url)
	c.ReadWait = waitLong
	return socket{c}
}

// request sends msg and fails unless its reply is a success.
func (s socket) request(format string, args ...any) {
	s.T().Helper()
	s.Send(fmt.Sprintf(format, args...))
	if m, _ := s.Reply(); m.Status != protocol.StatusSuccess {
		s.T().Fatalf("reply %s", m.Raw)
	}
}

// page is the REST listing's answer.
type page struct {
	Status       string              `json:"status"`
	Message      string              `json:"message"`
	Data         []socketlist.Socket `json:"data"`
	PageSize     int                 `json:"page_size"`
	NextStartKey string              `json:"next_start_key"`
	Gateways     []string            `json:"gateways"`
	Partial      bool                `json:"partial"`
	// MissingGateways is in a partial page (an error's are in
	// listingError).
	MissingGateways []string `json:"missing_gateways"`
}

// get calls the REST API and decodes its answer into v, returning the
// HTTP status.
func (cl *cluster) get(token, path string, v any) int {
	cl.t.Helper()
	req, _ := http.NewRequestWithContext(cl.ctx, http.MethodGet, cl.api+path, nil)
	req.Header.Set("X-Auth-Token", token)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		cl.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(body, v); err != nil {
		cl.t.Fatalf("GET %s: %s: %v", path, body, err)
	}
	return resp.StatusCode
}

// list reads one page of an account's sockets, which both gateways must
// have answered.
func (cl *cluster) list(token, path string) page {
	cl.t.Helper()
	var p page
	if status := cl.get(token, path, &p); status != http.StatusOK {
		cl.t.Fatalf("GET %s: %d %s", path, status, p.Message)
	}
	if !slices.Equal(p.Gateways, []string{"gw-a", "gw-b"}) || p.Partial || len(p.MissingGateways) > 0 {
		cl.t.Fatalf("GET %s: gateways %v, partial %v, missing %v; want both answered", path, p.Gateways, p.Partial, p.MissingGateways)
	}
	return p
}

// byID indexes a page's sockets.
func byID(p page) map[string]socketlist.Socket {
	m := map[string]socketlist.Socket{}
	for _, s := range p.Data {
		m[s.ID] = s
	}
	return m
}

func TestListingShowsEveryGatewaysSocketsToWhoMaySeeThem(t *testing.T) {
	t.Parallel()
	cl := startCluster(t, clusterConfig{})
	reseller := cl.account("")
	c1, c2 := cl.account(reseller), cl.account(reseller)
	other := cl.account("")
	tokR, tok1, tok2, tokO := cl.token(reseller), cl.token(c1), cl.token(c2), cl.token(other)
	resellerPath := "/v2/accounts/" + reseller + "/websockets"

	// Nothing yet: an empty page, both gateways asked.
	if p := cl.list(tokR, resellerPath); len(p.Data) != 0 {
		t.Fatalf("sockets before any: %+v", p.Data)
	}
	// c1 pings with its token on gw-a (pqc_blackhole's first step): its
	// socket is listed with no bindings.
	s1 := cl.dial("gw-a")
	s1.request(`{"request_id":"5be0a21c","action":"ping","auth_token":%q}`, tok1)
	// c2 subscribes with a short binding on gw-b.
	s2 := cl.dial("gw-b")
	s2.request(`{"action":"subscribe","auth_token":%q,"data":{"account_id":%q,"binding":"qubicle.queue"}}`, tok2, c2)
	// The reseller watches c1's sessions and its own queues, on gw-b.
	s3 := cl.dial("gw-b")
	s3.request(`{"action":"subscribe","auth_token":%q,"data":{"account_id":%q,"binding":"qubicle.session"}}`, tokR, c1)
	s3.request(`{"action":"subscribe","data":{"account_id":%q,"binding":"qubicle.queue.%s.*"}}`, reseller, reseller)
	// Another account's socket, and one that never authenticated.
	cl.dial("gw-a").request(`{"action":"subscribe","auth_token":%q,"data":{"account_id":%q,"binding":"qubicle.queue"}}`, tokO, other)
	cl.dial("gw-a").request(`{"action":"ping"}`)

	all := cl.list(tokR, resellerPath)
	got := byID(all)
	if len(all.Data) != 3 || all.PageSize != 3 || all.NextStartKey != "" {
		t.Fatalf("the reseller's listing: %+v", all)
	}
	var one, two, three socketlist.Socket
	for _, s := range got {
		switch s.AccountID {
		case c1:
			one = s
		case c2:
			two = s
		case reseller:
			three = s
		}
	}
	if one.Destination != "gw-a" || len(one.Bindings) != 0 || one.Source != "127.0.0.1" || one.ExpiresAt == "" || one.ConnectedAt == "" || one.Timestamp < 63_000_000_000 {
		t.Errorf("c1's socket: %+v", one)
	}
	if two.Destination != "gw-b" || !slices.Equal(two.Bindings, []string{"qubicle.queue"}) ||
		!slices.Equal(two.Subscriptions, []socketlist.Subscription{{AccountID: c2, Binding: "qubicle.queue"}}) {
		t.Errorf("c2's socket: %+v", two)
	}
	if three.Destination != "gw-b" || !slices.Equal(three.Subscriptions, []socketlist.Subscription{
		{AccountID: c1, Binding: "qubicle.session"}, {AccountID: reseller, Binding: "qubicle.queue." + reseller + ".*"}}) {
		t.Errorf("the reseller's socket: %+v", three)
	}

	// c1 sees its own socket only: the reseller's, though it watches c1,
	// is the reseller's. The reseller reading c1's listing sees the same.
	for _, tok := range []string{tok1, tokR} {
		if p := cl.list(tok, "/v2/accounts/"+c1+"/websockets"); len(p.Data) != 1 || p.Data[0].ID != one.ID {
			t.Errorf("c1's listing: %+v", p.Data)
		}
	}
	// The same authorization as the rest of the REST API.
	var refused struct{ Message string }
	if status := cl.get(tok1, resellerPath, &refused); status != http.StatusForbidden {
		t.Errorf("c1 reading the reseller's listing: %d %s", status, refused.Message)
	}

	// One socket by id, as pqc_blackhole reads it; another account's is
	// not found.
	var detail struct {
		Data    socketlist.Socket `json:"data"`
		Message string            `json:"message"`
	}
	if status := cl.get(tokR, resellerPath+"/"+two.ID, &detail); status != http.StatusOK || detail.Data.ID != two.ID || !slices.Equal(detail.Data.Bindings, []string{"qubicle.queue"}) {
		t.Errorf("c2's socket by id: %d %+v", status, detail)
	}
	for _, id := range []string{"0123456789abcdef0123456789abcdef", one.ID} {
		if status := cl.get(tok2, "/v2/accounts/"+c2+"/websockets/"+id, &detail); status != http.StatusNotFound {
			t.Errorf("c2 reading socket %s: %d %+v", id, status, detail)
		}
	}

	// Pages of one, in id order, cover every socket once.
	var paged []string
	for start := ""; ; {
		p := cl.list(tokR, resellerPath+"?page_size=1&start_key="+start)
		for _, s := range p.Data {
			paged = append(paged, s.ID)
		}
		if p.NextStartKey == "" {
			break
		}
		start = p.NextStartKey
	}
	if want := ids(all.Data); !slices.Equal(paged, want) || !slices.IsSorted(want) {
		t.Errorf("paged %v, want %v in order", paged, want)
	}
	for _, bad := range []string{"0", "501", "x"} {
		var p struct{ Message string }
		if status := cl.get(tokR, resellerPath+"?page_size="+bad, &p); status != http.StatusBadRequest || p.Message != fmt.Sprintf("page_size must be a whole number from 1 to 500, got %q; page on with start_key=<next_start_key>", bad) {
			t.Errorf("page_size=%s: %d %s", bad, status, p.Message)
		}
	}

	// pqc_blackhole: bind, see the binding; unbind, see none; close, gone.
	s1.request(`{"action":"subscribe","auth_token":%q,"request_id":"9a8b7c6d","data":{"account_id":%q,"binding":"qubicle.queue.%s.*"}}`, tok1, c1, c1)
	if p := cl.list(tok1, "/v2/accounts/"+c1+"/websockets"); len(p.Data) != 1 || !slices.Equal(p.Data[0].Bindings, []string{"qubicle.queue." + c1 + ".*"}) {
		t.Errorf("after bind: %+v", p.Data)
	}
	s1.request(`{"action":"unsubscribe","auth_token":%q,"request_id":"1f2e3d4c","data":{"account_id":%q,"binding":"qubicle.queue.%s.*"}}`, tok1, c1, c1)
	if p := cl.list(tok1, "/v2/accounts/"+c1+"/websockets"); len(p.Data) != 1 || len(p.Data[0].Bindings) != 0 {
		t.Errorf("after unbind: %+v", p.Data)
	}
	s1.NetConn().Close()
	testkit.EventuallyNoError(t, waitLong, "the closed socket to leave the list", func() error {
		if p := cl.list(tok1, "/v2/accounts/"+c1+"/websockets"); len(p.Data) != 0 {
			return fmt.Errorf("closed socket still listed: %+v", p.Data)
		}
		return nil
	})

	// The binding families, as Kazoo's GET /v2/websockets.
	var avail struct {
		Data map[string][]string `json:"data"`
	}
	if status := cl.get(tok2, "/v2/websockets", &avail); status != http.StatusOK ||
		!slices.Contains(avail.Data["queue"], "qubicle.queue") || !slices.Contains(avail.Data["session"], "qubicle.session.{ACCOUNT_ID}.{SESSION_ID}.create") {
		t.Errorf("GET /v2/websockets: %d %v", status, avail.Data)
	}
}

func ids(ss []socketlist.Socket) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = s.ID
	}
	return out
}

// listingError is the REST API's answer when a listing is incomplete.
type listingError struct {
	Status  string `json:"status"`
	Message string `json:"message"`
	Data    struct {
		Errors          []string `json:"errors"`
		MissingGateways []string `json:"missing_gateways"`
		Gateways        []string `json:"gateways"`
	} `json:"data"`
}

// TestListingWaitsForASlowGateway: a gateway whose answer comes later than
// any fixed wait is still in the page, because the API waits for every
// gateway in the registry.
func TestListingWaitsForASlowGateway(t *testing.T) {
	t.Parallel()
	slow := newGate()
	cl := startCluster(t, clusterConfig{timeout: waitLong, gates: map[string]*gate{"gw-b": slow}})
	acct := cl.account("")
	tok := cl.token(acct)
	cl.dial("gw-a").request(`{"action":"subscribe","auth_token":%q,"data":{"account_id":%q,"binding":"qubicle.queue"}}`, tok, acct)
	cl.dial("gw-b").request(`{"action":"subscribe","auth_token":%q,"data":{"account_id":%q,"binding":"qubicle.session"}}`, tok, acct)

	result := make(chan page, 1)
	go func() {
		var p page
		if status := cl.get(tok, "/v2/accounts/"+acct+"/websockets", &p); status != http.StatusOK {
			t.Errorf("listing: %d %s", status, p.Message)
		}
		result <- p
	}()
	// gw-b has the question and holds its answer: the listing must still
	// be waiting, however long gw-a's answer has been in.
	select {
	case <-slow.asked:
	case <-time.After(waitLong):
		t.Fatal("gw-b was never asked")
	}
	select {
	case p := <-result:
		t.Fatalf("the listing ended while gw-b had not answered: gateways %v, %d sockets", p.Gateways, len(p.Data))
	default:
	}
	close(slow.open)
	p := <-result
	if !slices.Equal(p.Gateways, []string{"gw-a", "gw-b"}) || len(p.Data) != 2 || p.Partial {
		t.Fatalf("after gw-b answered: gateways %v, partial %v, sockets %+v", p.Gateways, p.Partial, p.Data)
	}
}

// TestListingNamesAGatewayThatDoesNotAnswer: a gateway that stays silent
// past the timeout is named, as an error or, when the caller allows it, as
// a partial page; never left out silently.
func TestListingNamesAGatewayThatDoesNotAnswer(t *testing.T) {
	t.Parallel()
	silent := newGate() // never opened
	cl := startCluster(t, clusterConfig{timeout: time.Second, gates: map[string]*gate{"gw-b": silent}})
	acct := cl.account("")
	tok := cl.token(acct)
	cl.dial("gw-a").request(`{"action":"subscribe","auth_token":%q,"data":{"account_id":%q,"binding":"qubicle.queue"}}`, tok, acct)
	path := "/v2/accounts/" + acct + "/websockets"

	var e listingError
	if status := cl.get(tok, path, &e); status != http.StatusGatewayTimeout || e.Status != "error" ||
		!strings.HasPrefix(e.Message, "websocket gateway gw-b did not answer within 1s") ||
		!slices.Equal(e.Data.MissingGateways, []string{"gw-b"}) || !slices.Equal(e.Data.Gateways, []string{"gw-a"}) {
		t.Errorf("without allow_partial: %d %+v", status, e)
	}
	var p page
	if status := cl.get(tok, path+"?allow_partial=true", &p); status != http.StatusOK || !p.Partial ||
		!slices.Equal(p.MissingGateways, []string{"gw-b"}) || !slices.Equal(p.Gateways, []string{"gw-a"}) || len(p.Data) != 1 {
		t.Errorf("with allow_partial: %d %+v", status, p)
	}
	// One socket by id cannot be said not to exist while a gateway is
	// silent.
	if status := cl.get(tok, path+"/0123456789abcdef0123456789abcdef", &e); status != http.StatusGatewayTimeout {
		t.Errorf("one socket: %d %+v", status, e)
	}
	if status := cl.get(tok, path+"?allow_partial=perhaps", &e); status != http.StatusBadRequest || e.Message != `allow_partial must be true or false, got "perhaps"` {
		t.Errorf("allow_partial=perhaps: %d %s", status, e.Message)
	}
	close(silent.open)
}

// TestGatewayThatStopsLeavesTheRegistryAtOnce: a gateway that stops
// cleanly deletes its entry, so listings stop waiting for it at once, long
// before its entry would expire.
func TestGatewayThatStopsLeavesTheRegistryAtOnce(t *testing.T) {
	t.Parallel()
	cl := startCluster(t, clusterConfig{ttl: time.Hour})
	acct := cl.account("")
	tok := cl.token(acct)
	cl.dial("gw-a").request(`{"action":"subscribe","auth_token":%q,"data":{"account_id":%q,"binding":"qubicle.queue"}}`, tok, acct)

	cl.gw["gw-b"].stop() // as on SIGTERM: Serve's context ends
	testkit.Eventually(t, waitLong, "gw-b left the API's registry", func() bool { return slices.Equal(cl.gatherer.Registered(), []string{"gw-a"}) })
	var p page
	if status := cl.get(tok, "/v2/accounts/"+acct+"/websockets", &p); status != http.StatusOK || !slices.Equal(p.Gateways, []string{"gw-a"}) || p.Partial || len(p.Data) != 1 {
		t.Fatalf("after gw-b stopped: %d %+v", status, p)
	}
	// Leaving twice (the context, then shutdown) is one leave.
	if err := cl.gw["gw-b"].responder.Leave(cl.ctx); err != nil {
		t.Fatal(err)
	}
}

// TestGatewayThatDiesLeavesTheRegistryWithinItsTTL: a gateway cut off
// without leaving is reported missing until its entry expires, one TTL
// after its last write; then listings go on without it.
func TestGatewayThatDiesLeavesTheRegistryWithinItsTTL(t *testing.T) {
	t.Parallel()
	const ttl = 5 * time.Second
	// A timeout shorter than the TTL, so the first listing ends before
	// gw-b's entry can expire (or else finds it gone).
	cl := startCluster(t, clusterConfig{ttl: ttl, timeout: time.Second})
	acct := cl.account("")
	tok := cl.token(acct)
	path := "/v2/accounts/" + acct + "/websockets"

	died := time.Now()
	cl.gw["gw-b"].bus.Conn().Close() // no leave: as a killed process
	// Until its entry expires, gw-b is named as missing (nobody answers on
	// its behalf); after, the listing is complete without it.
	var e listingError
	if status := cl.get(tok, path, &e); status == http.StatusGatewayTimeout {
		if !slices.Equal(e.Data.MissingGateways, []string{"gw-b"}) {
			t.Errorf("missing %v, want gw-b", e.Data.MissingGateways)
		}
	} else if slices.Contains(cl.gatherer.Registered(), "gw-b") {
		t.Errorf("listing while gw-b is registered: %d %+v", status, e)
	}
	testkit.Eventually(t, waitLong, "gw-b expired from the API's registry", func() bool { return slices.Equal(cl.gatherer.Registered(), []string{"gw-a"}) })
	t.Logf("gw-b left the registry %s after it died (TTL %s)", time.Since(died).Round(time.Millisecond), ttl)
	var p page
	if status := cl.get(tok, path, &p); status != http.StatusOK || !slices.Equal(p.Gateways, []string{"gw-a"}) || p.Partial {
		t.Fatalf("after gw-b expired: %d %+v", status, p)
	}
}

// TestTwoGatewaysWithOneNameAreReported: two gateways given one name
// overwrite each other's entry, so listings cannot wait for both; the
// gateways say so (an error log and a metric).
func TestTwoGatewaysWithOneNameAreReported(t *testing.T) {
	t.Parallel()
	b, registry := openRegistry(t, 3*time.Second)
	metrics := prometheus.NewRegistry()
	for _, reg := range []prometheus.Registerer{metrics, nil} {
		if _, err := socketlist.Serve(t.Context(), b.Conn(), emptyLister{}, socketlist.ServeConfig{Name: "cc1:5555", Registry: registry, Registerer: reg}); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, waitLong, "a conflict counted", func() bool { return counter(t, metrics, "ccevents_ws_registry_writes_total", "conflict") > 0 })
}

// TestListingNamesRegisteredGatewaysWhenNoneListens: when nobody listens
// for listings at all (every registered gateway died, their entries not yet
// expired), NATS says so at once and the listing names them, rather than
// waiting for entries to expire and answering an empty page.
func TestListingNamesRegisteredGatewaysWhenNoneListens(t *testing.T) {
	t.Parallel()
	b, registry := openRegistry(t, socketlist.RegistryTTL)
	// The doomed gateway answers and writes its entry over its own
	// connection, as a process of its own would.
	dead, err := nats.Connect(b.Conn().ConnectedUrl())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(dead.Close)
	js, err := jetstream.New(dead)
	if err != nil {
		t.Fatal(err)
	}
	deadRegistry, err := js.KeyValue(t.Context(), socketlist.RegistryBucket)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := socketlist.Serve(t.Context(), dead, emptyLister{}, socketlist.ServeConfig{Name: "cc9:5555", Registry: deadRegistry}); err != nil {
		t.Fatal(err)
	}
	g, err := socketlist.NewGatherer(t.Context(), b.Conn(), socketlist.GathererConfig{Registry: registry, Timeout: waitLong})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	testkit.Eventually(t, waitLong, "cc9 registered", func() bool { return slices.Equal(g.Registered(), []string{"cc9:5555"}) })
	dead.Close() // killed: no leave
	testkit.Eventually(t, waitLong, "the server dropped the dead gateway's subscription", func() bool {
		// A request that reached the dead subscription has no answer:
		// ask again soon.
		_, err := b.Conn().Request(socketlist.Subject, nil, 100*time.Millisecond)
		return errors.Is(err, nats.ErrNoResponders)
	})
	var missing *socketlist.MissingError
	_, err = g.List(t.Context(), socketlist.Query{AccountID: "0123456789abcdef0123456789abcdef"}, socketlist.Options{})
	if !errors.As(err, &missing) || !slices.Equal(missing.Missing, []string{"cc9:5555"}) {
		t.Fatalf("List: %v", err)
	}
}

// TestListingWithNoGatewayRunningIsEmpty: with no gateway in the registry
// the page is empty at once.
func TestListingWithNoGatewayRunningIsEmpty(t *testing.T) {
	t.Parallel()
	b, registry := openRegistry(t, socketlist.RegistryTTL)
	g, err := socketlist.NewGatherer(t.Context(), b.Conn(), socketlist.GathererConfig{Registry: registry})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	p, err := g.List(t.Context(), socketlist.Query{AccountID: "0123456789abcdef0123456789abcdef"}, socketlist.Options{})
	if err != nil || len(p.Sockets) != 0 || len(p.Gateways) != 0 || len(p.Missing) != 0 {
		t.Fatalf("List = %+v, %v; want an empty page", p, err)
	}
}

// TestListingRefusesMoreGatewaysThanItGathersFrom: past MaxGateways the
// listing is an error naming the limit, not a page from some of them.
func TestListingRefusesMoreGatewaysThanItGathersFrom(t *testing.T) {
	t.Parallel()
	b, registry := openRegistry(t, socketlist.RegistryTTL)
	for i := range socketlist.MaxGateways + 1 {
		if _, err := socketlist.Serve(t.Context(), b.Conn(), emptyLister{}, socketlist.ServeConfig{Name: fmt.Sprintf("gw-%02d", i), Registry: registry}); err != nil {
			t.Fatal(err)
		}
	}
	metrics := prometheus.NewRegistry()
	g, err := socketlist.NewGatherer(t.Context(), b.Conn(), socketlist.GathererConfig{Registry: registry, Registerer: metrics})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	testkit.Eventually(t, waitLong, "every gateway registered", func() bool { return len(g.Registered()) == socketlist.MaxGateways+1 })
	_, err = g.List(t.Context(), socketlist.Query{AccountID: "0123456789abcdef0123456789abcdef"}, socketlist.Options{})
	var tooMany *socketlist.TooManyGatewaysError
	if !errors.As(err, &tooMany) || err.Error() != "65 websocket gateways are registered; a listing gathers from at most 64" {
		t.Fatalf("List: %v", err)
	}
	if n := counter(t, metrics, "ccevents_websocket_listings_total", "too_many_gateways"); n != 1 {
		t.Errorf("too_many_gateways counted %v times", n)
	}
}

// openRegistry starts a one-node NATS cluster and opens the registry on
// it, with the given TTL.
func openRegistry(t *testing.T, ttl time.Duration) (*bus.Bus, jetstream.KeyValue) {
	t.Helper()
	b := natstest.Bus(t, bus.Config{URLs: natstest.Start(t, 1).URLs(), Memory: true})
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	defer cancel()
	registry, err := b.KeyValue(ctx, socketlist.RegistryBucket, bus.ExpireAfter(ttl))
	if err != nil {
		t.Fatal(err)
	}
	return b, registry
}

// emptyLister is a gateway without sockets.
type emptyLister struct{}

func (emptyLister) Sockets(context.Context, socketlist.Query) socketlist.Answer {
	return socketlist.Answer{Sockets: []socketlist.Socket{}}
}

// counter reads the counter name{outcome=...} from reg.
func counter(t *testing.T, reg *prometheus.Registry, name, outcome string) float64 {
	t.Helper()
	v, ok, err := promutil.Sample(reg, name, "outcome", outcome)
	if err != nil {
		t.Fatal(err)
	}
	if !ok {
		t.Fatalf("no %s{outcome=%q}", name, outcome)
	}
	return v
}
