package loadtest

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// plan is what one process needs to open and run its share of a target's
// connections; it travels to child processes as JSON.
type plan struct {
	Proto targetProto `json:"proto"`
	// URLs are the target's servers; account i's connections go to
	// URLs[i % len(URLs)].
	URLs     []string `json:"urls"`
	Token    string   `json:"token,omitempty"`
	Accounts []string `json:"accounts"`
	Conns    int      `json:"conns"` // of the whole scenario
	Lo       int      `json:"lo"`    // this process opens connections [Lo, Hi)
	Hi       int      `json:"hi"`
	// The single-account scenario: connections by binding kind.
	Mix Mix `json:"mix,omitempty"`
	// The multi-tenant scenario: per account.
	Tenant      bool     `json:"tenant,omitempty"`
	Agents      int      `json:"agents,omitempty"`
	Wallboards  int      `json:"wallboards,omitempty"`
	AgentQueues int      `json:"agent_queues,omitempty"`
	Queues      int      `json:"queues"`
	Recipients  int      `json:"recipients"`
	SourceIPs   []string `json:"source_ips"`
	Setup       int      `json:"setup_concurrency"`

	// NATSAuth is the NATS peer connections' credential.
	NATSAuth *PeerAuth `json:"nats_auth,omitempty"`
}

// specs places every connection of the scenario: its account, its binding
// kind and entity, and its source address (round robin). The
// single-account scenario interleaves the mix evenly, so every process gets
// the same mix; the multi-tenant one lists each account's agents, then its
// wallboards.
func specs(p plan) ([]connSpec, error) {
	ips := make([]netip.Addr, len(p.SourceIPs))
	for i, s := range p.SourceIPs {
		a, err := netip.ParseAddr(s)
		if err != nil || !isLoopback127(a) {
			return nil, fmt.Errorf("source address %q: only 127.0.0.x addresses may be used", s)
		}
		ips[i] = a
	}
	if len(ips) == 0 {
		return nil, errors.New("no source addresses")
	}
	out := make([]connSpec, p.Conns)
	if p.Tenant {
		per := p.Agents + p.Wallboards
		if per < 1 || len(p.Accounts)*per != p.Conns {
			return nil, fmt.Errorf("%d connections do not fit %d accounts of %d agents and %d wallboards", p.Conns, len(p.Accounts), p.Agents, p.Wallboards)
		}
		for i := range out {
			s := connSpec{account: i / per, entity: i % per, src: ips[i%len(ips)]}
			s.kind = KindAgent
			if s.entity >= p.Agents {
				s.kind, s.entity = KindAccount, 0
			}
			out[i] = s
		}
		return out, nil
	}
	want := kindCounts(p.Mix, p.Conns)
	var have [3]int
	for i := range out {
		// Pick the kind furthest behind its share so far.
		best, bestLag := 0, -1.0
		for k := range kinds {
			lag := float64(want[k])*float64(i+1)/float64(p.Conns) - float64(have[k])
			if have[k] < want[k] && lag > bestLag {
				best, bestLag = k, lag
			}
		}
		s := connSpec{kind: kinds[best], src: ips[i%len(ips)]}
		switch s.kind {
		case KindQueue:
			s.entity = have[best] % max(p.Queues, 1)
		case KindRecipient:
			s.entity = have[best] % max(p.Recipients, 1)
		}
		have[best]++
		out[i] = s
	}
	return out, nil
}

// kindCounts splits n connections by the mix, largest remainder first, so
// the counts add up to n exactly.
func kindCounts(m Mix, n int) [3]int {
	var c [3]int
	type rem struct {
		k int
		r float64
	}
	var rems []rem
	left := n
	for k, kind := range kinds {
		exact := m[kind] * float64(n)
		c[k] = int(exact)
		left -= c[k]
		rems = append(rems, rem{k, exact - float64(c[k])})
	}
	sort.SliceStable(rems, func(i, j int) bool { return rems[i].r > rems[j].r })
	for i := 0; left > 0; i, left = (i+1)%len(rems), left-1 {
		c[rems[i].k]++
	}
	return c
}

