package client_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/client"
	"github.com/ccevents/ccevents/internal/gateway"
	"github.com/ccevents/ccevents/internal/promutil"
	"github.com/ccevents/ccevents/internal/socketlist"
	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/ccevents/ccevents/protocol"
)

const wait = 20 * time.Second // upper bound for anything to arrive; tests pass far sooner

func dial(t *testing.T, s *server, edit ...func(*client.Options)) *client.Client {
	t.Helper()
	opts := client.Options{URL: s.wsURL, APIURL: s.apiURL, APIKey: s.apiKey,
		MinBackoff: 20 * time.Millisecond, MaxBackoff: 200 * time.Millisecond}
	for _, e := range edit {
		e(&opts)
	}
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	c, err := client.Dial(ctx, opts)
	if err != nil {
		t.Fatalf("Dial: %v", err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), wait)
		defer cancel()
		if err := c.Close(ctx); err != nil {
			t.Errorf("Close: %v", err)
		}
	})
	return c
}

func subscribe(t *testing.T, c *client.Client, account, binding string, h client.Handler, opts ...client.SubscribeOption) *client.Subscription {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	sub, err := c.Subscribe(ctx, account, binding, h, opts...)
	if err != nil {
		t.Fatalf("Subscribe %s: %v", binding, err)
	}
	return sub
}

// assertExactly checks that the handler saw exactly the sequences want, in
// that order: none missing, none twice.
func assertExactly(t *testing.T, got []eventSeen, want []uint64) {
	t.Helper()
	seqs := make([]uint64, len(got))
	for i, e := range got {
		seqs[i] = e.seq
	}
	if !slices.Equal(seqs, want) {
		t.Fatalf("handler saw sequences %v,\nwant exactly %v", seqs, want)
	}
}

func TestHandlerSeesEveryEventOnceAcrossGatewayRestarts(t *testing.T) {
	s := startServer(t, serverConfig{})
	c := dial(t, s)
	rec := newRecorder()
	subscribe(t, c, s.account, "qubicle.queue."+s.account+".*", rec.handle)

	want := s.publishJoins(t, "q1", 20)
	rec.waitFor(t, 20, wait)

	// Events keep being stored while the gateway restarts twice: some
	// arrive while the client is away and must come back by replay.
	var mu sync.Mutex
	done := make(chan struct{})
	go func() {
		defer close(done)
		for range 8 {
			seqs := s.publishJoins(t, "q1", 10)
			mu.Lock()
			want = append(want, seqs...)
			mu.Unlock()
			time.Sleep(5 * time.Millisecond)
		}
	}()
	s.restartGateway(t)
	s.restartGateway(t)
	<-done
	mu.Lock()
	defer mu.Unlock()
	assertExactly(t, rec.waitFor(t, len(want), wait), want)
}

func TestResumeAfterServerRestartOnSameDataDir(t *testing.T) {
	s := startServer(t, serverConfig{dir: t.TempDir()})
	var states []client.ConnState
	var goingAway bool
	var stMu sync.Mutex
	c := dial(t, s, func(o *client.Options) {
		o.OnConnState = func(ev client.ConnEvent) {
			stMu.Lock()
			states = append(states, ev.State)
			var ce *client.CloseError
			goingAway = goingAway || errors.As(ev.Err, &ce) && ce.Code == client.CloseGoingAway
			stMu.Unlock()
		}
	})
	rec := newRecorder()
	subscribe(t, c, s.account, "qubicle.queue."+s.account+".*", rec.handle)
	want := s.publishJoins(t, "q1", 10)
	rec.waitFor(t, 10, wait)

	s.restart(t)
	want = append(want, s.publishJoins(t, "q1", 10)...)
	got := rec.waitFor(t, 20, wait)
	assertExactly(t, got, want)
	if got[0].epoch != got[19].epoch {
		t.Errorf("epoch changed across a restart on the same data dir: %s then %s", got[0].epoch, got[19].epoch)
	}
	// The state callback runs on its own goroutine; give it until the
	// deadline to report the reconnection the events already prove.
	testkit.EventuallyNoError(t, wait, "the client to report a disconnect and end connected", func() error {
		stMu.Lock()
		defer stMu.Unlock()
		if !slices.Contains(states, client.Disconnected) || states[len(states)-1] != client.Connected {
			return fmt.Errorf("connection states %v", states)
		}
		return nil
	})
	stMu.Lock()
	defer stMu.Unlock()
	if !goingAway {
		t.Errorf("no disconnect reported close code %d, which a gateway shutting down sends", client.CloseGoingAway)
	}
}

