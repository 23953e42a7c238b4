package engine_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/engine/cluster"
	"github.com/ccevents/ccevents/internal/engine/enginetest"
	"github.com/ccevents/ccevents/internal/lease"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/testkit"
)

// testTTL is the lease TTL of the test nodes: short, so a takeover comes
// quickly, and long enough for an R3 bucket under -race.
const testTTL = 2 * time.Second

// logBook keeps what the nodes log and shows it when a test fails; it
// never writes to the test after it ended.
type logBook struct {
	mu    sync.Mutex
	lines []string
}

func newLogBook(t *testing.T) *logBook {
	lb := &logBook{}
	t.Cleanup(func() {
		if t.Failed() {
			lb.mu.Lock()
			defer lb.mu.Unlock()
			t.Logf("logs:\n%s", strings.Join(lb.lines, "\n"))
		}
	})
	return lb
}

func (lb *logBook) logger(name string) *slog.Logger {
	return slog.New(&bookHandler{lb: lb, name: name})
}

func (lb *logBook) count(level slog.Level, contains string) int {
	lb.mu.Lock()
	defer lb.mu.Unlock()
	n := 0
	for _, l := range lb.lines {
		if strings.Contains(l, level.String()) && strings.Contains(l, contains) {
			n++
		}
	}
	return n
}

type bookHandler struct {
	lb    *logBook
	name  string
	attrs []slog.Attr
}

func (h *bookHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h *bookHandler) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s %s: %s", r.Time.Format("15:04:05.000"), h.name, r.Level, r.Message)
	for _, a := range h.attrs {
		fmt.Fprintf(&b, " %s", a)
	}
	r.Attrs(func(a slog.Attr) bool { fmt.Fprintf(&b, " %s", a); return true })
	h.lb.mu.Lock()
	h.lb.lines = append(h.lb.lines, b.String())
	h.lb.mu.Unlock()
	return nil
}
func (h *bookHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return &bookHandler{lb: h.lb, name: h.name, attrs: append(append([]slog.Attr{}, h.attrs...), as...)}
}
func (h *bookHandler) WithGroup(string) slog.Handler { return h }

// process is one ccevents process on the cluster: its own bus (NATS
// connection) and the engine bucket.
type process struct {
	name string
	bus  *bus.Bus
	kv   jetstream.KeyValue
}

// connect opens a process's bus on the cluster, NATS node i first.
func connect(t *testing.T, c *natstest.Cluster, i int, name string) *process {
	t.Helper()
	urls := c.URLs()
	urls = append(urls[i:], urls[:i]...)
	b := natstest.Bus(t, bus.Config{URLs: urls, Replicas: 3, Name: name})
	// Generous: other tests may load the machine while the cluster settles.
	ctx, cancel := context.WithTimeout(t.Context(), 60*time.Second)
	defer cancel()
	kv, err := b.KeyValue(ctx, engine.Bucket)
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return &process{name: name, bus: b, kv: kv}
}

// kill cuts the process off NATS as a crash would: nothing it does
// reaches the bus any more, and it gives nothing back.
func (p *process) kill() { p.bus.Conn().Close() }

// startNode runs a clustered engine node in process p, without periodic
// syncs or statistics events, so tests can expect exact event lists.
func startNode(t *testing.T, p *process, lb *logBook) *cluster.Node {
	t.Helper()
	return startNodeWith(t, p, lb, engine.Config{SyncInterval: -1, StatsInterval: -1})
}

// startNodeWith runs a clustered engine node in process p with cfg's
// intervals.
func startNodeWith(t *testing.T, p *process, lb *logBook, cfg engine.Config) *cluster.Node {
	t.Helper()
	cfg.Publisher, cfg.KV = p.bus, p.kv
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	leases, err := p.bus.KeyValue(ctx, lease.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	// Small reply parts: forwarded lists and snapshots arrive in several.
	n, err := cluster.StartNode(ctx, cluster.NodeConfig{
		Engine:       cfg,
		Conn:         p.bus.Conn(),
		Leases:       leases,
		NodeID:       p.name,
		LeaseTTL:     testTTL,
		Logger:       lb.logger(p.name),
		MaxReplyPart: 512,
	})
	if err != nil {
		t.Fatalf("start node %s: %v", p.name, err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = n.Close(ctx)
	})
	return n
}

// router is an API process's router: no engine of its own.
func router(t *testing.T, p *process, lb *logBook) *cluster.Router {
	t.Helper()
	r, err := cluster.NewRouter(cluster.RouterConfig{Conn: p.bus.Conn(), KV: p.kv, Wait: 20 * time.Second, Logger: lb.logger(p.name)})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// waitOwned waits until node n runs exactly accounts (sorted), failing the
// test after 30 s (a bound on a broken cluster, not a performance claim).
func waitOwned(t *testing.T, what string, n *cluster.Node, accounts []string) {
	t.Helper()
	testkit.EventuallyNoError(t, 30*time.Second, what, func() error {
		if got := n.Owned(); !slices.Equal(got, accounts) {
			return fmt.Errorf("it runs %v, want %v", got, accounts)
		}
		return nil
	})
}

// streamEvents reads the account's events with a sequence above after.
func streamEvents(t tb, b *bus.Bus, account string, after uint64) []published {
	t.Helper()
	// Generous: a long randomized run's account holds thousands of events,
	// read under -race on a machine other tests keep busy.
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	bounds, err := b.Bounds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var out []published
	err = b.Replay(ctx, []string{"qubicle.*." + account + ".>"}, after, bounds.Last, func(m bus.Message) error {
		p := published{Seq: m.Sequence, Subject: m.Subject, Data: m.Data}
		if err := json.Unmarshal(m.Data, &p.Fields); err != nil {
			return err
		}
		p.Event, _ = p.Fields["event"].(string)
		out = append(out, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func lastSeq(t tb, b *bus.Bus) uint64 {
	t.Helper()
	bounds, err := b.Bounds(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	return bounds.Last
}

// accountID makes the i-th test account id.
func accountID(i int) string { return fmt.Sprintf("%032x", 0xacc000+i) }

// manualEngine is an engine whose accounts are given to it with Own, in
// process p.
func manualEngine(t *testing.T, p *process, lb *logBook) *engine.Engine {
	t.Helper()
	return enginetest.Start(t, engine.Config{Publisher: p.bus, KV: p.kv, Manual: true, SyncInterval: -1, StatsInterval: -1, Logger: lb.logger(p.name)})
}

// standaloneNode runs an engine node on its own embedded NATS server, as
// ccevents serve does without a cluster: it runs every account. Periodic
// syncs and statistics events are off, so tests can expect exact events.
func standaloneNode(t testing.TB, lb *logBook) (*bus.Bus, *cluster.Node) {
	t.Helper()
	b := openBus(t, t.TempDir(), true)
	kv, err := b.KeyValue(t.Context(), engine.Bucket)
	ok(t, err)
	cfg := cluster.NodeConfig{Engine: engine.Config{Publisher: b, KV: kv, SyncInterval: -1, StatsInterval: -1}, Conn: b.Conn()}
	if lb != nil {
		cfg.Logger = lb.logger("standalone")
	}
	n, err := cluster.StartNode(t.Context(), cfg)
	ok(t, err)
	t.Cleanup(func() { _ = n.Close(context.Background()) })
	return b, n
}
