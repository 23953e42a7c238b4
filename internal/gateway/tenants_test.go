package gateway

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/binding"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/limit"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/ccevents/ccevents/internal/wstest"
	"github.com/ccevents/ccevents/protocol"
)

// consumers counts the consumers on the event stream.
func (e *env) consumers() int {
	e.t.Helper()
	s, err := e.bus.JetStream().Stream(e.ctx, bus.StreamName)
	if err != nil {
		e.t.Fatal(err)
	}
	info, err := s.Info(e.ctx)
	if err != nil {
		e.t.Fatal(err)
	}
	return info.State.Consumers
}

// More accounts than nats-server's default of 1,000 consumers per stream
// subscribe on one gateway and each receives its own events, then all of
// them resume at once after the gateway restarts: the gateway holds one
// consumer whatever the number of accounts, and resumes hold none.
func TestMoreAccountsThanTheStreamsConsumerLimit(t *testing.T) {
	const accounts = 1500
	// Every resume is answered however long the burst takes here (the race
	// detector slows reading history tenfold): the test is about what the
	// bus holds, not about the turn wait.
	cfg := Config{MaxConnsPerIP: 2 * accounts, PingInterval: -1, ReplayWait: 2 * time.Minute}
	e := newEnv(t, cfg)
	tok := e.token(e.root.ID) // a parent's token sees every child
	accs := make([]string, accounts)
	for i := range accs {
		accs[i] = e.account("")
	}
	subscribeAll := func(since []uint64) []*wstest.Conn {
		cs := make([]*wstest.Conn, accounts)
		for i, acc := range accs {
			cs[i] = e.dial()
			if since == nil {
				cs[i].Send(map[string]any{"action": "subscribe", "auth_token": tok, "data": map[string]any{"account_id": acc, "binding": "qubicle.queue." + acc + ".*"}})
			} else {
				sendSince(cs[i], tok, acc, protocol.Position{Sequence: since[i], Epoch: e.bus.Epoch()}, "qubicle.queue."+acc+".*")
			}
		}
		for i, c := range cs {
			m, f := c.Reply()
			if m.Status != "success" || (since != nil && (f.Recovered == nil || !*f.Recovered)) {
				t.Fatalf("account %d: subscribe answered %s", i, m.Raw)
			}
		}
		return cs
	}
	// expect reads one event per client, which must be want[i].
	expect := func(cs []*wstest.Conn, want []uint64) {
		t.Helper()
		for i, c := range cs {
			if ev := c.Event(); ev.Sequence != want[i] || !strings.Contains(ev.RoutingKey, accs[i]) {
				t.Fatalf("account %d: got %s, want its event %d", i, ev.Raw, want[i])
			}
		}
	}
	publishAll := func() []uint64 {
		seqs := make([]uint64, accounts)
		for i, acc := range accs {
			seqs[i] = e.publish(fmt.Sprintf("qubicle.queue.%s.Q%d.join", acc, i%3))
		}
		return seqs
	}

	cs := subscribeAll(nil)
	if n := e.metric("ccevents_ws_accounts_followed"); n != accounts {
		t.Fatalf("ccevents_ws_accounts_followed = %g, want %d", n, accounts)
	}
	first := publishAll()
	expect(cs, first)
	if n := e.consumers(); n != 1 {
		t.Fatalf("%d consumers on the stream for %d accounts, want 1", n, accounts)
	}

	// The gateway restarts; events are stored meanwhile; every client
	// resumes at the same moment.
	e.stopGateway()
	for _, c := range cs {
		c.ExpectClose()
	}
	missed := publishAll()
	e.start(cfg)
	cs = subscribeAll(first)
	expect(cs, missed)
	live := publishAll()
	expect(cs, live)
	if n := e.consumers(); n != 1 {
		t.Fatalf("%d consumers on the stream after %d resumes, want 1", n, accounts)
	}
	if n := e.metric("ccevents_ws_replays_total", "outcome", "recovered"); n != accounts {
		t.Errorf("ccevents_ws_replays_total{outcome=recovered} = %g, want %d", n, accounts)
	}
	for _, c := range cs {
		c.NetConn().Close()
	}
	testkit.Eventually(t, waitLong, "every account to be let go", func() bool { return e.metric("ccevents_ws_accounts_followed") == 0 })
}