func TestSinceReplaysStoredEventsThenContinuesLive(t *testing.T) {
	s := startServer(t, serverConfig{})
	stored := s.publishJoins(t, "q1", 10)
	c := dial(t, s)
	rec := newRecorder()
	from := client.Position{Sequence: stored[3], Epoch: s.bus.Epoch()}
	sub := subscribe(t, c, s.account, "qubicle.queue."+s.account+".*", rec.handle, client.Since(from))
	live := s.publishJoins(t, "q1", 5)
	want := append(stored[4:], live...)
	assertExactly(t, rec.waitFor(t, len(want), wait), want)
	testkit.EventuallyNoError(t, wait, fmt.Sprintf("Position() to reach sequence %d", live[4]), func() error {
		if p := sub.Position(); p.Sequence != live[4] {
			return fmt.Errorf("Position() = %v", p)
		}
		return nil
	})
}

func TestResyncHookRunsWhenHistoryCannotBeReplayed(t *testing.T) {
	s := startServer(t, serverConfig{})
	s.publishJoins(t, "q1", 3)
	c := dial(t, s)
	resyncs := make(chan client.Resync, 1)
	rec := newRecorder()
	from := client.Position{Sequence: 2, Epoch: "0123456789abcdef"} // another history
	subscribe(t, c, s.account, "qubicle.queue."+s.account+".*", rec.handle,
		client.Since(from), client.OnResync(func(r client.Resync) { resyncs <- r }))
	select {
	case r := <-resyncs:
		if r.From != from || r.Epoch != s.bus.Epoch() || r.Reason() == "" {
			t.Fatalf("Resync = %+v (reason %q): want From %v, the server's epoch %s and a reason", r, r.Reason(), from, s.bus.Epoch())
		}
	case <-time.After(wait):
		t.Fatal("OnResync was not called")
	}
	// Live events flow after the resync.
	want := s.publishJoins(t, "q1", 2)
	assertExactly(t, rec.waitFor(t, 2, wait), want)
}

func TestDialExplainsWhyItFailed(t *testing.T) {
	s := startServer(t, serverConfig{})
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadURL := "ws://" + closed.Addr().String()
	closed.Close()
	for _, tc := range []struct {
		name string
		opts client.Options
		want string
		is   func(error) bool
	}{
		{"refused API key", client.Options{URL: s.wsURL, APIURL: s.apiURL, APIKey: "not-a-key"}, "api key is not valid",
			func(err error) bool { var e *client.APIError; return errors.As(err, &e) && e.StatusCode == 401 }},
		{"nobody listening", client.Options{URL: deadURL, Token: "x.y.z"}, "connect to " + deadURL, nil},
		{"http URL", client.Options{URL: s.apiURL, Token: "x.y.z"}, "must start with ws:// or wss://", nil},
		{"no credentials", client.Options{URL: s.wsURL}, "set Options.Token or Options.APIKey", nil},
		{"API key without API URL", client.Options{URL: s.wsURL, APIKey: "k"}, "APIURL is required", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), wait)
			defer cancel()
			c, err := client.Dial(ctx, tc.opts)
			if err == nil {
				c.Close(ctx)
				t.Fatal("Dial succeeded")
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Dial error %q, want it to say %q", err, tc.want)
			}
			if tc.is != nil && !tc.is(err) {
				t.Errorf("Dial error %#v is not of the expected type", err)
			}
		})
	}
}

func TestSubscribeExplainsRefusals(t *testing.T) {
	s := startServer(t, serverConfig{})
	c := dial(t, s)
	subscribe(t, c, s.account, "qubicle.queue."+s.account+".*", func(client.Event) {})
	other := strings.Repeat("ab", 16)
	for _, tc := range []struct {
		name, account, binding, want string
	}{
		{"binding of another account", s.account, "qubicle.queue." + other + ".*", "must name account " + s.account},
		{"account the token may not see", other, "qubicle.queue." + other + ".*", "may not see account " + other},
		{"unknown event", s.account, "qubicle.queue." + s.account + ".q1.jion", "unknown queue event"},
		{"already subscribed", s.account, "qubicle.queue." + s.account + ".*", "already subscribed"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx, cancel := context.WithTimeout(t.Context(), wait)
			defer cancel()
			_, err := c.Subscribe(ctx, tc.account, tc.binding, func(client.Event) {})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Subscribe(%s) error %v, want it to say %q", tc.binding, err, tc.want)
			}
		})
	}
	// The client stays usable after refusals.
	rec := newRecorder()
	subscribe(t, c, s.account, "qubicle.session."+s.account+".*", rec.handle)
}