// setupResult is one process's connection set-up.
type setupResult struct {
	Attempted int      `json:"attempted"`
	Connected int      `json:"connected"`
	Refused   int      `json:"refused"` // subscribes answered with an error
	StartNS   int64    `json:"start_ns"`
	EndNS     int64    `json:"end_ns"`
	CPUNS     int64    `json:"cpu_ns"`           // CPU this process spent setting up
	Errors    []string `json:"errors,omitempty"` // the first few distinct ones
}

// markResult is what a process received since its previous mark: every
// event is stamped and recorded, so the latency histogram's count is how
// many arrived.
type markResult struct {
	Latency sparseHistogram `json:"latency"` // of the events received since the previous mark
	CPUNS   int64           `json:"cpu_ns"`  // this process's CPU time so far
}

// expected is how many events the publisher sent, per stream a connection
// can follow; it lets every connection count the events it never got.
type expected struct {
	Accounts []accountCounts `json:"accounts"`
}

// accountCounts are one account's events: all of them, and per entity
// (queues, then recipients, then its sessions as one).
type accountCounts struct {
	All      uint64   `json:"all"`
	Entities []uint64 `json:"entities"`
}

// missing is how many events of its streams connection c never got.
func (e expected) missing(c *conn) uint64 {
	if c.spec.account >= len(e.Accounts) {
		return 0
	}
	a := e.Accounts[c.spec.account]
	var n uint64
	for i := range c.next {
		want := a.All
		if c.ents != nil {
			if c.ents[i] >= len(a.Entities) {
				continue
			}
			want = a.Entities[c.ents[i]]
		}
		if got := c.next[i].Load() - 1; want > got {
			n += want - got
		}
	}
	return n
}

// finalResult is a process's account of its connections at the end.
type finalResult struct {
	Received    uint64   `json:"received"`
	Gaps        uint64   `json:"gaps"`
	Missing     uint64   `json:"missing"` // published but never received, on connections still open
	Duplicates  uint64   `json:"duplicates"`
	Strays      uint64   `json:"strays"` // events of a stream the connection did not subscribe to
	SlowCloses  uint64   `json:"slow_closes"`
	OtherCloses uint64   `json:"other_closes"`
	Unparsed    uint64   `json:"unparsed"`
	Errors      []string `json:"errors,omitempty"`
}

// fleet is a set of connections run by this process or by a child; the
// orchestrator drives local and remote fleets the same way.
type fleet interface {
	connect(ctx context.Context) (setupResult, error)
	mark(ctx context.Context) (markResult, error)
	finish(ctx context.Context, exp expected) (finalResult, error)
	close()
}

// group is a fleet of connections in this process.
type group struct {
	plan  plan
	specs []connSpec
	log   *slog.Logger
	conns []*conn

	hist    atomic.Pointer[histogram]
	pollers pollers // read the connections once they are set up
	readers sync.WaitGroup

	slowCloses, otherCloses, unparsed atomic.Uint64
	errMu                             sync.Mutex
	errs                              []string
}

func newGroup(p plan, log *slog.Logger) (*group, error) {
	all, err := specs(p)
	if err != nil {
		return nil, err
	}
	if p.Lo < 0 || p.Hi > len(all) || p.Lo > p.Hi {
		return nil, fmt.Errorf("connection range [%d,%d) is outside 0..%d", p.Lo, p.Hi, len(all))
	}
	if len(p.URLs) == 0 || len(p.Accounts) == 0 {
		return nil, errors.New("a plan needs the target's URLs and the run's accounts")
	}
	if p.Setup < 1 {
		p.Setup = 100
	}
	g := &group{plan: p, specs: all[p.Lo:p.Hi], log: log}
	g.hist.Store(new(histogram))
	return g, nil
}

const maxNotedErrors = 5

// noteError keeps the first few distinct errors for the report.
func (g *group) noteError(err error) {
	msg := describeNetError(err)
	g.errMu.Lock()
	defer g.errMu.Unlock()
	g.errs = appendDistinct(g.errs, msg)
}

func (g *group) errors() []string {
	g.errMu.Lock()
	defer g.errMu.Unlock()
	return append([]string(nil), g.errs...)
}