// cutOffEnv is an env whose gateway reaches the bus only through a proxy
// that the test can cut; events are published straight to the bus.
func cutOffEnv(t *testing.T) (*env, *testkit.Proxy, *bus.Bus) {
	e := newEnv(t, Config{}, func(c *bus.Config) { c.Listen = "127.0.0.1:0" })
	p := testkit.StartProxy(t, strings.TrimPrefix(e.bus.Server().ClientURL(), "nats://"))
	signIn, err := nats.NkeyOptionFromSeed(e.bus.SeedFile(bus.IdentityCCEvents))
	if err != nil {
		t.Fatal(err)
	}
	gb := natstest.Bus(t, bus.Config{URLs: []string{"nats://" + p.Addr()}, Name: "cut-off-gateway", ConnectOptions: []nats.Option{signIn}})
	e.stopGateway()
	e.startOn(Config{}, gb, "127.0.0.1:0")
	// Cleanups run last first: the gateway stops before its bus.
	t.Cleanup(e.stopGateway)
	return e, p, gb
}

// A gateway whose NATS connection drops and comes back delivers every
// event once and in order, those stored while it was cut off included.
func TestLiveEventsSurviveALostBusConnection(t *testing.T) {
	e, p, gb := cutOffEnv(t)
	acc := e.account("")
	c := e.dial().Buffered()
	c.Subscribe(e.token(acc), acc, "qubicle.*."+acc+".*")

	var published []uint64
	publish := func(n int) {
		for i := range n {
			fam := []string{"queue", "recipient", "session"}[i%3]
			published = append(published, e.publish(fmt.Sprintf("qubicle.%s.%s.E%d.create", fam, acc, i%5)))
		}
	}
	publish(30)
	for round := range 3 {
		p.Cut()
		testkit.Eventually(t, waitLong, "the gateway's bus connection to drop", func() bool { return !gb.Connected() })
		publish(20) // stored while the gateway cannot see them
		p.Restore()
		testkit.Eventually(t, waitLong, fmt.Sprintf("the gateway's bus connection to come back (round %d)", round), gb.Connected)
		publish(20)
	}
	var got []uint64
	for len(got) < len(published) {
		ev := c.Event()
		if len(got) > 0 && ev.Sequence <= got[len(got)-1] {
			t.Fatalf("sequence %d after %d: duplicate or out of order", ev.Sequence, got[len(got)-1])
		}
		got = append(got, ev.Sequence)
	}
	if !slices.Equal(got, published) {
		t.Fatalf("received %d events, published %d; first difference at %d", len(got), len(published), firstDiff(got, published))
	}
	if n := e.metric("ccevents_ws_live_gaps_total", "outcome", "lost"); n != 0 {
		t.Errorf("%g gaps counted as lost", n)
	}
	c.Ping()
}