func TestTokenIsRenewedBeforeItExpires(t *testing.T) {
	// Tokens are issued and renewed by the real clock (the client renews
	// on its own timer); the gateway measures their expiry by a clock the
	// test moves past the first token's expiry instead of waiting for it.
	clock := testkit.NewClock(time.Now())
	reg := prometheus.NewRegistry()
	s := startServer(t, serverConfig{tokenTTL: 3 * time.Second, gateway: gateway.Config{Registerer: reg,
		Now: clock.Now, AfterFunc: func(d time.Duration, f func()) gateway.Timer { return clock.AfterFunc(d, f) }}})
	var drops atomic.Int32
	c := dial(t, s, func(o *client.Options) {
		o.OnConnState = func(ev client.ConnEvent) {
			if ev.State == client.Disconnected {
				drops.Add(1)
			}
		}
	})
	first := c.Token()
	if first.AccountID != s.account || first.ExpiresAt.IsZero() {
		t.Fatalf("Token() = %+v: want the account and an expiry", first)
	}
	rec := newRecorder()
	subscribe(t, c, s.account, "qubicle.queue."+s.account+".*", rec.handle)
	testkit.Eventually(t, wait, "the token to be renewed before it expired", func() bool { return c.Token().Value != first.Value })
	// The renewed token was handed to the live connection (refresh): the
	// gateway, which ends connections whose token expires, keeps it open.
	testkit.EventuallyNoError(t, wait, "the gateway to hold the connection's renewed token", func() error {
		ans := s.gateway().Sockets(t.Context(), socketlist.Query{AccountID: s.account})
		if len(ans.Sockets) != 1 {
			return fmt.Errorf("%d sockets listed", len(ans.Sockets))
		}
		if exp, err := time.Parse(time.RFC3339, ans.Sockets[0].ExpiresAt); err != nil || !exp.After(first.ExpiresAt) {
			return fmt.Errorf("the socket's access ends at %q", ans.Sockets[0].ExpiresAt)
		}
		return nil
	})
	clock.Advance(first.ExpiresAt.Sub(clock.Now()) + 500*time.Millisecond) // runs the gateway's due token timers
	if n := gatewayCount(t, reg, "ccevents_ws_refused_total", "reason", "token_expired"); n != 0 {
		t.Fatalf("the gateway closed %g connections at their token's expiry; a refresh should have kept this one", n)
	}
	if n := drops.Load(); n != 0 {
		t.Fatalf("the connection dropped %d times around the token's expiry; a refresh should have kept it", n)
	}
	// A reconnect uses the new token too. (The new gateway registers its
	// metrics afresh.)
	s.cfg.gateway.Registerer = prometheus.NewRegistry()
	s.restartGateway(t)
	want := s.publishJoins(t, "q1", 3)
	assertExactly(t, rec.waitFor(t, 3, wait), want)
	if err := c.Err(); err != nil {
		t.Fatalf("client stopped: %v", err)
	}
}

func TestCloseWaitsForTheRunningHandlerAndStopsTheRest(t *testing.T) {
	s := startServer(t, serverConfig{})
	c, err := client.Dial(t.Context(), client.Options{URL: s.wsURL, APIURL: s.apiURL, APIKey: s.apiKey})
	if err != nil {
		t.Fatal(err)
	}
	entered, release := make(chan struct{}), make(chan struct{})
	var calls atomic.Int32
	subscribe(t, c, s.account, "qubicle.queue."+s.account+".*", func(client.Event) {
		if calls.Add(1) == 1 {
			close(entered)
			<-release
		}
	})
	s.publishJoins(t, "q1", 5)
	<-entered

	short, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if err := c.Close(short); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("Close with a handler still running = %v, want a deadline error", err)
	}
	close(release)
	if err := c.Close(t.Context()); err != nil {
		t.Fatalf("second Close = %v", err)
	}
	if n := calls.Load(); n != 1 {
		t.Fatalf("%d handler calls; after Close began, queued events must be dropped", n)
	}
	select {
	case <-c.Done():
	default:
		t.Fatal("Done is not closed after Close")
	}
	if _, err := c.Subscribe(t.Context(), s.account, "qubicle.session."+s.account+".*", func(client.Event) {}); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("Subscribe after Close = %v, want ErrClosed", err)
	}
}

