package api_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/api"
	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/engine/enginetest"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/sipstore"
	"github.com/ccevents/ccevents/internal/socketlist"
)

// engineFixture is the API with a real engine on a real bus, and a token
// of the root account.
type engineFixture struct {
	bus    *bus.Bus
	eng    *engine.Engine
	api    *api.Server
	srv    *httptest.Server
	acc    string
	apiKey string // the root account's
	token  string
}

func newEngineFixture(t *testing.T) *engineFixture {
	t.Helper()
	b := natstest.Bus(t, bus.Config{Memory: true, Name: "api-engine-test"})
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	ra := newRootAuth(t, ctx, b, auth.Options{Logger: slog.New(slog.DiscardHandler)})
	ekv, err := b.KeyValue(ctx, engine.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	eng := enginetest.Start(t, engine.Config{Publisher: b, KV: ekv, Clock: engine.NewVirtualClock(time.Date(2026, 11, 25, 9, 0, 0, 0, time.UTC))})
	skv, err := b.KeyValue(ctx, sipstore.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	sip, err := sipstore.Open(ctx, skv, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sip.Close)
	gateways, err := b.KeyValue(ctx, socketlist.RegistryBucket, bus.ExpireAfter(socketlist.RegistryTTL))
	if err != nil {
		t.Fatal(err)
	}
	sockets, err := socketlist.NewGatherer(t.Context(), b.Conn(), socketlist.GathererConfig{Registry: gateways})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(sockets.Close)
	a, err := api.New(api.Config{Auth: ra.svc, Publisher: b, Engine: eng, SIP: sip, Sockets: sockets})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(a.Handler())
	t.Cleanup(srv.Close)
	return &engineFixture{bus: b, eng: eng, api: a, srv: srv, acc: ra.root.ID, apiKey: ra.key, token: ra.token}
}

// call sends a request under /v2/accounts/{acc} and returns the status and
// the decoded envelope.
func (f *engineFixture) call(t *testing.T, method, path, body string) (int, reply) {
	t.Helper()
	return send(t, method, f.srv.URL+"/v2/accounts/"+f.acc+path, f.token, body)
}

func (f *engineFixture) ok(t *testing.T, want int, method, path, body string, out any) {
	t.Helper()
	code, r := f.call(t, method, path, body)
	if code != want || r.Status != "success" {
		t.Fatalf("%s %s: %d %s %s, want %d", method, path, code, r.Status, r.Message, want)
	}
	if out != nil {
		if err := json.Unmarshal(r.Data, out); err != nil {
			t.Fatalf("%s %s: data %s: %v", method, path, r.Data, err)
		}
	}
}

func TestEngineRoutesRunACallFromArrivalToFinalize(t *testing.T) {
	f := newEngineFixture(t)
	var q engine.Queue
	f.ok(t, 201, "PUT", "/queues", `{"data":{"id":"sales","name":"Sales","strategy":"longest_idle","wrapup_s":0}}`, &q)
	if q.Strategy != "most_idle" || q.OfferTimeoutS != engine.DefaultOfferTimeoutS {
		t.Errorf("created queue %+v", q)
	}
	f.ok(t, 201, "PUT", "/recipients", `{"data":{"id":"alice","name":"Alice","queues":["sales"]}}`, nil)
	var rec engine.Recipient
	f.ok(t, 200, "POST", "/recipients/alice/status", `{"data":{"action":"login"}}`, &rec)
	if rec.State != "ready" {
		t.Errorf("after login: %+v", rec)
	}
	var call engine.Call
	f.ok(t, 201, "POST", "/calls", `{"data":{"queue_id":"sales","caller_id_number":"+15550100"}}`, &call)
	if call.State != engine.CallWaiting || call.Position != 1 || len(call.SessionID) != 32 {
		t.Errorf("arrival: %+v", call)
	}
	var snap engine.Snapshot
	f.ok(t, 200, "GET", "/qubicle_state", "", &snap)
	if len(snap.Recipients) != 1 || snap.Recipients[0].Offer == nil || snap.Recipients[0].Offer.SessionID != call.SessionID {
		t.Fatalf("snapshot does not show the offer: %+v", snap)
	}
	bounds, err := f.bus.Bounds(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if snap.Sequence != bounds.Last || snap.Epoch != f.bus.Epoch() {
		t.Errorf("snapshot at %d epoch %s, stream at %d epoch %s", snap.Sequence, snap.Epoch, bounds.Last, f.bus.Epoch())
	}
	s := "/calls/" + call.SessionID
	f.ok(t, 200, "POST", s+"/accept", "", nil) // the only recipient ringing
	f.ok(t, 200, "POST", s+"/hangup", `{"data":{"hangup_by":"recipient"}}`, nil)
	f.ok(t, 200, "POST", s+"/finalize", `{"data":{"disposition":"sold","notes":"two seats"}}`, nil)
	code, r := f.call(t, "POST", s+"/hangup", "")
	if code != http.StatusNotFound || !strings.Contains(r.Message, "does not exist or has ended") {
		t.Errorf("hangup after the end: %d %s", code, r.Message)
	}
	var qs []engine.Queue
	f.ok(t, 200, "GET", "/queues", "", &qs)
	if len(qs) != 1 || qs[0].Waiting != 0 || len(qs[0].Members) != 1 {
		t.Errorf("queues: %+v", qs)
	}
	f.ok(t, 200, "POST", "/recipients/alice/sync", "", nil)
	f.ok(t, 200, "DELETE", "/queues/sales", "", nil)
	code, _ = f.call(t, "GET", "/queues/sales", "")
	if code != http.StatusNotFound {
		t.Errorf("deleted queue answers %d", code)
	}
}

func TestEngineRoutesRefuseBadAndImpossibleRequests(t *testing.T) {
	f := newEngineFixture(t)
	f.ok(t, 201, "PUT", "/queues", `{"data":{"id":"q","name":"Q"}}`, nil)
	f.ok(t, 201, "PUT", "/recipients", `{"data":{"id":"r1","queues":["q"]}}`, nil)
	cases := []struct {
		name, method, path, body string
		code                     int
		says                     string
	}{
		{"ready while logged out", "POST", "/recipients/r1/status", `{"data":{"action":"ready"}}`, 409, "recipient r1 is logged out; log in before going ready"},
		{"unknown action", "POST", "/recipients/r1/status", `{"data":{"action":"dance"}}`, 400, "action must be one of"},
		{"unknown field", "PUT", "/queues", `{"data":{"name":"x","colour":"red"}}`, 400, `unknown field "colour"`},
		{"bad strategy", "PUT", "/queues", `{"data":{"name":"x","strategy":"random"}}`, 400, "strategy must be one of"},
		{"wrong type", "PUT", "/queues", `{"data":{"name":"x","wrapup_s":"ten"}}`, 400, "wrapup_s"},
		{"duplicate queue", "PUT", "/queues", `{"data":{"id":"q","name":"again"}}`, 409, "queue q already exists"},
		{"unknown queue", "GET", "/queues/nope", "", 404, "queue nope does not exist"},
		{"unknown recipient", "DELETE", "/recipients/nope", "", 404, "recipient nope does not exist"},
		{"path and body ids differ", "POST", "/queues/q", `{"data":{"id":"other","name":"Q"}}`, 400, "does not match"},
		{"call to an unknown queue", "POST", "/calls", `{"data":{"queue_id":"nope"}}`, 404, "queue nope does not exist"},
		{"accept an unknown call", "POST", "/calls/nope/accept", `{"data":{"recipient_id":"r1"}}`, 404, "call nope does not exist"},
		{"bad hangup party", "POST", "/calls/nope/hangup", `{"data":{"hangup_by":"everyone"}}`, 400, "hangup_by must be"},
		{"wiretap of an idle recipient", "POST", "/wiretaps", `{"data":{"action":"start","recipient_id":"r1","supervisor_id":"sup"}}`, 409, "nothing to monitor"},
		{"wiretap bad action", "POST", "/wiretaps", `{"data":{"action":"listen","recipient_id":"r1","supervisor_id":"sup"}}`, 400, `action must be "start" or "stop"`},
		{"external call bad action", "POST", "/recipients/r1/external_call", `{"data":{"action":"dial"}}`, 400, `action must be "start" or "end"`},
		{"external call while logged out", "POST", "/recipients/r1/external_call", `{"data":{"action":"start","number":"+15550100"}}`, 409, "log in before starting an external call"},
		{"missing body", "PUT", "/recipients", "", 400, "request body is empty"},
		{"service level out of range", "PUT", "/queues", `{"data":{"name":"x","service_level_s":0.5}}`, 400, "service_level_s"},
		{"service level target over 100", "PUT", "/queues", `{"data":{"name":"x","service_level_target_pct":120}}`, 400, "service_level_target_pct must be between 1 and 100, got 120"},
		{"negative short abandon", "PUT", "/queues", `{"data":{"name":"x","short_abandon_s":-1}}`, 400, "short_abandon_s must be between 0 and 600, got -1"},
		{"reserved queue id", "PUT", "/queues", `{"data":{"id":"_total","name":"x"}}`, 400, "queue id _total is reserved"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			code, r := f.call(t, c.method, c.path, c.body)
			if code != c.code || r.Status != "error" || !strings.Contains(r.Message, c.says) {
				t.Errorf("%s %s: %d %q, want %d saying %q", c.method, c.path, code, r.Message, c.code, c.says)
			}
		})
	}
	// Another account's token gets nothing.
	req, _ := http.NewRequest("GET", f.srv.URL+"/v2/accounts/"+f.acc+"/queues", nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: %d", resp.StatusCode)
	}
}

func TestStatsRouteReportsWhatTheQueuesCountedWithTheirTrend(t *testing.T) {
	f := newEngineFixture(t)
	f.ok(t, 201, "PUT", "/queues", `{"data":{"id":"sales","name":"Sales","service_level_s":15,"service_level_target_pct":90,"short_abandon_s":0}}`, nil)
	f.ok(t, 201, "PUT", "/recipients", `{"data":{"id":"alice","queues":["sales"]}}`, nil)
	f.ok(t, 200, "POST", "/recipients/alice/status", `{"data":{"action":"login"}}`, nil)
	var call engine.Call
	f.ok(t, 201, "POST", "/calls", `{"data":{"queue_id":"sales","caller_id_number":"+15550100"}}`, &call)
	f.ok(t, 200, "POST", "/calls/"+call.SessionID+"/accept", "", nil)
	f.ok(t, 201, "POST", "/calls", `{"data":{"queue_id":"sales","caller_id_number":"+15550101"}}`, &call)
	f.ok(t, 200, "POST", "/calls/"+call.SessionID+"/hangup", "", nil)

	var st engine.StatsReport
	f.ok(t, 200, "GET", "/qubicle_stats", "", &st)
	bounds, err := f.bus.Bounds(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if st.AccountID != f.acc || st.Sequence != bounds.Last || st.Epoch != f.bus.Epoch() || st.Timestamp != "2026-11-25T09:00:00.000Z" {
		t.Errorf("position %d %s at %s, stream at %d %s", st.Sequence, st.Epoch, st.Timestamp, bounds.Last, f.bus.Epoch())
	}
	if len(st.Queues) != 1 {
		t.Fatalf("queues %+v", st.Queues)
	}
	q := st.Queues[0]
	w := q.Today
	if q.QueueID != "sales" || q.ServiceLevelS != 15 || q.ServiceLevelTargetPct != 90 || q.ShortAbandonS != 0 ||
		w.Offered != 2 || w.Answered != 1 || w.Abandoned != 1 || *w.ServiceLevelPct != 50 || q.Recipients.Busy != 1 {
		t.Errorf("queue %+v today %+v", q.QueueFigures, w)
	}
	if len(q.Trend) != 60 || q.Trend[59].Minute != "2026-11-25T09:00:00.000Z" || q.Trend[59].WaitingPeak != 1 {
		t.Errorf("trend %+v", q.Trend)
	}
	if st.Account.Today.Offered != 2 || st.Account.Recipients.LoggedIn != 1 {
		t.Errorf("account %+v", st.Account)
	}
	// The snapshot carries the same figures, without the trend.
	var snap engine.Snapshot
	f.ok(t, 200, "GET", "/qubicle_state", "", &snap)
	if len(snap.Stats.Queues) != 1 || snap.Stats.Queues[0].Today.Answered != 1 || snap.Stats.Queues[0].Trend != nil {
		t.Errorf("snapshot stats %+v", snap.Stats)
	}
}