// Events that age out of history while the gateway is cut off cannot be
// delivered: the gateway says so by closing its connections, and the
// resume tells the client what is gone. Nothing is skipped silently.
func TestEventsGoneBeforeTheGatewaySawThemCloseConnectionsToResume(t *testing.T) {
	e, p, gb := cutOffEnv(t)
	acc := e.account("")
	tok := e.token(acc)
	binding := "qubicle.queue." + acc + ".*"
	c := e.dial()
	c.Subscribe(tok, acc, binding)
	seen := e.publish("qubicle.queue." + acc + ".Q1.join")
	if ev := c.Event(); ev.Sequence != seen {
		t.Fatalf("got %d, want %d", ev.Sequence, seen)
	}

	p.Cut()
	testkit.Eventually(t, waitLong, "the gateway's bus connection to drop", func() bool { return !gb.Connected() })
	var gone uint64
	for range 5 {
		gone = e.publish("qubicle.queue." + acc + ".Q2.join")
	}
	// History moves past them before the gateway is back.
	s, err := e.bus.JetStream().Stream(e.ctx, bus.StreamName)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Purge(e.ctx, jetstream.WithPurgeSequence(gone+1)); err != nil {
		t.Fatal(err)
	}
	p.Restore()
	testkit.Eventually(t, waitLong, "the gateway's bus connection to come back", gb.Connected)
	e.publish("qubicle.queue." + acc + ".Q3.join")

	if cl := c.ExpectClose(); cl.Code != protocol.CloseInternalError || cl.Reason != "events were lost between the bus and this gateway; reconnect and resume with since" {
		t.Fatalf("closed with %v", cl)
	}
	if n := e.metric("ccevents_ws_live_gaps_total", "outcome", "lost"); n != 1 {
		t.Errorf("ccevents_ws_live_gaps_total{outcome=lost} = %g, want 1", n)
	}
	r := e.dial()
	if _, f := sinceSubscribe(r, tok, acc, seen, e.bus.Epoch(), binding); f.Recovered == nil || *f.Recovered ||
		!strings.HasPrefix(f.Message, fmt.Sprintf("history no longer reaches back to sequence %d", seen+1)) {
		t.Fatalf("resume after the loss: %+v", f)
	}
}

// dropLive is the bus with live events lost on their way to the gateway:
// the one numbered seq (a message dropped on a slow or reconnecting
// connection), or every one from stallFrom on (a follower stuck).
type dropLive struct {
	*bus.Bus
	seq, stallFrom atomic.Uint64
	failReads      atomic.Int32 // history reads that fail before they work again
}

func (d *dropLive) OpenReplay(ctx context.Context, filter string, after, until uint64) (*bus.Reader, error) {
	if d.failReads.Add(-1) >= 0 {
		return nil, errors.New("the bus is not answering (test)")
	}
	return d.Bus.OpenReplay(ctx, filter, after, until)
}

func (d *dropLive) Follow(ctx context.Context, filters []string, after uint64, fn func(bus.Message)) (*bus.Follower, error) {
	return d.Bus.Follow(ctx, filters, after, func(m bus.Message) {
		if s := d.stallFrom.Load(); m.Sequence == d.seq.Load() || (s != 0 && m.Sequence >= s) {
			return
		}
		fn(m)
	})
}

func TestALostLiveEventIsReadBackFromHistory(t *testing.T) {
	for _, failures := range []int32{0, 1} {
		t.Run(fmt.Sprintf("history unreadable %d times", failures), func(t *testing.T) {
			testLostLiveEvent(t, failures)
		})
	}
}

// testLostLiveEvent loses one live event; history cannot be read the
// first failures times the gateway tries, and nothing after the gap may
// be delivered before it.
func testLostLiveEvent(t *testing.T, failures int32) {
	e := newEnv(t, Config{})
	src := &dropLive{Bus: e.bus}
	src.failReads.Store(failures)
	e.stopGateway()
	e.startOn(Config{}, src, "127.0.0.1:0")
	acc := e.account("")
	c := e.dial()
	c.Subscribe(e.token(acc), acc, "qubicle.recipient."+acc+".*")
	bounds, err := e.bus.Bounds(e.ctx)
	if err != nil {
		t.Fatal(err)
	}
	src.seq.Store(bounds.Last + 3)
	var published []uint64
	for i := range 6 {
		published = append(published, e.publish(fmt.Sprintf("qubicle.recipient.%s.R%d.ready", acc, i)))
	}
	expectSequences(c, published...)
	if n := e.metric("ccevents_ws_live_gaps_total", "outcome", "repaired"); n != 1 {
		t.Errorf("ccevents_ws_live_gaps_total{outcome=repaired} = %g, want 1", n)
	}
}

