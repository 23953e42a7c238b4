package api_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/api"
	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/auth/authtest"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/limit"
	"github.com/ccevents/ccevents/internal/natstest"
)

// fixture is a real API on a real bus with a root account and a child.
type fixture struct {
	reg      *prometheus.Registry
	bus      *bus.Bus
	auth     *auth.Service
	srv      *httptest.Server
	api      *api.Server
	root     auth.Account
	rootKey  string
	rootTok  string
	child    auth.Account
	childTok string
}

func newFixture(t *testing.T) *fixture {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	b := natstest.Bus(t, bus.Config{Name: "api-test"})
	ra := newRootAuth(t, ctx, b, auth.Options{})
	svc := ra.svc
	f := &fixture{bus: b, auth: svc, root: ra.root, rootKey: ra.key, rootTok: ra.token}
	var err error
	f.child, _, err = svc.CreateAccount(ctx, f.root.ID, "child")
	if err != nil {
		t.Fatal(err)
	}
	f.childTok = authtest.Token(t, ctx, svc, f.child.ID)
	f.reg = prometheus.NewRegistry()
	f.api, err = api.New(api.Config{Auth: svc, Publisher: b, Ready: func() error { return nil }, Gatherer: f.reg, Registerer: f.reg})
	if err != nil {
		t.Fatal(err)
	}
	f.srv = httptest.NewServer(f.api.Handler())
	t.Cleanup(f.srv.Close)
	return f
}

type reply struct {
	Status    string          `json:"status"`
	Message   string          `json:"message"`
	Data      json.RawMessage `json:"data"`
	AuthToken string          `json:"auth_token"`
}

func (f *fixture) do(t *testing.T, method, path, token, body string) (int, reply) {
	t.Helper()
	return send(t, method, f.srv.URL+path, token, body)
}

