package socketlist_test

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"

	"github.com/ccevents/ccevents/internal/api"
	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/gateway"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/socketlist"
)

// waitLong bounds every wait; it only matters when a test is about to fail.
const waitLong = 30 * time.Second

// cluster is two gateways, each on its own NATS node and bus, and a REST
// API on the first, asking both.
type cluster struct {
	t    *testing.T
	ctx  context.Context
	auth *auth.Service
	root string
	api  string
	gw   map[string]string // gateway name -> ws:// URL
}

func startCluster(t *testing.T) *cluster {
	t.Helper()
	nc := natstest.Start(t, 2)
	cl := &cluster{t: t, ctx: t.Context(), gw: map[string]string{}}
	var gatherer *socketlist.Gatherer
	for i, name := range []string{"gw-a", "gw-b"} {
		ctx, cancel := context.WithTimeout(cl.ctx, waitLong)
		b, err := bus.Open(ctx, bus.Config{URLs: []string{nc.URL(i)}, Memory: true, Name: name})
		if err != nil {
			t.Fatalf("%s: open bus: %v", name, err)
		}
		t.Cleanup(b.Close)
		kv, err := b.KeyValue(ctx, auth.DefaultBucket)
		if err != nil {
			t.Fatalf("%s: auth bucket: %v", name, err)
		}
		as, err := auth.NewService(ctx, kv, auth.Options{})
		if err != nil {
			t.Fatalf("%s: auth: %v", name, err)
		}
		t.Cleanup(as.Close)
		if i == 0 {
			root, _, _, err := as.EnsureRoot(ctx, "root")
			if err != nil {
				t.Fatal(err)
			}
			cl.auth, cl.root = as, root.ID
			if gatherer, err = socketlist.NewGatherer(b.Conn(), socketlist.GathererConfig{}); err != nil {
				t.Fatal(err)
			}
		}
		cancel()
		gw, err := gateway.New(gateway.Config{Name: name}, b, as)
		if err != nil {
			t.Fatal(err)
		}
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		done := make(chan error, 1)
		go func() { done <- gw.Serve(cl.ctx, ln) }()
		t.Cleanup(func() {
			sctx, cancel := context.WithTimeout(context.Background(), waitLong)
			defer cancel()
			_ = gw.Shutdown(sctx)
			<-done
		})
		if err := socketlist.Serve(cl.ctx, b.Conn(), gw, nil); err != nil {
			t.Fatal(err)
		}
		cl.gw[name] = "ws://" + ln.Addr().String()
	}
	apiSrv, err := api.New(api.Config{Auth: cl.auth, Publisher: nopPublisher{}, Sockets: gatherer})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(apiSrv.Handler())
	t.Cleanup(hs.Close)
	cl.api = hs.URL
	return cl
}

type nopPublisher struct{}

func (nopPublisher) Publish(context.Context, string, []byte, string) (uint64, error) { return 0, nil }

func (cl *cluster) account(parent string) string {
	cl.t.Helper()
	if parent == "" {
		parent = cl.root
	}
	a, _, err := cl.auth.CreateAccount(cl.ctx, parent, "test")
	if err != nil {
		cl.t.Fatal(err)
	}
	return a.ID
}

func (cl *cluster) token(account string) string {
	cl.t.Helper()
	tok, _, err := cl.auth.IssueToken(cl.ctx, account, time.Hour)
	if err != nil {
		cl.t.Fatal(err)
	}
	return tok
}

// socket is a websocket to one gateway, sending requests as Kazoo clients
// do and reading their replies.
type socket struct {
	t  *testing.T
	nc net.Conn
}

func (cl *cluster) dial(gateway string) *socket {
	cl.t.Helper()
	ctx, cancel := context.WithTimeout(cl.ctx, waitLong)
	defer cancel()
	nc, _, _, err := ws.Dial(ctx, cl.gw[gateway])
	if err != nil {
		cl.t.Fatal(err)
	}
	cl.t.Cleanup(func() { nc.Close() })
	return &socket{t: cl.t, nc: nc}
}

// request sends msg and returns the reply's status, failing on an error.
func (s *socket) request(format string, args ...any) {
	s.t.Helper()
	_ = s.nc.SetDeadline(time.Now().Add(waitLong))
	if err := wsutil.WriteClientText(s.nc, fmt.Appendf(nil, format, args...)); err != nil {
		s.t.Fatal(err)
	}
	p, err := wsutil.ReadServerText(s.nc)
	if err != nil {
		s.t.Fatal(err)
	}
	var r struct{ Status string }
	if json.Unmarshal(p, &r) != nil || r.Status != "success" {
		s.t.Fatalf("reply %s", p)
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

// list reads one page of an account's sockets once both gateways are in it:
// a gateway slower than the stall interval is left out of a page, which
// a busy test machine may cause now and then.
func (cl *cluster) list(token, path string) page {
	cl.t.Helper()
	deadline := time.Now().Add(waitLong)
	for {
		var p page
		if status := cl.get(token, path, &p); status != http.StatusOK {
			cl.t.Fatalf("GET %s: %d %s", path, status, p.Message)
		}
		if slices.Equal(p.Gateways, []string{"gw-a", "gw-b"}) {
			return p
		}
		if time.Now().After(deadline) {
			cl.t.Fatalf("GET %s: only %v answered", path, p.Gateways)
		}
	}
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
	cl := startCluster(t)
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
	s1.nc.Close()
	deadline := time.Now().Add(waitLong)
	for p := cl.list(tok1, "/v2/accounts/"+c1+"/websockets"); len(p.Data) != 0; p = cl.list(tok1, "/v2/accounts/"+c1+"/websockets") {
		if time.Now().After(deadline) {
			t.Fatalf("closed socket still listed: %+v", p.Data)
		}
	}

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

func TestListingWithNoGatewayRunningIsEmpty(t *testing.T) {
	t.Parallel()
	nc := natstest.Start(t, 1)
	conn := nc.Connect()
	g, err := socketlist.NewGatherer(conn, socketlist.GathererConfig{})
	if err != nil {
		t.Fatal(err)
	}
	p, err := g.List(t.Context(), socketlist.Query{AccountID: "0123456789abcdef0123456789abcdef"})
	if err != nil || len(p.Sockets) != 0 || len(p.Gateways) != 0 {
		t.Fatalf("List = %+v, %v; want an empty page", p, err)
	}
}
