package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/wstest"
	"github.com/ccevents/ccevents/protocol"
	"github.com/gobwas/ws"
)

func TestSubscribeReceivesEventFrame(t *testing.T) {
	e := newEnv(t, Config{})
	acc := e.account("")
	c := e.dial()
	c.Send(fmt.Sprintf(`{"action":"subscribe","auth_token":%q,"request_id":"r1","data":{"account_id":%q,"binding":"qubicle.queue.%s.*"}}`, e.token(acc), acc, acc))
	m, f := c.Reply()
	want := fmt.Sprintf(`{"action":"reply","request_id":"r1","status":"success","data":{"subscribed":["qubicle.queue.%s.*"],"epoch":%q,"sequence":0}}`, acc, e.bus.Epoch())
	if string(m.Raw) != want {
		t.Fatalf("reply\n got %s\nwant %s", m.Raw, want)
	}
	if f.Sequence == nil {
		t.Fatal("reply has no sequence")
	}

	subject := "qubicle.queue." + acc + ".Q1.join"
	payload := payloadFor(subject)
	seq, err := e.bus.Publish(e.ctx, subject, payload, "")
	if err != nil {
		t.Fatal(err)
	}
	ev := c.Event()
	wantEv := fmt.Sprintf(`{"action":"event","subscribed_key":"qubicle.queue.%s.*","subscription_key":"qubicle.queue.%s.*.>","routing_key":%q,"name":"join","sequence":%d,"epoch":%q,"data":{"sequence":%d,%s}`,
		acc, acc, subject, seq, e.bus.Epoch(), seq, payload[1:])
	if string(ev.Raw) != wantEv {
		t.Fatalf("event\n got %s\nwant %s", ev.Raw, wantEv)
	}
}

func TestBindingsSelectEvents(t *testing.T) {
	e := newEnv(t, Config{})
	acc := e.account("")
	tok := e.token(acc)
	events := []string{
		"qubicle.queue.ACC.Q1.create",
		"qubicle.queue.ACC.Q1.join",
		"qubicle.queue.ACC.Q2.join",
		"qubicle.recipient.ACC.R1.ready",
		"qubicle.recipient.ACC.R2.away",
		"qubicle.session.ACC.S1.create",
		"qubicle.session.ACC.S2.create",
		"qubicle.session.ACC.S1.delete",
	}
	tests := []struct {
		binding string
		want    []string
	}{
		{"qubicle.queue.ACC.*", []string{"qubicle.queue.ACC.Q1.create", "qubicle.queue.ACC.Q1.join", "qubicle.queue.ACC.Q2.join"}},
		{"qubicle.queue.ACC.Q1", []string{"qubicle.queue.ACC.Q1.create", "qubicle.queue.ACC.Q1.join"}},
		{"qubicle.queue.ACC.*.join", []string{"qubicle.queue.ACC.Q1.join", "qubicle.queue.ACC.Q2.join"}},
		{"qubicle.recipient.ACC.R1", []string{"qubicle.recipient.ACC.R1.ready"}},
		{"qubicle.recipient.ACC.*.away", []string{"qubicle.recipient.ACC.R2.away"}},
		{"qubicle.session.ACC.S1", []string{"qubicle.session.ACC.S1.create", "qubicle.session.ACC.S1.delete"}},
		{"qubicle.session.ACC.*.create", []string{"qubicle.session.ACC.S1.create", "qubicle.session.ACC.S2.create"}},
		{"qubicle.*.ACC.#", events},
		{"qubicle.*.ACC.*.create", []string{"qubicle.queue.ACC.Q1.create", "qubicle.session.ACC.S1.create", "qubicle.session.ACC.S2.create"}},
		{"qubicle.queue.ACC.#.join", []string{"qubicle.queue.ACC.Q1.join", "qubicle.queue.ACC.Q2.join"}},
		{"qubicle.queue.ACC", []string{"qubicle.queue.ACC.Q1.create", "qubicle.queue.ACC.Q1.join", "qubicle.queue.ACC.Q2.join"}},
	}
	clients := make([]*wstest.Conn, len(tests))
	marker := "qubicle.session." + acc + ".marker.delete"
	for i, tt := range tests {
		clients[i] = e.dial()
		b := strings.ReplaceAll(tt.binding, "ACC", acc)
		clients[i].Subscribe(tok, acc, b, "qubicle.session."+acc+".marker")
	}
	for _, ev := range events {
		e.publish(strings.ReplaceAll(ev, "ACC", acc))
	}
	e.publish(marker)
	for i, tt := range tests {
		t.Run(tt.binding, func(t *testing.T) {
			got := clients[i].EventsUntil(marker)
			want := make([]string, len(tt.want))
			for j, w := range tt.want {
				want[j] = strings.ReplaceAll(w, "ACC", acc)
			}
			if !slices.Equal(got, want) {
				t.Errorf("binding %s received\n%v\nwant\n%v", tt.binding, got, want)
			}
		})
	}
}