// slowHistory holds every history read until released.
type slowHistory struct {
	*bus.Bus
	opened  chan struct{}
	release chan struct{}
}

func (s *slowHistory) OpenReplay(ctx context.Context, filter string, after, until uint64) (*bus.Reader, error) {
	s.opened <- struct{}{}
	select {
	case <-s.release:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return s.Bus.OpenReplay(ctx, filter, after, until)
}

// A resume that finds no turn to read history within ReplayWait is
// answered with an error saying to retry, subscribes nothing, and keeps
// the connection.
func TestResumeWithoutATurnInTimeIsToldToRetry(t *testing.T) {
	cfg := Config{ReplayConcurrency: 1, ReplayWait: 50 * time.Millisecond}
	e := newEnv(t, cfg)
	src := &slowHistory{Bus: e.bus, opened: make(chan struct{}, 1), release: make(chan struct{})}
	e.stopGateway()
	e.startOn(cfg, src, "127.0.0.1:0")
	acc := e.account("")
	tok := e.token(acc)
	binding := "qubicle.queue." + acc + ".*"
	first := e.publish("qubicle.queue." + acc + ".Q1.join")
	second := e.publish("qubicle.queue." + acc + ".Q2.join")

	holder := e.dial()
	sendSince(holder, tok, acc, protocol.Position{Sequence: first}, binding)
	<-src.opened // it holds the only turn now

	c := e.dial()
	m, f := sinceSubscribe(c, tok, acc, first, e.bus.Epoch(), binding)
	want := fmt.Sprintf(`{"action":"reply","request_id":%[2]s,"status":"error","data":{"subscribed":[],"errors":[%[1]q],"message":%[1]q,"retry_after":1}}`,
		"the gateway is reading history for many resuming clients and no turn came free within 50ms (limit 1 at once); nothing was subscribed: send this subscribe again, with the same since, in a second", m.RequestID)
	if string(m.Raw) != want {
		t.Fatalf("reply\n got %s\nwant %s", m.Raw, want)
	}
	if len(f.Subscribed) != 0 {
		t.Fatalf("subscribed %v after the refusal", f.Subscribed)
	}
	if n := e.metric("ccevents_ws_refused_total", "reason", "replay_wait"); n != 1 {
		t.Errorf("ccevents_ws_refused_total{reason=replay_wait} = %g, want 1", n)
	}
	c.Ping()

	close(src.release)
	for _, cl := range []*wstest.Conn{holder, c} {
		if cl == c {
			if _, f := sinceSubscribe(c, tok, acc, first, e.bus.Epoch(), binding); f.Recovered == nil || !*f.Recovered {
				t.Fatalf("retry: %+v", f)
			}
		} else if _, f := cl.Reply(); f.Recovered == nil || !*f.Recovered {
			t.Fatalf("holder: %+v", f)
		}
		if ev := cl.Event(); ev.Sequence != second {
			t.Fatalf("replayed %d, want %d", ev.Sequence, second)
		}
	}
	if n := e.metric("ccevents_ws_accounts_followed"); n != 1 {
		t.Errorf("ccevents_ws_accounts_followed = %g, want 1", n)
	}
}

// A follower that stops delivering while events are stored is caught up
// from history within a few seconds.
func TestAStalledFollowerIsCaughtUpFromHistory(t *testing.T) {
	e := newEnv(t, Config{})
	src := &dropLive{Bus: e.bus}
	e.stopGateway()
	e.startOn(Config{}, src, "127.0.0.1:0")
	acc := e.account("")
	c := e.dial()
	c.Subscribe(e.token(acc), acc, "qubicle.session."+acc+".*")
	before := e.publish("qubicle.session." + acc + ".S0.create")
	if ev := c.Event(); ev.Sequence != before {
		t.Fatalf("got %d, want %d", ev.Sequence, before)
	}
	src.stallFrom.Store(before + 1)
	var published []uint64
	for i := range 5 {
		published = append(published, e.publish(fmt.Sprintf("qubicle.session.%s.S%d.create", acc, i)))
	}
	expectSequences(c, published...)
	// The repair is counted once its events are dispatched, so after the
	// client may have read them.
	testkit.Eventually(t, waitLong, "ccevents_ws_live_gaps_total{outcome=repaired} to count the repair", func() bool {
		return e.metric("ccevents_ws_live_gaps_total", "outcome", "repaired") >= 1
	})
}

// A gateway follows the stream while some connection subscribes to an
// account: when the last one leaves, it holds nothing on the bus, and the
// next subscribe follows from the end of the stream again.
func TestAnIdleGatewayHoldsNoConsumer(t *testing.T) {
	e := newEnv(t, Config{})
	acc := e.account("")
	tok := e.token(acc)
	binding := "qubicle.queue." + acc + ".*"
	c := e.dial()
	c.Subscribe(tok, acc, binding)
	if n := e.consumers(); n != 1 {
		t.Fatalf("%d consumers with one subscriber, want 1", n)
	}
	c.Send(map[string]any{"action": "unsubscribe", "data": map[string]any{"binding": binding}})
	if m, _ := c.Reply(); m.Status != "success" {
		t.Fatalf("unsubscribe: %s", m.Raw)
	}
	testkit.Eventually(t, waitLong, "the consumer to go", func() bool { return e.consumers() == 0 })
	missed := e.publish("qubicle.queue." + acc + ".Q1.join")
	if _, f := sinceSubscribe(c, tok, acc, missed-1, e.bus.Epoch(), binding); f.Recovered == nil || !*f.Recovered {
		t.Fatalf("resume: %+v", f)
	}
	if ev := c.Event(); ev.Sequence != missed {
		t.Fatalf("replayed %d, want %d", ev.Sequence, missed)
	}
	live := e.publish("qubicle.queue." + acc + ".Q2.join")
	if ev := c.Event(); ev.Sequence != live {
		t.Fatalf("live %d, want %d", ev.Sequence, live)
	}
}

// BenchmarkFollowedAccountMemory measures the heap a followed account costs
// the gateway beyond its connections: n connections, each with an
// account-wide binding, spread over n accounts, against the same n in one
// account (docs/performance.md, "Many tenants"). The structures are the
// gateway's own (index, binding keys, per-account count), without sockets.
//
//	go test -run '^$' -bench FollowedAccountMemory ./internal/gateway
func BenchmarkFollowedAccountMemory(b *testing.B) {
	const n = 10_000
	var before, after runtime.MemStats
	measure := func(accounts int) float64 {
		srv := &Server{perAccount: limit.NewCounter(n, 0)}
		srv.live = newLive(srv)
		accs := make([]string, accounts)
		for i := range accs {
			accs[i] = fmt.Sprintf("%032x", i+1)
		}
		runtime.GC()
		runtime.ReadMemStats(&before)
		subs := make([]*sub, n)
		for i := range subs {
			acc := accs[i%accounts]
			bd := binding.MustParse("qubicle.*." + acc + ".*")
			srv.perAccount.TryAcquire(acc)
			sb := &sub{ca: &connAccount{account: acc}, key: srv.live.acquireKey(bd.String(), bd)}
			srv.live.index.Add(bd, sb)
			subs[i] = sb
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		runtime.KeepAlive(subs)
		runtime.KeepAlive(srv)
		return float64(after.HeapInuse - before.HeapInuse)
	}
	for b.Loop() {
		one, many := measure(1), measure(n)
		b.ReportMetric(one/n, "B/conn-in-one-account")
		b.ReportMetric(many/n, "B/conn-in-own-account")
		b.ReportMetric((many-one)/(n-1), "B/account")
	}
}
