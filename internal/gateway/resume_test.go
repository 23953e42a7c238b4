package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/ccevents/ccevents/internal/wstest"
	"github.com/ccevents/ccevents/protocol"
	"github.com/gobwas/ws"
)

// sinceSubscribe sends a subscribe of bindings resuming after seq and
// returns the reply.
func sinceSubscribe(c *wstest.Conn, token, account string, seq uint64, epoch string, bindings ...string) (wstest.Msg, protocol.SubscriptionData) {
	c.T().Helper()
	sendSince(c, token, account, protocol.Position{Sequence: seq, Epoch: epoch}, bindings...)
	return c.Reply()
}

// sendSince sends a subscribe of bindings resuming from since, without
// waiting for the reply.
func sendSince(c *wstest.Conn, token, account string, since protocol.Position, bindings ...string) {
	req := protocol.Request{Action: protocol.Subscribe, AuthToken: token, Data: protocol.RequestData{AccountID: account, Since: &since}}
	for _, b := range bindings {
		req.Data.Bindings = append(req.Data.Bindings, protocol.BindingSpec{Binding: b})
	}
	c.Send(req)
}

func TestResumeAfterClientKilledMidStream(t *testing.T) {
	e := newEnv(t, Config{})
	acc := e.account("")
	tok := e.token(acc)
	binding := "qubicle.queue." + acc + ".*"
	a := e.dial().Buffered()
	a.Subscribe(tok, acc, binding)

	const total = 300
	published := make(chan []uint64, 1)
	killed := make(chan struct{})
	go func() {
		var seqs []uint64
		for i := range total {
			if i == total/2 {
				// The rest is published while the second client resumes.
				<-killed
			}
			seq, err := e.bus.Publish(e.ctx, fmt.Sprintf("qubicle.queue.%s.Q%d.join", acc, i%7), payloadFor("qubicle.queue."+acc+".Q.join"), "")
			if err != nil {
				t.Errorf("publish: %v", err)
				break
			}
			seqs = append(seqs, seq)
		}
		published <- seqs
	}()

	// The first client takes a third of the stream and dies.
	var got []uint64
	for len(got) < total/3 {
		got = append(got, a.Event().Sequence)
	}
	a.NetConn().Close()
	close(killed)

	b := e.dial().Buffered()
	m, f := sinceSubscribe(b, tok, acc, got[len(got)-1], e.bus.Epoch(), binding)
	want := fmt.Sprintf(`{"action":"reply","status":"success","data":{"subscribed":[%q],"epoch":%q,"recovered":true,"replay_until":%d}}`, binding, e.bus.Epoch(), *f.ReplayUntil)
	if wstest.DropGeneratedID(t, m.Raw) != want {
		t.Fatalf("resume reply\n got %s\nwant %s", m.Raw, want)
	}
	seqs := <-published
	for got[len(got)-1] < seqs[len(seqs)-1] {
		ev := b.Event()
		if ev.Sequence <= got[len(got)-1] {
			t.Fatalf("sequence %d after %d: duplicate or out of order", ev.Sequence, got[len(got)-1])
		}
		got = append(got, ev.Sequence)
	}
	if !slices.Equal(got, seqs) {
		t.Fatalf("received %d events, published %d; first difference at %d", len(got), len(seqs), firstDiff(got, seqs))
	}
}

func firstDiff(a, b []uint64) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