// newRequest is a request as a client of the API makes it: the token in
// X-Auth-Token, a body as JSON.
func newRequest(t *testing.T, method, url, token, body string) *http.Request {
	t.Helper()
	req, err := http.NewRequest(method, url, strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if body != "" {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	return req
}

// send makes one request and returns the status and the decoded envelope.
func send(t *testing.T, method, url, token, body string) (int, reply) {
	t.Helper()
	req := newRequest(t, method, url, token, body)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var r reply
	if err := json.Unmarshal(raw, &r); err != nil {
		t.Fatalf("%s %s: body is not JSON: %s", method, url, raw)
	}
	return resp.StatusCode, r
}

func TestAPIAuthExchangesKeyForToken(t *testing.T) {
	f := newFixture(t)
	code, r := f.do(t, "PUT", "/v2/api_auth", "", `{"data":{"api_key":"`+f.rootKey+`"}}`)
	if code != http.StatusCreated || r.Status != "success" || r.AuthToken == "" {
		t.Fatalf("got %d %+v", code, r)
	}
	claims, err := f.auth.Verify(r.AuthToken)
	if err != nil || claims.AccountID != f.root.ID {
		t.Fatalf("token does not verify for root: %+v %v", claims, err)
	}
}

func TestAPIRefusesBadRequestsWithMessages(t *testing.T) {
	f := newFixture(t)
	acc := "/v2/accounts/" + f.root.ID
	tests := []struct {
		name, method, path, token, body string
		code                            int
		message                         string
	}{
		{"wrong api key", "PUT", "/v2/api_auth", "", `{"data":{"api_key":"nope"}}`, 401, "api key is not valid"},
		{"missing api key", "PUT", "/v2/api_auth", "", `{"data":{}}`, 400, `"api_key" is required`},
		{"body not json", "PUT", "/v2/api_auth", "", `{"data":`, 400, "not valid JSON"},
		{"data not object", "PUT", "/v2/api_auth", "", `{"data":[1]}`, 400, `"data" must be a JSON object`},
		{"body not an object", "PUT", "/v2/api_auth", "", `[1]`, 400, `request body must be a JSON object like {"data":{…}}`},
		{"field of the wrong type", "PUT", "/v2/api_auth", "", `{"data":{"api_key":5}}`, 400, "request data: api_key must be a string, got number"},
		{"unknown field", "PUT", "/v2/api_auth", "", `{"data":{"api_key":"x","extra":1}}`, 400, `unknown field "extra"`},
		{"no token", "GET", acc, "", "", 401, "missing auth token"},
		{"garbage token", "GET", acc, "abc", "", 401, "auth token is not valid"},
		{"api key as token", "GET", acc, f.rootKey, "", 401, "auth token is not valid: this is an API key, not an auth token; exchange it for one with PUT /v2/api_auth"},
		{"bad account id", "GET", "/v2/accounts/XYZ", f.rootTok, "", 400, "32 lowercase hex"},
		{"child on parent", "GET", acc, f.childTok, "", 403, "may not access account " + f.root.ID},
		{"child creates under parent", "PUT", acc, f.childTok, `{"data":{"name":"x"}}`, 403, "may not access"},
		{"account without name", "PUT", acc, f.rootTok, `{"data":{}}`, 400, `"name" is required`},
		{"account name with a control character", "PUT", acc, f.rootTok, `{"data":{"name":"a\u0007b"}}`, 400, `"name" is required`},
		{"unknown route", "GET", "/v2/nothing", f.rootTok, "", 404, "no such endpoint"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, r := f.do(t, tc.method, tc.path, tc.token, tc.body)
			if code != tc.code || r.Status != "error" || !strings.Contains(r.Message, tc.message) {
				t.Errorf("got %d %q %q, want %d error containing %q", code, r.Status, r.Message, tc.code, tc.message)
			}
		})
	}
}

func TestCreateChildAccountReturnsWorkingAPIKey(t *testing.T) {
	f := newFixture(t)
	code, r := f.do(t, "PUT", "/v2/accounts/"+f.root.ID, f.rootTok, `{"data":{"name":"Support"}}`)
	if code != http.StatusCreated {
		t.Fatalf("create child: %d %s", code, r.Message)
	}
	var child struct {
		AccountID, ParentID, APIKey string `json:"-"`
	}
	var raw map[string]any
	_ = json.Unmarshal(r.Data, &raw)
	child.AccountID, _ = raw["account_id"].(string)
	child.ParentID, _ = raw["parent_id"].(string)
	child.APIKey, _ = raw["api_key"].(string)
	if child.ParentID != f.root.ID || child.APIKey == "" || !event.ValidAccountID(child.AccountID) {
		t.Fatalf("unexpected child %+v", raw)
	}
	code, r = f.do(t, "PUT", "/v2/api_auth", "", `{"data":{"api_key":"`+child.APIKey+`"}}`)
	childToken := r.AuthToken
	if code != http.StatusCreated || childToken == "" {
		t.Fatalf("child key does not log in: %d %s", code, r.Message)
	}
	// The parent sees the child in its list; the child's token reads itself.
	code, r = f.do(t, "GET", "/v2/accounts/"+f.root.ID+"/children", f.rootTok, "")
	if code != 200 || !bytes.Contains(r.Data, []byte(child.AccountID)) {
		t.Errorf("children of root: %d %s", code, r.Data)
	}
	if code, r = f.do(t, "GET", "/v2/accounts/"+child.AccountID, childToken, ""); code != 200 {
		t.Errorf("child reads itself: %d %s", code, r.Message)
	}
}

func TestPublishStoresValidEventAndFillsCorrelationFields(t *testing.T) {
	f := newFixture(t)
	subject := "qubicle.queue." + f.child.ID + ".Q1.join"
	got := make(chan bus.Message, 1)
	fl, _, err := f.bus.FollowNew(t.Context(), []string{subject}, func(m bus.Message) { got <- m })
	if err != nil {
		t.Fatal(err)
	}
	defer fl.Stop()
	// A parent's token publishes into its child account.
	body := `{"data":{"routing_key":"` + subject + `","payload":{"session_id":"S1","caller_id_name":"Ada","caller_id_number":"+15550100","position":1,"estimated_wait_s":30}}}`
	code, r := f.do(t, "POST", "/v2/accounts/"+f.child.ID+"/events", f.rootTok, body)
	if code != http.StatusCreated {
		t.Fatalf("publish: %d %s", code, r.Message)
	}
	var res struct {
		Sequence uint64 `json:"sequence"`
		EventID  string `json:"event_id"`
	}
	_ = json.Unmarshal(r.Data, &res)
	select {
	case m := <-got:
		if m.Sequence != res.Sequence {
			t.Errorf("stored at %d, reply says %d", m.Sequence, res.Sequence)
		}
		var p map[string]any
		_ = json.Unmarshal(m.Data, &p)
		for _, k := range []string{"account_id", "event", "event_id", "timestamp", "timestamp_ms", "queue_id"} {
			if p[k] == nil {
				t.Errorf("stored payload lacks %s: %s", k, m.Data)
			}
		}
		if p["event"] != "queue.join" || p["queue_id"] != "Q1" || p["event_id"] != res.EventID {
			t.Errorf("correlation fields wrong: %s", m.Data)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("published event never reached the bus")
	}
}

func TestPublishRefusesEventsThatDoNotFit(t *testing.T) {
	f := newFixture(t)
	acc := f.child.ID
	path := "/v2/accounts/" + acc + "/events"
	tests := []struct {
		name, body string
		code       int
		message    string
	}{
		{"no routing key", `{"data":{"payload":{}}}`, 400, `"routing_key" is required`},
		{"malformed routing key", `{"data":{"routing_key":"qubicle.queue","payload":{}}}`, 400, "routing_key"},
		{"foreign account", `{"data":{"routing_key":"qubicle.queue.` + f.root.ID + `.Q1.join","payload":{}}}`, 403, "names account " + f.root.ID},
		{"unknown event", `{"data":{"routing_key":"qubicle.queue.` + acc + `.Q1.explode","payload":{}}}`, 400, "explode"},
		{"payload not object", `{"data":{"routing_key":"qubicle.queue.` + acc + `.Q1.create","payload":[1]}}`, 400, "must be a JSON object"},
		{"missing required field", `{"data":{"routing_key":"qubicle.queue.` + acc + `.Q1.join","payload":{"session_id":"S1"}}}`, 400, "required"},
		{"sequence given", `{"data":{"routing_key":"qubicle.queue.` + acc + `.Q1.join","payload":{"sequence":5}}}`, 400, "sequence"},
		{"statistics", `{"data":{"routing_key":"qubicle.stats.` + acc + `._total.account","payload":{}}}`, 400, "computed by the engine"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			code, r := f.do(t, "POST", path, f.childTok, tc.body)
			if code != tc.code || !strings.Contains(r.Message, tc.message) {
				t.Errorf("got %d %q, want %d containing %q", code, r.Message, tc.code, tc.message)
			}
		})
	}
}

func TestIngestOverNATSValidatesLikeREST(t *testing.T) {
	f := newFixture(t)
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	if err := f.api.ServeIngest(ctx, f.bus.Conn()); err != nil {
		t.Fatal(err)
	}
	ask := func(body string) reply {
		msg, err := f.bus.Conn().Request(api.IngestSubject, []byte(body), 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		var r reply
		if err := json.Unmarshal(msg.Data, &r); err != nil {
			t.Fatalf("reply not JSON: %s", msg.Data)
		}
		return r
	}
	good := `{"auth_token":"` + f.childTok + `","routing_key":"qubicle.session.` + f.child.ID + `.S1.create","payload":{"caller_id_name":"Ada","caller_id_number":"+15550100","callee":"+15550199","direction":"inbound"}}`
	if r := ask(good); r.Status != "success" {
		t.Fatalf("valid ingest refused: %s", r.Message)
	}
	if r := ask(`{"routing_key":"x"}`); r.Status != "error" || !strings.Contains(r.Message, "auth_token") {
		t.Errorf("missing token: %+v", r)
	}
	foreign := strings.Replace(good, f.childTok, f.childTok, 1)
	foreign = strings.Replace(foreign, `"routing_key":"qubicle.session.`+f.child.ID, `"account_id":"`+f.root.ID+`","routing_key":"qubicle.session.`+f.root.ID, 1)
	if r := ask(foreign); r.Status != "error" || !strings.Contains(r.Message, "may not access") {
		t.Errorf("child publishing into parent: %+v", r)
	}
}

func TestHealthzSaysWhichBuildRuns(t *testing.T) {
	f := newFixture(t)
	code, r := f.do(t, "GET", "/healthz", "", "")
	var data map[string]string
	_ = json.Unmarshal(r.Data, &data)
	if code != 200 || data["state"] != "alive" || data["go_version"] != runtime.Version() || data["nats_version"] != server.VERSION || data["version"] == "" {
		t.Errorf("/healthz: %d %s", code, r.Data)
	}
}

func TestHealthAndMetrics(t *testing.T) {
	f := newFixture(t)
	for _, p := range []string{"/healthz", "/readyz"} {
		if code, r := f.do(t, "GET", p, "", ""); code != 200 || r.Status != "success" {
			t.Errorf("%s: %d %+v", p, code, r)
		}
	}
	resp, err := http.Get(f.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Errorf("/metrics: %d", resp.StatusCode)
	}
}

func TestLoginBackoffMakesARepeatedBadKeyWait(t *testing.T) {
	f := newFixture(t)
	srv, err := api.New(api.Config{Auth: f.auth, Publisher: f.bus,
		LoginBackoff: limit.NewBackoff(limit.BackoffConfig{Failures: 3, Window: time.Minute, Initial: time.Minute})})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	f.srv = hs
	for i := 0; i < 3; i++ {
		if code, _ := f.do(t, "PUT", "/v2/api_auth", "", `{"data":{"api_key":"wrong"}}`); code != http.StatusUnauthorized {
			t.Fatalf("bad key %d: got %d, want 401", i, code)
		}
	}
	// Now even the right key must wait: the address is backing off.
	code, r := f.do(t, "PUT", "/v2/api_auth", "", `{"data":{"api_key":"`+f.rootKey+`"}}`)
	if code != http.StatusTooManyRequests || !strings.Contains(r.Message, "too many failed logins") {
		t.Errorf("got %d %q, want 429 asking to wait", code, r.Message)
	}
}

func TestAPIKeyRotationAndRevocation(t *testing.T) {
	f := newFixture(t)
	path := "/v2/accounts/" + f.root.ID + "/api_key"
	code, r := f.do(t, "PUT", path, f.rootTok, "")
	if code != 200 {
		t.Fatalf("rotate: %d %s", code, r.Message)
	}
	var rotated struct {
		APIKey string `json:"api_key"`
	}
	_ = json.Unmarshal(r.Data, &rotated)
	if code, _ := f.do(t, "PUT", "/v2/api_auth", "", `{"data":{"api_key":"`+f.rootKey+`"}}`); code != 401 {
		t.Errorf("old key still logs in after rotation: %d", code)
	}
	if code, _ := f.do(t, "PUT", "/v2/api_auth", "", `{"data":{"api_key":"`+rotated.APIKey+`"}}`); code != 201 {
		t.Errorf("new key does not log in: %d", code)
	}
	// A child may not touch its parent's key.
	if code, _ := f.do(t, "DELETE", path, f.childTok, ""); code != 403 {
		t.Errorf("child revoking parent's key: %d", code)
	}
	if code, r := f.do(t, "DELETE", path, f.rootTok, ""); code != 200 {
		t.Fatalf("revoke: %d %s", code, r.Message)
	}
	if code, r := f.do(t, "PUT", "/v2/api_auth", "", `{"data":{"api_key":"`+rotated.APIKey+`"}}`); code != 401 || !strings.Contains(r.Message, "revoked") {
		t.Errorf("revoked key: %d %q", code, r.Message)
	}
	// The token issued before keeps working until it expires.
	if code, _ := f.do(t, "GET", "/v2/accounts/"+f.root.ID, f.rootTok, ""); code != 200 {
		t.Errorf("token issued before revocation: %d", code)
	}
}

func TestSigningKeyRotationKeepsOldTokensValid(t *testing.T) {
	f := newFixture(t)
	if code, r := f.do(t, "POST", "/v2/signing_keys", f.childTok, ""); code != 403 || !strings.Contains(r.Message, "only the root account") {
		t.Errorf("child rotating signing key: %d %q", code, r.Message)
	}
	before, _ := f.auth.Verify(f.rootTok)
	code, r := f.do(t, "POST", "/v2/signing_keys", f.rootTok, "")
	if code != 200 {
		t.Fatalf("rotate signing key: %d %s", code, r.Message)
	}
	var res struct {
		KeyID string `json:"key_id"`
	}
	_ = json.Unmarshal(r.Data, &res)
	if res.KeyID == "" || res.KeyID == before.KeyID {
		t.Fatalf("new key id %q, old %q", res.KeyID, before.KeyID)
	}
	if _, err := f.auth.Verify(f.rootTok); err != nil {
		t.Errorf("token signed with the old key stopped verifying: %v", err)
	}
	code, r = f.do(t, "PUT", "/v2/api_auth", "", `{"data":{"api_key":"`+f.rootKey+`"}}`)
	if code != 201 {
		t.Fatalf("login: %d", code)
	}
	if c, err := f.auth.Verify(r.AuthToken); err != nil || c.KeyID != res.KeyID {
		t.Errorf("new token signed with %q (%v), want %q", c.KeyID, err, res.KeyID)
	}
}

func TestPublishReportsEveryMistakeOfAPayload(t *testing.T) {
	f := newFixture(t)
	acc := f.child.ID
	body := `{"data":{"routing_key":"qubicle.queue.` + acc + `.Q1.join","payload":{"session_id":"S1","position":0,"estimated_wait_s":"soon","colour":"red"}}}`
	code, r := f.do(t, "POST", "/v2/accounts/"+acc+"/events", f.childTok, body)
	want := []string{
		`field "caller_id_number": required; expected a non-empty string`,
		`field "position": expected an integer ≥ 1, got 0`,
		`field "estimated_wait_s": expected an integer ≥ 0, got "soon"`,
		`field "colour": not a field of queue.join; put producer extensions under "custom"`,
	}
	var data struct {
		Errors []string `json:"errors"`
	}
	_ = json.Unmarshal(r.Data, &data)
	if code != 400 || r.Message != want[0]+" (and 3 more mistakes)" || !slices.Equal(data.Errors, want) {
		t.Errorf("got %d, message %q, errors %q; want 400, %q and %q", code, r.Message, data.Errors, want[0]+" (and 3 more mistakes)", want)
	}
}
