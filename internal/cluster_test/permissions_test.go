package clustertest

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/ccevents/ccevents/internal/wstest"
)

// authConfFromDocs is the ccevents-auth.conf block of docs/operations.md:
// the test runs with exactly what operators are told to configure.
func authConfFromDocs(t *testing.T) string {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("..", "..", "docs", "operations.md"))
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	_, after, ok := strings.Cut(doc, "<!-- ccevents-auth.conf")
	if !ok {
		t.Fatal("docs/operations.md has no <!-- ccevents-auth.conf --> block")
	}
	_, after, _ = strings.Cut(after, "```\n")
	block, _, ok := strings.Cut(after, "```")
	if !ok {
		t.Fatal("the ccevents-auth.conf block of docs/operations.md is not closed")
	}
	return block
}

// identities makes an nkey per name of the documented configuration and
// returns the seed files and the variables defining the public keys.
func identities(t *testing.T, names ...string) (seeds map[string]string, vars string) {
	t.Helper()
	dir := t.TempDir()
	seeds = map[string]string{}
	for _, name := range names {
		kp, err := nkeys.CreateUser()
		if err != nil {
			t.Fatal(err)
		}
		seed, _ := kp.Seed()
		pub, _ := kp.PublicKey()
		seeds[name] = filepath.Join(dir, strings.ToLower(name)+".nk")
		if err := os.WriteFile(seeds[name], seed, 0o600); err != nil {
			t.Fatal(err)
		}
		vars += fmt.Sprintf("%s_NKEY: %q\n", name, pub)
	}
	return seeds, vars
}

// violations connects as seedFile and collects the permission violations
// the server reports to it.
type violations struct {
	nc   *nats.Conn
	errs chan error
}

// connectAs connects as the identity in seedFile, with ccevents' reply
// subjects unless it is the producer's.
func connectAs(t *testing.T, c *natstest.Cluster, seedFile string) *violations {
	t.Helper()
	creds, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		t.Fatal(err)
	}
	opts := []nats.Option{creds}
	if !strings.HasSuffix(seedFile, "producer.nk") {
		opts = append(opts, nats.CustomInboxPrefix(bus.InboxPrefix))
	}
	v := &violations{errs: make(chan error, 64)}
	v.nc = c.Connect(append(opts, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case v.errs <- err:
		default:
		}
	}))...)
	return v
}

// refused waits for the server to refuse subject to this identity.
func (v *violations) refused(t *testing.T, who, subject string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-v.errs:
			if strings.Contains(err.Error(), "permissions violation") && strings.Contains(err.Error(), subject) {
				return
			}
		case <-timeout:
			t.Errorf("%s was not refused %s", who, subject)
			return
		}
	}
}

// tokenKeyID is the signing key a token names in its header.
func tokenKeyID(t *testing.T, token string) string {
	t.Helper()
	head, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(head)
	if err != nil {
		t.Fatal(err)
	}
	var h struct {
		Kid string `json:"kid"`
	}
	_ = json.Unmarshal(raw, &h)
	return h.Kid
}