func TestEventMatchingSeveralBindingsIsDeliveredOnce(t *testing.T) {
	e := newEnv(t, Config{})
	acc := e.account("")
	c := e.dial()
	first := "qubicle.queue." + acc + ".Q1"
	c.Subscribe(e.token(acc), acc, first, "qubicle.queue."+acc+".*", "qubicle.*."+acc+".#")
	e.publish("qubicle.queue." + acc + ".Q1.join")
	e.publish("qubicle.queue." + acc + ".Q2.join")
	if m := c.Event(); m.RoutingKey != "qubicle.queue."+acc+".Q1.join" || m.SubscribedKey != first {
		t.Fatalf("first event %s, want Q1.join under %s", m.Raw, first)
	}
	if m := c.Event(); m.RoutingKey != "qubicle.queue."+acc+".Q2.join" || m.SubscribedKey != "qubicle.queue."+acc+".*" {
		t.Fatalf("second event %s, want Q2.join under the account-wide queue binding", m.Raw)
	}
}

func TestUnsubscribeStopsDelivery(t *testing.T) {
	e := newEnv(t, Config{})
	acc := e.account("")
	c := e.dial()
	queues := "qubicle.queue." + acc + ".*"
	marker := "qubicle.session." + acc + ".marker"
	c.Subscribe(e.token(acc), acc, queues, marker)
	e.publish("qubicle.queue." + acc + ".Q1.join")
	if m := c.Event(); m.SubscribedKey != queues {
		t.Fatalf("got %s", m.Raw)
	}
	c.Send(fmt.Sprintf(`{"action":"unsubscribe","request_id":"u1","data":{"binding":%q}}`, queues))
	m, _ := c.Reply()
	if want := fmt.Sprintf(`{"action":"reply","request_id":"u1","status":"success","data":{"unsubscribed":[%q],"subscribed":[%q]}}`, queues, marker); string(m.Raw) != want {
		t.Fatalf("unsubscribe reply\n got %s\nwant %s", m.Raw, want)
	}
	e.publish("qubicle.queue." + acc + ".Q1.leave")
	e.publish(marker + ".delete")
	if got := c.EventsUntil(marker + ".delete"); len(got) != 0 {
		t.Fatalf("events after unsubscribe: %v", got)
	}
}

func TestUnsubscribingEverythingReleasesTheAccount(t *testing.T) {
	e := newEnv(t, Config{MaxConnsPerAccount: 1})
	acc := e.account("")
	tok := e.token(acc)
	a := e.dial()
	a.Subscribe(tok, acc, "qubicle.queue."+acc+".*")
	a.Send(fmt.Sprintf(`{"action":"unsubscribe","data":{"bindings":["qubicle.queue.%s.*"]}}`, acc))
	if _, f := a.Reply(); len(f.Subscribed) != 0 {
		t.Fatalf("still subscribed to %v", f.Subscribed)
	}
	// The only slot of the account is free again.
	b := e.dial()
	b.Subscribe(tok, acc, "qubicle.queue."+acc+".*")
	e.publish("qubicle.queue." + acc + ".Q1.join")
	b.Event()
}