func TestResumeAfterGatewayRestart(t *testing.T) {
	e := newEnv(t, Config{}, func(c *bus.Config) { c.Memory = false })
	acc := e.account("")
	tok := e.token(acc)
	binding := "qubicle.session." + acc + ".*"
	a := e.dial()
	a.Subscribe(tok, acc, binding)
	var last uint64
	for i := range 5 {
		e.publish(fmt.Sprintf("qubicle.session.%s.S%d.create", acc, i))
		last = a.Event().Sequence
	}
	epoch := e.bus.Epoch()

	stopped := make(chan struct{})
	go func() { e.restart(Config{}); close(stopped) }()
	if n := a.NextMsg(); string(n.Raw) != `{"action":"notice","data":{"reason":"shutdown","message":"the gateway is shutting down: reconnect, and resume with since to miss nothing"}}` {
		t.Fatalf("before closing, the gateway said %s", n.Raw)
	}
	if cl := a.ExpectClose(); cl.Code != protocol.CloseGoingAway {
		t.Fatalf("closed with %v, want 1001", cl)
	}
	<-stopped
	if e.bus.Epoch() != epoch {
		t.Fatalf("epoch changed across restart: %s -> %s", epoch, e.bus.Epoch())
	}
	// Events stored while the client was away.
	var missed []uint64
	for i := range 5 {
		missed = append(missed, e.publish(fmt.Sprintf("qubicle.session.%s.S%d.delete", acc, i)))
	}
	b := e.dial()
	if _, f := sinceSubscribe(b, e.token(acc), acc, last, epoch, binding); f.Recovered == nil || !*f.Recovered {
		t.Fatalf("resume after restart not recovered: %+v", f)
	}
	expectSequences(b, missed...)
	live := e.publish("qubicle.session." + acc + ".S9.create")
	if got := b.Event(); got.Sequence != live {
		t.Fatalf("live event %d, want %d", got.Sequence, live)
	}
}

func TestResumeThatCannotBeHonouredSaysSoAndGoesLive(t *testing.T) {
	e := newEnv(t, Config{}, func(c *bus.Config) { c.MaxBytes = 8 << 10 })
	acc := e.account("")
	tok := e.token(acc)
	binding := "qubicle.queue." + acc + ".*"
	for range 100 {
		e.publish("qubicle.queue." + acc + ".Q1.join")
	}
	bounds, err := e.bus.Bounds(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	if bounds.First <= 2 {
		t.Fatalf("retention kept everything (first %d); the test needs history to have moved on", bounds.First)
	}
	tests := []struct {
		name  string
		seq   uint64
		epoch string
		why   string // %d is the head of history when the reply was made
	}{
		{"history moved on", 1, e.bus.Epoch(), fmt.Sprintf("history no longer reaches back to sequence 2 (the oldest stored is %d); re-sync from a snapshot", bounds.First)},
		{"another epoch", bounds.Last, "0123456789abcdef", fmt.Sprintf(`epoch "0123456789abcdef" is not this history's (%s): it was reset; re-sync from a snapshot`, e.bus.Epoch())},
		{"from the future", 1 << 40, e.bus.Epoch(), fmt.Sprintf("sequence %d is beyond the end of history (%%d); re-sync from a snapshot", uint64(1<<40))},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := e.dial()
			c.SetTest(t)
			m, f := sinceSubscribe(c, tok, acc, tt.seq, tt.epoch, binding)
			why := tt.why
			if strings.Contains(why, "%d") {
				why = fmt.Sprintf(why, *f.ReplayUntil)
			}
			want := fmt.Sprintf(`{"action":"reply","status":"success","data":{"subscribed":[%q],"epoch":%q,"recovered":false,"replay_until":%d,"message":%q}}`, binding, e.bus.Epoch(), *f.ReplayUntil, why)
			if wstest.DropGeneratedID(t, m.Raw) != want {
				t.Fatalf("reply\n got %s\nwant %s", m.Raw, want)
			}
			live := e.publish("qubicle.queue." + acc + ".Q2.join")
			if ev := c.Event(); ev.Sequence != live {
				t.Fatalf("first event after the reply is %d, want the live %d", ev.Sequence, live)
			}
		})
	}
}

func TestResumeSinceForOneBindingOnly(t *testing.T) {
	e := newEnv(t, Config{})
	acc := e.account("")
	tok := e.token(acc)
	queues, sessions := "qubicle.queue."+acc+".*", "qubicle.session."+acc+".*"
	q1 := e.publish("qubicle.queue." + acc + ".Q1.join")
	e.publish("qubicle.session." + acc + ".S1.create")
	q2 := e.publish("qubicle.queue." + acc + ".Q2.join")
	e.publish("qubicle.session." + acc + ".S2.create")

	c := e.dial()
	c.Send(map[string]any{"action": "subscribe", "auth_token": tok, "data": map[string]any{
		"account_id": acc,
		"bindings":   []any{map[string]any{"binding": queues, "since": map[string]any{"sequence": 0, "epoch": e.bus.Epoch()}}, sessions},
	}})
	if _, f := c.Reply(); f.Recovered == nil || !*f.Recovered || !equalStrings(f.Subscribed, queues, sessions) {
		t.Fatalf("reply %+v", f)
	}
	// Queue history is replayed; session history is not (that binding is live only).
	for _, want := range []uint64{q1, q2} {
		if ev := c.Event(); ev.Sequence != want || ev.SubscribedKey != queues {
			t.Fatalf("got %s, want queue event %d", ev.Raw, want)
		}
	}
	s3 := e.publish("qubicle.session." + acc + ".S3.create")
	if ev := c.Event(); ev.Sequence != s3 || ev.SubscribedKey != sessions {
		t.Fatalf("got %s, want live session event %d", ev.Raw, s3)
	}
}