// describeNetError turns the errors a load test meets into advice.
func describeNetError(err error) string {
	switch {
	case errors.Is(err, io.EOF):
		return "the server closed the connection without a close frame"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused (is the server running on that port?)"
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return "out of local ports on a source address (spread connections over more --source-ips)"
	case errors.Is(err, syscall.EMFILE):
		return "too many open files in the load tool (use more --procs)"
	case errors.Is(err, syscall.ECONNRESET):
		return "the server reset the connection"
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out: " + err.Error()
	}
	return err.Error()
}

// connect opens every connection of the group, SetupConcurrency at a time,
// and starts a reader for each one that subscribed.
func (g *group) connect(ctx context.Context) (setupResult, error) {
	res := setupResult{Attempted: len(g.specs), StartNS: time.Now().UnixNano()}
	cpu0 := selfCPU()
	ps, err := newPollers()
	if err != nil {
		return res, err
	}
	g.pollers = ps
	g.conns = make([]*conn, len(g.specs))
	var next atomic.Int64
	var connected, refused atomic.Int64
	var wg sync.WaitGroup
	for range min(g.plan.Setup, len(g.specs)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= len(g.specs) || ctx.Err() != nil {
					return
				}
				c := g.newConn(g.specs[i])
				acct := g.plan.Accounts[c.spec.account]
				url := g.plan.URLs[c.spec.account%len(g.plan.URLs)]
				bs := c.spec.bindings(g.plan.Proto, acct, g.plan.Queues, g.plan.AgentQueues)
				if err := c.open(ctx, url, g.plan.Token, acct, bs, g.plan.Lo+i); err != nil {
					var re *refusedError
					if errors.As(err, &re) {
						refused.Add(1)
					}
					g.noteError(err)
					continue
				}
				if err := g.startReading(i, c); err != nil {
					g.noteError(err)
					continue
				}
				g.conns[i] = c
				connected.Add(1)
			}
		}()
	}
	wg.Wait()
	res.EndNS = time.Now().UnixNano()
	res.CPUNS = int64(selfCPU() - cpu0)
	res.Connected = int(connected.Load())
	res.Refused = int(refused.Load())
	res.Errors = g.errors()
	// Set-up errors are reported once; later ones are about the run.
	g.errMu.Lock()
	g.errs = nil
	g.errMu.Unlock()
	return res, ctx.Err()
}

// newConn makes the connection of spec, expecting the first event of each
// stream it follows.
func (g *group) newConn(spec connSpec) *conn {
	c := &conn{spec: spec, proto: g.plan.Proto, g: g, ents: spec.follows(g.plan.Queues, g.plan.AgentQueues)}
	c.next = make([]atomic.Uint64, max(len(c.ents), 1))
	for i := range c.next {
		c.next[i].Store(1)
	}
	return c
}

func (g *group) open() []*conn {
	out := make([]*conn, 0, len(g.conns))
	for _, c := range g.conns {
		if c != nil {
			out = append(out, c)
		}
	}
	return out
}

// mark closes the current measurement window and opens the next.
func (g *group) mark(context.Context) (markResult, error) {
	// The window's deliveries are what its histogram recorded, not a
	// difference of running totals: a reader between the swap and the
	// totals would count an event in one window and its latency in the
	// next.
	h := g.hist.Swap(new(histogram))
	return markResult{Latency: h.sparse(), CPUNS: int64(selfCPU())}, nil
}

// finish counts what every connection missed, then closes them all.
func (g *group) finish(_ context.Context, exp expected) (finalResult, error) {
	var r finalResult
	conns := g.open()
	for _, c := range conns {
		r.Received += c.received.Load()
		r.Gaps += c.gaps.Load()
		r.Duplicates += c.dups.Load()
		r.Strays += c.strays.Load()
		if !c.lost.Load() {
			r.Missing += exp.missing(c)
		}
	}
	g.close()
	r.SlowCloses, r.OtherCloses, r.Unparsed = g.slowCloses.Load(), g.otherCloses.Load(), g.unparsed.Load()
	r.Errors = g.errors()
	return r, nil
}

// close closes every connection and waits (briefly) for the readers.
func (g *group) close() {
	for _, c := range g.open() {
		c.close()
	}
	done := make(chan struct{})
	go func() { g.readers.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		g.log.Warn("some connections did not stop within 5s")
	}
	g.pollers.close()
}