func TestParentTokenSeesChildAccount(t *testing.T) {
	e := newEnv(t, Config{})
	parent := e.account("")
	child := e.account(parent)
	c := e.dial()
	c.Subscribe(e.token(parent), child, "qubicle.queue."+child+".*")
	e.publish("qubicle.queue." + child + ".Q1.join")
	if m := c.Event(); m.RoutingKey != "qubicle.queue."+child+".Q1.join" {
		t.Fatalf("got %s", m.Raw)
	}
}

func TestPingIsAnswered(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.dial()
	c.Send(`{"action":"ping","request_id":7}`)
	if m := c.NextMsg(); string(m.Raw) != `{"action":"reply","request_id":7,"status":"success","data":{"pong":true,"response":"pong"}}` {
		t.Fatalf("got %s", m.Raw)
	}
	c.Send(`{"action":"ping"}`)
	if m := c.NextMsg(); wstest.DropGeneratedID(t, m.Raw) != `{"action":"reply","status":"success","data":{"pong":true,"response":"pong"}}` {
		t.Fatalf("got %s", m.Raw)
	}
}

func TestPlainHTTPIsRefusedOrServedByFallback(t *testing.T) {
	e := newEnv(t, Config{})
	resp, err := http.Get("http" + strings.TrimPrefix(e.url, "ws") + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusUpgradeRequired || !strings.Contains(string(body), "websocket") {
		t.Fatalf("plain GET: %d %s", resp.StatusCode, body)
	}

	f := newEnv(t, Config{Fallback: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "fallback "+r.URL.Path)
	})})
	resp, err = http.Get("http" + strings.TrimPrefix(f.url, "ws") + "/client/ccevents.js")
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "fallback /client/ccevents.js" {
		t.Fatalf("fallback answered %d %q", resp.StatusCode, body)
	}
	// Websocket upgrades still reach the gateway on the same listener.
	f.dial().Ping()
}

func TestCancellingServeContextShutsDown(t *testing.T) {
	e := newEnv(t, Config{})
	srv, err := New(Config{}, e.bus, e.auth)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx, ln) }()
	c := wstest.Dial(t, "ws://"+ln.Addr().String())
	c.Ping()
	cancel()
	if m := c.NextMsg(); m.Action != "notice" {
		t.Fatalf("got %s", m.Raw)
	}
	if cl := c.ExpectClose(); cl.Code != protocol.CloseGoingAway {
		t.Fatalf("closed with %v", cl)
	}
	if err := <-done; err != nil {
		t.Fatalf("Serve returned %v", err)
	}
}

func TestSlowHandshakeIsCut(t *testing.T) {
	e := newEnv(t, Config{HandshakeTimeout: 50 * time.Millisecond})
	e.stallHandshake("GET / HTTP/1.1\r\nHost: x\r\n") // and nothing more
}

func TestFramesSentWithTheHandshakeAreRead(t *testing.T) {
	e := newEnv(t, Config{})
	nc, err := net.Dial("tcp", strings.TrimPrefix(e.url, "ws://"))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	var req bytes.Buffer
	req.WriteString("GET / HTTP/1.1\r\nHost: gateway\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
	// A request in the same packet as the handshake.
	if err := ws.WriteFrame(&req, ws.MaskFrame(ws.NewTextFrame([]byte(`{"action":"ping","request_id":"early"}`)))); err != nil {
		t.Fatal(err)
	}
	if _, err := nc.Write(req.Bytes()); err != nil {
		t.Fatal(err)
	}
	_ = nc.SetReadDeadline(time.Now().Add(waitLong))
	br := bufio.NewReader(nc)
	resp, err := http.ReadResponse(br, nil)
	if err != nil || resp.StatusCode != http.StatusSwitchingProtocols {
		t.Fatalf("handshake: %v %v", resp, err)
	}
	f, err := ws.ReadFrame(br)
	if err != nil || string(f.Payload) != `{"action":"reply","request_id":"early","status":"success","data":{"pong":true,"response":"pong"}}` {
		t.Fatalf("got %q %v", f.Payload, err)
	}
}