func TestEventsOfOneAccountArriveInStreamOrderUnderConcurrentPublishers(t *testing.T) {
	e := newEnv(t, Config{})
	acc := e.account("")
	tok := e.token(acc)
	live := e.dial().Buffered()
	live.Subscribe(tok, acc, "qubicle.queue."+acc+".*", "qubicle.*."+acc+".#")

	const publishers, each = 8, 40
	var wg sync.WaitGroup
	start := make(chan struct{})
	joiner := make(chan *wstest.Conn, 1)
	for p := range publishers {
		wg.Go(func() {
			<-start
			for i := range each {
				fam := []string{"queue", "recipient", "session"}[(p+i)%3]
				if _, err := e.bus.Publish(e.ctx, fmt.Sprintf("qubicle.%s.%s.E%d.create", fam, acc, p), payloadFor("qubicle."+fam+"."+acc+".E.create"), ""); err != nil {
					t.Errorf("publish: %v", err)
					return
				}
				if p == 0 && i == each/2 {
					// A client that joins mid-stream with a full replay.
					c := e.dial().Buffered()
					sinceSubscribe(c, tok, acc, 0, "", "qubicle.*."+acc+".#")
					joiner <- c
				}
			}
		})
	}
	close(start)
	wg.Wait()
	for name, c := range map[string]*wstest.Conn{"live": live, "joined with since 0": <-joiner} {
		var last uint64
		for n := 0; n < publishers*each; n++ {
			ev := c.Event()
			if ev.Sequence <= last {
				t.Fatalf("%s: sequence %d after %d", name, ev.Sequence, last)
			}
			last = ev.Sequence
		}
	}
}

func TestSlowConsumerIsClosedWhileOthersKeepUp(t *testing.T) {
	e := newEnv(t, Config{OutboundMaxMessages: 1000, OutboundMaxBytes: 1 << 20})
	acc := e.account("")
	tok := e.token(acc)
	binding := "qubicle.queue." + acc + ".*"
	// The slow client has a tiny receive buffer and does not read.
	slow := wstest.DialWith(t, e.url, ws.Dialer{NetDial: dialSmallReceiveBuffer})
	slow.Subscribe(tok, acc, binding)
	fast := e.dial().Buffered()
	fast.Subscribe(tok, acc, binding)

	end := "qubicle.queue." + acc + ".end.leave"
	type result struct {
		seqs []uint64
		err  error
	}
	received := make(chan result, 1)
	go func() {
		var r result
		for {
			p, err := fast.Next()
			var m protocol.Message
			if err == nil {
				err = json.Unmarshal(p, &m)
			}
			if err != nil || m.RoutingKey == end {
				r.err = err
				received <- r
				return
			}
			r.seqs = append(r.seqs, m.Sequence)
		}
	}()

	var published []uint64
	payload := fmt.Appendf(nil, `{"account_id":%q,"pad":%q}`, acc, strings.Repeat("x", 1000))
	for batch := 0; e.metric("ccevents_ws_closed_total", "code", "4008") == 0; batch++ {
		if batch == 50 {
			t.Fatal("the slow consumer was never closed")
		}
		for i := range 200 {
			seq, err := e.bus.Publish(e.ctx, fmt.Sprintf("qubicle.queue.%s.Q%d.join", acc, i%5), payload, "")
			if err != nil {
				t.Fatal(err)
			}
			published = append(published, seq)
		}
	}
	e.publish(end)
	r := <-received
	if r.err != nil {
		t.Fatalf("fast client: %v", r.err)
	}
	if !slices.Equal(r.seqs, published) {
		t.Fatalf("the fast client received %d of %d events (first difference at %d)", len(r.seqs), len(published), firstDiff(r.seqs, published))
	}
	if cl := slow.ExpectClose(); cl.Code != protocol.CloseSlowConsumer || cl.Reason != "slow consumer: reconnect and resume with since" {
		t.Fatalf("slow client closed with %v", cl)
	}
	if n := e.metric("ccevents_ws_dropped_total", "reason", "slow_consumer"); n == 0 {
		t.Error("no dropped events counted")
	}
	fast.Ping()
}