func TestUnsubscribeStopsItsHandlerOnly(t *testing.T) {
	s := startServer(t, serverConfig{})
	c := dial(t, s)
	a, b := newRecorder(), newRecorder()
	subA := subscribe(t, c, s.account, "qubicle.queue."+s.account+".qa", a.handle)
	subscribe(t, c, s.account, "qubicle.queue."+s.account+".qb", b.handle)
	s.publishJoins(t, "qa", 1)
	a.waitFor(t, 1, wait)

	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	if err := subA.Unsubscribe(ctx); err != nil {
		t.Fatalf("Unsubscribe: %v", err)
	}
	s.publishJoins(t, "qa", 3)
	want := s.publishJoins(t, "qb", 1)
	// qb's event was stored after qa's: once it is in, qa's would be too.
	assertExactly(t, b.waitFor(t, 1, wait), want)
	if n := len(a.seen()); n != 1 {
		t.Fatalf("unsubscribed handler saw %d events, want only the 1 from before", n)
	}
}

func TestEventDecodesIntoCatalogueType(t *testing.T) {
	s := startServer(t, serverConfig{})
	c := dial(t, s)
	got := make(chan client.Event, 1)
	subscribe(t, c, s.account, "qubicle.queue."+s.account+".*", func(ev client.Event) { got <- ev })
	s.publishJoins(t, "q1", 1)
	ev := <-got
	if ev.Family() != "queue" || ev.AccountID() != s.account || ev.EntityID() != "q1" || ev.Name != "join" {
		t.Fatalf("event %+v: want queue join of q1 in %s", ev, s.account)
	}
	p, err := ev.Decode()
	if err != nil {
		t.Fatalf("Decode: %v", err)
	}
	join, ok := p.(*client.QueueJoin)
	if !ok {
		t.Fatalf("Decode gave %T, want *client.QueueJoin", p)
	}
	if join.Position != 1 || join.SessionID != "s0" || join.Sequence != ev.Sequence || join.Env().Event != "queue.join" {
		t.Fatalf("decoded %+v: want position 1, session s0, sequence %d", join, ev.Sequence)
	}

	unknown := client.Event{RoutingKey: "qubicle.queue." + s.account + ".q1.teleport", Name: "teleport", Data: []byte(`{}`)}
	if _, err := unknown.Decode(); !errors.Is(err, client.ErrUnknownEvent) {
		t.Fatalf("Decode of an event not in the catalogue = %v, want ErrUnknownEvent", err)
	}
}

func TestSnapshotThenSinceIsExact(t *testing.T) {
	s := startServer(t, serverConfig{})
	s.rest(t, "PUT", "/v2/accounts/{ACCOUNT_ID}/queues", map[string]any{"id": "support", "name": "Support"}, nil)
	c := dial(t, s)
	snap, err := c.Snapshot(t.Context(), s.account)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if len(snap.Queues) != 1 || snap.Queues[0].Name != "Support" || snap.Epoch != s.bus.Epoch() || snap.Sequence == 0 {
		t.Fatalf("snapshot %+v: want the Support queue at a sequence of epoch %s", snap, s.bus.Epoch())
	}
	rec := newRecorder()
	subscribe(t, c, s.account, "qubicle.queue."+s.account+".*", rec.handle, client.Since(snap.Position()))
	want := s.publishJoins(t, "support", 2)
	// queue.create is in the snapshot already and must not come again.
	assertExactly(t, rec.waitFor(t, 2, wait), want)
}

func TestSlowConsumerIsClosedAndResumedWithoutLoss(t *testing.T) {
	reg := prometheus.NewRegistry()
	s := startServer(t, serverConfig{gateway: gateway.Config{OutboundMaxMessages: 16, OutboundMaxBytes: 8 << 10, Registerer: reg}})
	c := dial(t, s)
	release := make(chan struct{})
	rec := newRecorder()
	subscribe(t, c, s.account, "qubicle.queue."+s.account+".*", func(ev client.Event) {
		<-release // a handler stuck until the gateway gives up on us
		rec.handle(ev)
	})
	// Until the handler is released the client reads nothing more, so it
	// cannot see the close yet; the gateway's metrics can.
	var want []uint64
	for gatewayCount(t, reg, "ccevents_ws_closed_total", "code", "4008") == 0 { // slow consumer
		if len(want) >= 50000 {
			t.Fatal("the gateway never closed the stuck client")
		}
		want = append(want, s.publishJoins(t, "q1", 250)...)
	}
	close(release)
	assertExactly(t, rec.waitFor(t, len(want), wait), want)
}