// TestEachRoleWorksWithOnlyItsNATSPermissions runs a gateway, an engine and
// two API nodes, each with its own identity, on a NATS cluster configured
// with the documented ccevents-auth.conf: everything a client does works,
// with not one permission violation, and what each identity must not do
// is refused.
func TestEachRoleWorksWithOnlyItsNATSPermissions(t *testing.T) {
	skipShort(t)
	seeds, vars := identities(t, "GATEWAY", "ENGINE", "API", "NODE", "PRODUCER")
	c := natstest.StartWithAuth(t, 3, vars+authConfFromDocs(t))

	// The gateway first: it finds nothing and creates what it reads.
	// The first API node creates the seal key file; the second is given it.
	sealKey := filepath.Join(t.TempDir(), "signing.key")
	gw := startNode(t, c, "gw", "gateway", "--nats-nkey", seeds["GATEWAY"])
	api := startNode(t, c, "api", "api", "--nats-nkey", seeds["API"], "--signing-key-file", sealKey)
	// SIP front ends on an engine node and on an API node: they follow
	// agents' events and read the telephony configuration.
	eng := startNode(t, c, "eng", "engine", "--nats-nkey", seeds["ENGINE"], "--sip-addr", "127.0.0.1:0")
	api2 := startNode(t, c, "api2", "api", "--nats-nkey", seeds["API"], "--signing-key-file", sealKey, "--sip-addr", "127.0.0.1:0")
	nodes := []*node{gw, api, eng, api2}

	account, key := rootOf(t, api)
	rc := login(t, api, account, key)
	got := subscribe(t, gw.WSURL(), rc.token, account, nil)
	// REST → engine over ccevents.engine.>, events → stream → gateway.
	ids := produce(t, rc, 3, nil).ids
	// The telephony configuration, written by the API node.
	rc.call(t, http.MethodPut, "/v2/accounts/{ACCOUNT_ID}/sip_numbers", map[string]string{"number": "+15550100", "queue_id": ids[0]}, http.StatusCreated)
	// A producer through the validated ingest.
	producer := connectAs(t, c, seeds["PRODUCER"])
	req := fmt.Sprintf(`{"auth_token":%q,"routing_key":"qubicle.queue.%s.support.join","payload":{"session_id":"call-1","caller_id_number":"+15550100","position":1,"estimated_wait_s":45}}`, rc.token, account)
	reply, err := producer.nc.Request(bus.IngestSubject, []byte(req), 10*time.Second)
	if err != nil || !strings.Contains(string(reply.Data), `"status":"success"`) {
		t.Fatalf("producer's ingest request: %v %s", err, reply.Data)
	}
	testkit.EventuallyNoError(t, 30*time.Second, "the queue creates and the producer's join", func() error {
		if n := len(got.all()); n != len(ids)+1 {
			return fmt.Errorf("the client received %d events, want %d queue creates and the producer's join", n, len(ids))
		}
		return nil
	})
	if last := got.all()[len(ids)]; last.RoutingKey != "qubicle.queue."+account+".support.join" {
		t.Errorf("last event %s, want the producer's join", last.RoutingKey)
	}

	// The websocket listing: the API node watches the registry the
	// gateway writes, and waits for the gateway's answer.
	if status, page, err := rc.do(http.MethodGet, "/v2/accounts/{ACCOUNT_ID}/websockets", nil); err != nil || status != http.StatusOK ||
		!strings.Contains(string(page), `"partial":false`) || strings.Contains(string(page), `"gateways":[]`) || !strings.Contains(string(page), `"websocket_session_id"`) {
		t.Errorf("websocket listing: %d %s %v", status, page, err)
	}

	// A snapshot through the gateway: it routes the command to the engine.
	conn := wstest.Dial(t, gw.WSURL())
	conn.ReadWait = 30 * time.Second
	sub := fmt.Sprintf(`{"action":"subscribe","auth_token":%q,"request_id":"snap","data":{"account_id":%q,"binding":"qubicle.*.%s.#","snapshot":true}}`, rc.token, account, account)
	conn.Send(sub)
	if snap, err := conn.Next(); err != nil || !strings.Contains(string(snap), `"snapshot":{`) || !strings.Contains(string(snap), ids[0]) {
		t.Fatalf("snapshot through the gateway: %v %.300s", err, snap)
	}

	// A rotated signing key signs on the other API node too, and the
	// gateway accepts its tokens.
	newKey := rc.call(t, http.MethodPost, "/v2/signing_keys", nil, http.StatusOK)
	var rotated struct {
		KeyID string `json:"key_id"`
	}
	if err := json.Unmarshal(newKey, &rotated); err != nil || rotated.KeyID == "" {
		t.Fatalf("rotate: %s", newKey)
	}
	var rc2 *restClient
	testkit.Eventually(t, 60*time.Second, "api2 to sign with the rotated key "+rotated.KeyID, func() bool {
		rc2 = login(t, api2, account, key)
		return tokenKeyID(t, rc2.token) == rotated.KeyID
	})
	subscribe(t, gw.WSURL(), rc2.token, account, nil)

	// What each identity must not do.
	producer.nc.Publish("qubicle.queue."+account+".support.join", []byte(`not even JSON`))
	producer.refused(t, "producer", "qubicle.queue."+account+".support.join")
	producer.nc.Publish("$JS.API.STREAM.MSG.GET.KV_ccevents_auth", []byte(`{"last_by_subj":"$KV.ccevents_auth.root"}`))
	producer.refused(t, "producer", "$JS.API.STREAM.MSG.GET.KV_ccevents_auth")
	producer.nc.SubscribeSync("qubicle.>")
	producer.refused(t, "producer", "qubicle.>")

	gateway := connectAs(t, c, seeds["GATEWAY"])
	for _, subject := range []string{"qubicle.queue." + account + ".q.join", "$KV.ccevents_auth.signing.0123456789abcdef", "$JS.API.STREAM.UPDATE.QUBICLE"} {
		gateway.nc.Publish(subject, []byte(`{}`))
		gateway.refused(t, "gateway", subject)
	}
	// The gateway reads signing keys, but only their public halves.
	js, err := gateway.nc.Request("$JS.API.STREAM.MSG.GET.KV_ccevents_auth", []byte(`{"last_by_subj":"$KV.ccevents_auth.signing.`+rotated.KeyID+`"}`), 10*time.Second)
	if err != nil {
		t.Fatalf("gateway reading a signing key record: %v", err)
	}
	var rec struct {
		Message struct {
			Data []byte `json:"data"`
		} `json:"message"`
	}
	if err := json.Unmarshal(js.Data, &rec); err != nil || !strings.Contains(string(rec.Message.Data), `"sealed_seed"`) || strings.Contains(string(rec.Message.Data), `"seed"`) {
		t.Errorf("the signing key record a gateway reads: %s (%v), want a sealed seed only", js.Data, err)
	}

	engine := connectAs(t, c, seeds["ENGINE"])
	engine.nc.Publish("$KV.ccevents_auth.accounts."+account, []byte(`{}`))
	engine.refused(t, "engine", "$KV.ccevents_auth.accounts."+account)
	apiID := connectAs(t, c, seeds["API"])
	apiID.nc.Publish("$KV.ccevents_engine.o."+account, []byte(`{}`))
	apiID.refused(t, "api", "$KV.ccevents_engine.o."+account)
	whole := connectAs(t, c, seeds["NODE"])
	whole.nc.Publish("$JS.API.STREAM.DELETE.QUBICLE", nil)
	whole.refused(t, "a node with every role", "$JS.API.STREAM.DELETE.QUBICLE")
	if nc, err := nats.Connect(c.URL(0), nats.Timeout(5*time.Second)); err == nil {
		nc.Close()
		t.Error("a client without credentials connected")
	}

	// An API node with another seal key refuses to start, saying why.
	other := filepath.Join(t.TempDir(), "other.key")
	if err := os.WriteFile(other, []byte(strings.Repeat("ab", 32)+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if n, err := tryStartNode(t, c, "api3", "api", filepath.Join(t.TempDir(), "api3"), []string{"--nats-nkey", seeds["API"], "--signing-key-file", other}); err == nil {
		n.stop()
		t.Error("an API node with another seal key started")
	} else if !strings.Contains(err.Error(), "sealed with another seal key") {
		t.Errorf("an API node with another seal key: %v", err)
	}

	for _, n := range nodes {
		if n.logged("permissions violation") {
			t.Errorf("%s was refused something it needs:\n%s", n.name, n.tail(30))
		}
	}
}