func TestShutdownSendsNoticeAndGoingAway(t *testing.T) {
	e := newEnv(t, Config{})
	acc := e.account("")
	c := e.dial()
	c.Subscribe(e.token(acc), acc, "qubicle.queue."+acc+".*")
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(t.Context(), waitLong)
		defer cancel()
		done <- e.srv.Shutdown(ctx)
	}()
	if n := c.NextMsg(); n.Action != "notice" || !strings.Contains(string(n.Data), `"reason":"shutdown"`) {
		t.Fatalf("got %s", n.Raw)
	}
	if cl := c.ExpectClose(); cl.Code != protocol.CloseGoingAway || cl.Reason != "the gateway is shutting down; reconnect" {
		t.Fatalf("closed with %v", cl)
	}
	if err := <-done; err != nil {
		t.Fatalf("Shutdown: %v", err)
	}
	if _, _, _, err := ws.Dial(t.Context(), e.url); err == nil {
		t.Fatal("the gateway still accepts connections after Shutdown")
	}
}

func TestShutdownClosesStragglersWhenItsContextEnds(t *testing.T) {
	e := newEnv(t, Config{})
	c := e.dial()
	c.Ping()
	// The client never answers the close frame.
	ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
	defer cancel()
	if err := e.srv.Shutdown(ctx); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Shutdown returned %v, want the context's deadline", err)
	}
	if n := e.metric("ccevents_ws_connections"); n != 0 {
		t.Fatalf("%v connections left after Shutdown", n)
	}
}

// DESIGN's `since: <sequence>` form and a cursor without an epoch both
// resume in the current history.
func TestResumeWithABareSequenceUsesTheCurrentHistory(t *testing.T) {
	e := newEnv(t, Config{})
	acc := e.account("")
	tok := e.token(acc)
	binding := "qubicle.queue." + acc + ".*"
	first := e.publish("qubicle.queue." + acc + ".Q1.join")
	second := e.publish("qubicle.queue." + acc + ".Q2.join")
	for _, since := range []any{first, map[string]any{"sequence": first}} {
		c := e.dial()
		c.Send(map[string]any{"action": "subscribe", "auth_token": tok, "data": map[string]any{
			"account_id": acc, "binding": binding, "since": since,
		}})
		if m, f := c.Reply(); f.Recovered == nil || !*f.Recovered {
			t.Fatalf("since %v: reply %s", since, m.Raw)
		}
		if ev := c.Event(); ev.Sequence != second {
			t.Fatalf("since %v: first replayed event %d, want %d", since, ev.Sequence, second)
		}
	}
	c := e.dial()
	c.Send(map[string]any{"action": "subscribe", "auth_token": tok, "request_id": "x", "data": map[string]any{
		"account_id": acc, "binding": binding, "since": "yesterday",
	}})
	if m, _ := c.Reply(); !strings.Contains(string(m.Raw), `\"since\" must be {\"sequence\": N, \"epoch\": \"…\"} or a sequence number N`) {
		t.Errorf("bad since: %s", m.Raw)
	}
}