// gatewayCount reads a counter of the gateway's: name, where its label
// has value (0 before anything was counted).
func gatewayCount(t *testing.T, reg prometheus.Gatherer, name, label, value string) float64 {
	t.Helper()
	n, _, err := promutil.Sample(reg, name, label, value)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestBindingsSubscribedTogetherResumeFromTheLatestPosition(t *testing.T) {
	s := startServer(t, serverConfig{})
	bindings := []string{"qubicle.queue." + s.account + ".qa", "qubicle.queue." + s.account + ".qb"}
	c := dial(t, s)
	rec := newRecorder()
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	subs, err := c.SubscribeBindings(ctx, s.account, bindings, rec.handle)
	if err != nil {
		t.Fatalf("SubscribeBindings: %v", err)
	}
	s.publishJoins(t, "qa", 2)
	last := s.publishJoins(t, "qb", 1)
	rec.waitFor(t, 3, wait)
	// A position moves once its handler has returned, just after the
	// recorder saw the event: wait for it rather than race the dispatcher.
	var at client.Position
	testkit.Until(t.Context(), wait, func() bool {
		at = client.LatestPosition(subs...)
		return at.Sequence == last[0]
	})
	if at.Sequence != last[0] || at.Epoch != s.bus.Epoch() {
		t.Fatalf("LatestPosition = %v, want %d@%s", at, last[0], s.bus.Epoch())
	}
	if err := c.Close(ctx); err != nil {
		t.Fatal(err)
	}

	// While no client runs, both bindings get events; a new client resuming
	// both from that one position gets exactly those.
	want := append(s.publishJoins(t, "qb", 2), s.publishJoins(t, "qa", 2)...)
	c2 := dial(t, s)
	rec2 := newRecorder()
	if _, err := c2.SubscribeBindings(ctx, s.account, bindings, rec2.handle, client.Since(at)); err != nil {
		t.Fatalf("SubscribeBindings with Since: %v", err)
	}
	assertExactly(t, rec2.waitFor(t, len(want), wait), want)
}

// blackhole is a TCP proxy to the gateway whose current connections can be
// made to stop passing bytes without closing, like a network that went away
// under a sleeping laptop. New connections pass normally.
type blackhole struct {
	ln     net.Listener
	target string
	mu     sync.Mutex
	frozen []chan struct{}
	conns  []net.Conn
}

func newBlackhole(t *testing.T, target string) *blackhole {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	b := &blackhole{ln: ln, target: target}
	t.Cleanup(func() {
		ln.Close()
		b.mu.Lock()
		defer b.mu.Unlock()
		for _, c := range b.conns {
			c.Close() // so the gateway need not wait out its close handshake
		}
	})
	go b.accept()
	return b
}

func (b *blackhole) accept() {
	for {
		in, err := b.ln.Accept()
		if err != nil {
			return
		}
		out, err := net.Dial("tcp", b.target)
		if err != nil {
			in.Close()
			continue
		}
		freeze := make(chan struct{})
		b.mu.Lock()
		b.frozen = append(b.frozen, freeze)
		b.conns = append(b.conns, in, out)
		b.mu.Unlock()
		pipe := func(dst, src net.Conn) {
			buf := make([]byte, 32<<10)
			for {
				n, err := src.Read(buf)
				select {
				case <-freeze:
					<-make(chan struct{}) // swallow everything, forever
				default:
				}
				if err != nil {
					dst.Close()
					return
				}
				if _, err := dst.Write(buf[:n]); err != nil {
					src.Close()
					return
				}
			}
		}
		go pipe(out, in)
		go pipe(in, out)
	}
}

// freezeAll stops every connection open now.
func (b *blackhole) freezeAll() {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, f := range b.frozen {
		close(f)
	}
	b.frozen = nil
}

func TestSilentConnectionIsReplacedWithoutLoss(t *testing.T) {
	s := startServer(t, serverConfig{})
	proxy := newBlackhole(t, s.wsAddr)
	c := dial(t, s, func(o *client.Options) {
		o.URL = "ws://" + proxy.ln.Addr().String()
		o.PingInterval, o.RequestTimeout = 50*time.Millisecond, 300*time.Millisecond
	})
	rec := newRecorder()
	subscribe(t, c, s.account, "qubicle.queue."+s.account+".*", rec.handle)
	want := s.publishJoins(t, "q1", 2)
	rec.waitFor(t, 2, wait)

	proxy.freezeAll()
	want = append(want, s.publishJoins(t, "q1", 3)...)
	assertExactly(t, rec.waitFor(t, len(want), wait), want)
}

func TestStatisticsAreInTheSnapshotAndArriveTypedAndResumable(t *testing.T) {
	s := startServer(t, serverConfig{})
	s.rest(t, "PUT", "/v2/accounts/{ACCOUNT_ID}/queues", map[string]any{"id": "support", "name": "Support", "service_level_target_pct": 90}, nil)
	c := dial(t, s)
	snap, err := c.Snapshot(t.Context(), s.account)
	if err != nil {
		t.Fatalf("Snapshot: %v", err)
	}
	if q := snap.Stats.Queues; len(q) != 1 || q[0].QueueID != "support" || q[0].ServiceLevelTargetPct != 90 || q[0].Waiting != 0 {
		t.Fatalf("snapshot statistics %+v", snap.Stats)
	}
	got := make(chan client.Event, 64)
	subscribe(t, c, s.account, "qubicle.stats."+s.account+".*", func(ev client.Event) { got <- ev }, client.Since(snap.Position()))
	s.rest(t, "POST", "/v2/accounts/{ACCOUNT_ID}/calls", map[string]any{"queue_id": "support", "caller_id_number": "+15550100"}, nil)

	// Within the stats interval (1 s), the queue's and the account's
	// figures say a caller waits.
	var first client.Event
	var queue, account bool
	for deadline := time.After(10 * time.Second); !queue || !account; {
		select {
		case ev := <-got:
			p, err := ev.Decode()
			if err != nil {
				t.Fatalf("Decode %s: %v", ev.RoutingKey, err)
			}
			switch p := p.(type) {
			case *client.StatsQueue:
				queue = queue || p.QueueID == "support" && p.Waiting == 1 && ev.EntityID() == "support"
			case *client.StatsAccount:
				account = account || p.Waiting == 1 && ev.EntityID() == "_total"
			default:
				t.Fatalf("%T on a stats binding", p)
			}
			if first.Sequence == 0 {
				first = ev
			}
		case <-deadline:
			t.Fatalf("no statistics saying a caller waits within 10 s (queue %v, account %v)", queue, account)
		}
	}
	// They are in history like every event: a later subscriber resumes them.
	c2 := dial(t, s)
	again := make(chan client.Event, 64)
	subscribe(t, c2, s.account, "qubicle.stats."+s.account+".support", func(ev client.Event) { again <- ev }, client.Since(client.Position{Sequence: first.Sequence - 1, Epoch: first.Epoch}))
	select {
	case ev := <-again:
		if ev.Sequence < first.Sequence || ev.Family() != "stats" {
			t.Errorf("resumed with %s at %d, want stats from %d", ev.RoutingKey, ev.Sequence, first.Sequence)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a resumed subscription received no statistics")
	}
}

func TestRefusedTokenIsAnAuthErrorAndKeepsTheGatewaysWords(t *testing.T) {
	s := startServer(t, serverConfig{})
	ctx, cancel := context.WithTimeout(t.Context(), wait)
	defer cancel()
	c, err := client.Dial(ctx, client.Options{URL: s.wsURL, Token: "x.y.z"})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close(ctx)
	_, err = c.Subscribe(ctx, s.account, "qubicle.queue."+s.account+".*", func(client.Event) {})
	var re *client.ReplyError
	if !errors.As(err, &re) || !errors.Is(err, protocol.ErrAuth) || !strings.HasPrefix(re.Errors[0], protocol.AuthFailedPrefix) {
		t.Fatalf("Subscribe with a refused token: %#v, want a *ReplyError that is protocol.ErrAuth", err)
	}
	if errors.Is(err, protocol.ErrForbidden) {
		t.Errorf("%v is also protocol.ErrForbidden", err)
	}
}