// Clients resuming together beyond ReplayConcurrency wait their turn to
// read history; each still gets exactly what it missed, then live events.
func TestResumesBeyondTheReplayConcurrencyWaitTheirTurn(t *testing.T) {
	e := newEnv(t, Config{ReplayConcurrency: 2})
	acc := e.account("")
	tok := e.token(acc)
	binding := "qubicle.recipient." + acc + ".*"
	var seqs []uint64
	for i := range 60 {
		seqs = append(seqs, e.publish(fmt.Sprintf("qubicle.recipient.%s.R%d.ready", acc, i%5)))
	}
	// All subscribe at once: the gateway resumes them concurrently.
	const clients = 24
	cs := make([]*wstest.Conn, clients)
	for i := range cs {
		cs[i] = e.dial().Buffered()
		sendSince(cs[i], tok, acc, protocol.Position{Sequence: seqs[i*2], Epoch: e.bus.Epoch()}, binding)
	}
	for i, c := range cs {
		if _, f := c.Reply(); f.Recovered == nil || !*f.Recovered {
			t.Fatalf("client %d: resume not recovered: %+v", i, f)
		}
		for _, want := range seqs[i*2+1:] {
			if ev := c.Event(); ev.Sequence != want {
				t.Fatalf("client %d: got sequence %d, want %d", i, ev.Sequence, want)
			}
		}
	}
	live := e.publish("qubicle.recipient." + acc + ".R1.away")
	for i, c := range cs {
		if ev := c.Event(); ev.Sequence != live {
			t.Fatalf("client %d: live event %d, want %d", i, ev.Sequence, live)
		}
	}
	if n := e.metric("ccevents_ws_replays_total", "outcome", "recovered"); n != clients {
		t.Errorf("ccevents_ws_replays_total{outcome=recovered} = %g, want %d", n, clients)
	}
	if n := e.metric("ccevents_ws_replays_running"); n != 0 {
		t.Errorf("ccevents_ws_replays_running = %g after every replay ended", n)
	}
	if n := e.metric("ccevents_ws_replays_waiting"); n != 0 {
		t.Errorf("ccevents_ws_replays_waiting = %g after every replay ended", n)
	}
	if n := e.metric("ccevents_ws_replay_duration_seconds"); n != clients {
		t.Errorf("ccevents_ws_replay_duration_seconds counted %g resumes, want %d", n, clients)
	}
}

// A gateway with no engine to ask says where else to get the state.
func TestSnapshotWithoutAnEngineSaysWhereToReadIt(t *testing.T) {
	e := newEnv(t, Config{})
	acc := e.account("")
	c := e.dial()
	c.Send(map[string]any{"action": "subscribe", "auth_token": e.token(acc), "data": map[string]any{
		"account_id": acc, "binding": "qubicle.queue." + acc + ".*", "snapshot": true,
	}})
	m, f := c.Reply()
	want := "snapshot: true is not served by this gateway (no engine is reachable from it); read GET /v2/accounts/" + acc + "/qubicle_state and subscribe with since"
	if m.Status != "error" || len(f.Errors) != 1 || f.Errors[0] != want || len(f.Subscribed) != 0 {
		t.Fatalf("reply %s, want an error saying %q and nothing subscribed", m.Raw, want)
	}
	c.Ping() // still open
}

// A client that resumes and then does not read gives its turn back while
// it waits, so it cannot keep other clients from their history.
func TestAClientThatDoesNotReadDoesNotHoldAReplayTurn(t *testing.T) {
	e := newEnv(t, Config{ReplayConcurrency: 1, OutboundMaxMessages: 64, OutboundMaxBytes: 1 << 20, WriteTimeout: time.Minute})
	acc := e.account("")
	tok := e.token(acc)
	binding := "qubicle.queue." + acc + ".*"
	// Large events: more than the kernel buffers of both ends hold.
	pad := strings.Repeat("x", 16<<10)
	var seqs []uint64
	for i := range 1000 {
		subject := fmt.Sprintf("qubicle.queue.%s.Q%d.join", acc, i%9)
		seq, err := e.bus.Publish(e.ctx, subject, fmt.Appendf(nil, `{"account_id":%q,"pad":%q}`, acc, pad), "")
		if err != nil {
			t.Fatal(err)
		}
		seqs = append(seqs, seq)
	}
	// A small receive buffer, so the stalled client's queue fills soon.
	stalled := wstest.DialWith(t, e.url, ws.Dialer{NetDial: dialSmallReceiveBuffer})
	sendSince(stalled, tok, acc, protocol.Position{Sequence: 0}, binding) // from the start, not waiting for the reply
	// Its resume has its turn once it is counted.
	testkit.Eventually(t, waitLong, "the stalled client's resume to start", func() bool {
		return e.metric("ccevents_ws_replays_total", "outcome", "recovered") == 1
	})

	c := e.dial()
	if _, f := sinceSubscribe(c, tok, acc, seqs[len(seqs)-4], e.bus.Epoch(), binding); f.Recovered == nil || !*f.Recovered {
		t.Fatalf("resume beside a stalled one: %+v", f)
	}
	expectSequences(c, seqs[len(seqs)-3:]...)
}
