package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/backoff"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/testkit"
)

// soakConfig is the size of one run. CCEVENTS_SOAK_DURATION,
// CCEVENTS_SOAK_CONNS, CCEVENTS_SOAK_RATE and CCEVENTS_SOAK_SEED override
// the defaults, so a longer run is one command away.
type soakConfig struct {
	duration time.Duration // of the churn phase
	conns    int           // well-behaved websocket clients
	rate     float64       // events published per second
	seed     uint64
}

func loadConfig(t *testing.T) soakConfig {
	t.Helper()
	c := soakConfig{duration: 2 * time.Minute, conns: 2000, rate: 50, seed: uint64(time.Now().UnixNano())}
	if v := os.Getenv("CCEVENTS_SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < 20*time.Second {
			t.Fatalf("CCEVENTS_SOAK_DURATION=%q: want a duration of at least 20s, such as 2m or 10m", v)
		}
		c.duration = d
	}
	if v := os.Getenv("CCEVENTS_SOAK_CONNS"); v != "" {
		n, err := strconv.Atoi(v)
		// Every connection is a file on both ends; the flood adds 1,020
		// and this host allows 20,000 open files per process.
		if err != nil || n < 20 || n > 15000 {
			t.Fatalf("CCEVENTS_SOAK_CONNS=%q: want a number of connections from 20 to 15000", v)
		}
		c.conns = n
	}
	if v := os.Getenv("CCEVENTS_SOAK_RATE"); v != "" {
		r, err := strconv.ParseFloat(v, 64)
		if err != nil || r <= 0 || r > 2000 {
			t.Fatalf("CCEVENTS_SOAK_RATE=%q: want events per second above 0 and at most 2000", v)
		}
		c.rate = r
	}
	if v := os.Getenv("CCEVENTS_SOAK_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("CCEVENTS_SOAK_SEED=%q: want a whole number", v)
		}
		c.seed = s
	}
	return c
}

// Server settings of the soak. The outbound queue is much smaller than the
// default (8,192 messages, 8 MiB) so that a paused reader overflows it in
// seconds, well within the gateway's 10 s write timeout, rather than in
// minutes; 256 ordinary events are still over 5 s of the busiest account.
var soakServeFlags = []string{
	"--outbound-max-messages", "256", "--outbound-max-bytes", "256KiB",
	"--token-ttl", "24h", "--shutdown-timeout", "10s",
}

const (
	soakAccounts   = 4
	firehoseRate   = 40       // events/s to the firehose account while a reader is paused
	firehosePad    = 32 << 10 // bytes of custom data in each firehose event
	perIPLimit     = 1000     // the gateway's default --max-conns-per-ip
	clientsPerIP   = 300
	goroutineSlack = 30       // timers, NATS housekeeping and the like
	heapSlack      = 32 << 20 // the stream's index grows with what was published
)

func loopbackIP(last int) net.IP { return net.IPv4(127, 0, 0, byte(last)) }

// TestSoak runs the real binary for minutes under churning connections,
// hostile clients, slow readers and restarts, then checks that no
// well-behaved client missed or repeated an event and that nothing leaked.
func TestSoak(t *testing.T) {
	if testing.Short() {
		t.Skip("the soak test runs for minutes; run it with make soak")
	}
	if raceEnabled {
		t.Skip("the soak test needs thousands of goroutines, beyond the race detector's limit of 8,128; run it with make soak, which builds without -race")
	}
	cfg := loadConfig(t)
	if d, ok := t.Deadline(); ok && time.Until(d) < cfg.duration+3*time.Minute {
		t.Fatalf("a %s soak needs a test timeout of at least %s: go test -count=1 -run TestSoak -timeout %s ./internal/soak",
			cfg.duration, cfg.duration+3*time.Minute, (cfg.duration + 10*time.Minute).Round(time.Minute))
	}
	s := setUp(t, cfg)
	s.connect()
	s.churn()
	acked := s.windDown()
	report(t, s.pub, acked, s.raws, s.sdks, s.abuse, &s.slow)
	s.checkFlood()
	if s.checkLeaks() {
		if _, err := s.gw.stop(45 * time.Second); err != nil {
			t.Errorf("final shutdown: %v", err)
		}
	}
	t.Logf("soak finished in %s", time.Since(s.began).Round(time.Second))
}

// soak is one run: the gateway, its accounts, the publisher and every
// client, and what the phases measured.
type soak struct {
	t     *testing.T
	ctx   context.Context
	cfg   soakConfig
	began time.Time

	gw       *gatewayProc
	accts    []*account // share the steady traffic
	firehose *account   // large events for the slow readers
	pub      *publisher
	run      *soakRun

	raws, slows []*rawClient
	sdks        []*sdkClient
	nAbusers    int
	nRestarts   int
	clients     sync.WaitGroup
	stopClients context.CancelFunc
	stopChurn   func() // stops the hostile clients, then the publisher

	abuse *abuse
	slow  slowEpisodes
	flood struct {
		admitted, refused int
		other             string
		interrupted       bool
	}

	base          usage
	baseConsumers int
	peak          usage
}

// setUp builds and starts the gateway, creates the accounts, connects the
// publisher and measures the idle baseline.
func setUp(t *testing.T, cfg soakConfig) *soak {
	s := &soak{t: t, ctx: t.Context(), cfg: cfg, began: time.Now()}
	nSDK := min(max(cfg.conns/40, 1), 50)
	nSlow := min(max(cfg.conns/500, 1), 4)
	nRaw := cfg.conns - nSDK - nSlow
	s.nAbusers = min(max(cfg.conns/100, 4), 30)
	s.nRestarts = min(max(int(cfg.duration/(50*time.Second)), 1), 20)
	t.Logf("soak: %s churn phase, %d well-behaved connections (%d raw, %d slow readers, %d SDK clients), %d hostile clients, %.0f events/s over %d accounts, %d restarts, seed %d (CCEVENTS_SOAK_SEED)",
		cfg.duration, cfg.conns, nRaw, nSlow, nSDK, s.nAbusers, cfg.rate, soakAccounts, s.nRestarts, cfg.seed)

	s.gw = newGatewayProc(t, testkit.BuildCCEvents(t), soakServeFlags...)
	if _, err := s.gw.start(s.ctx); err != nil {
		t.Fatal(err)
	}
	// Four accounts share the steady traffic, one busy account taking 40%
	// of it. A fifth, the firehose, carries large events for the slow
	// readers alone, while one of them is paused (see slowEpisodes).
	created, err := s.gw.createAccounts(s.ctx, soakAccounts+1)
	if err != nil {
		t.Fatal(err)
	}
	s.accts, s.firehose = created[:soakAccounts], created[soakAccounts]
	for i, a := range s.accts {
		a.weight = 0.6 / float64(len(s.accts)-1)
		if i == 0 {
			a.weight = 0.4
		}
	}
	s.firehose.weight = 1
	if s.pub, err = newPublisher(s.gw.natsURL(), bus.SeedFile(s.gw.dataDir, bus.IdentityCCEvents), created); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.pub.close)
	if s.base, err = s.gw.settledUsage(s.ctx); err != nil {
		t.Fatal(err)
	}
	if s.baseConsumers, err = s.pub.consumers(s.ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("baseline (idle, after GC): %v, %d JetStream consumers", s.base, s.baseConsumers)

	s.run = &soakRun{gw: s.gw, accts: s.accts}
	rng := rand.New(rand.NewPCG(cfg.seed, 0))
	form := func() int { return rng.IntN(3) }
	for i := range nRaw + nSlow {
		c := &rawClient{run: s.run, id: i, kind: kindSteady, local: loopbackIP(10 + i/clientsPerIP)}
		if i >= nRaw {
			c.kind = kindSlow
			c.subs = []*stream{newStream(s.firehose, []spec{{}}, form)}
			s.slows = append(s.slows, c)
		} else {
			if i%2 == 1 {
				c.kind = kindChurn
			}
			c.subs = []*stream{newStream(pickAccount(rng, s.accts), randomSpecs(rng), form)}
		}
		s.raws = append(s.raws, c)
	}
	for i := range nSDK {
		s.sdks = append(s.sdks, &sdkClient{run: s.run, id: i, s: newStream(pickAccount(rng, s.accts), randomSpecs(rng), form)})
	}
	return s
}

// connect starts every client and waits until each has subscribed.
func (s *soak) connect() {
	t := s.t
	clientCtx, stop := context.WithCancel(s.ctx)
	s.stopClients = stop
	t.Cleanup(stop)
	begin := time.Now()
	for i, c := range s.raws {
		s.clients.Go(func() { c.loop(clientCtx) })
		if i%50 == 49 {
			time.Sleep(25 * time.Millisecond) // a ramp, not a stampede
		}
	}
	for _, sc := range s.sdks {
		if err := sc.start(s.ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !testkit.Until(s.ctx, 3*time.Minute, func() bool {
		for _, c := range s.raws {
			if !c.everReady.Load() {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("not every client subscribed within 3 minutes of connecting")
	}
	m, err := s.gw.scrape(s.ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.peak = m.usage()
	t.Logf("%d connections subscribed in %s: %v", s.cfg.conns, time.Since(begin).Round(time.Millisecond), s.peak)
}

// churn runs the churn phase: steady publishing, churning clients, hostile
// clients, slow readers, one connection flood and restarts. It returns
// with the publisher and the hostile clients still running.
func (s *soak) churn() {
	t, gw := s.t, s.gw
	hostileCtx, stopHostile := context.WithCancel(s.ctx)
	s.abuse = newAbuse(s.run, []net.IP{loopbackIP(200), loopbackIP(201), loopbackIP(202)}, []net.IP{loopbackIP(210), loopbackIP(211), loopbackIP(212)})
	var hostiles sync.WaitGroup
	for i := range s.nAbusers {
		hostiles.Go(func() { s.abuse.loop(hostileCtx, s.cfg.seed+uint64(i)+100) })
	}
	hostiles.Go(func() { s.slow.run(hostileCtx, gw, s.pub, s.firehose, s.slows, s.cfg.seed) })
	hostiles.Go(func() {
		_ = backoff.Sleep(hostileCtx, 5*time.Second)
		if hostileCtx.Err() != nil {
			return
		}
		gen := gw.gen.Load()
		s.flood.admitted, s.flood.refused, s.flood.other = connFlood(hostileCtx, s.run, loopbackIP(220), perIPLimit)
		s.flood.interrupted = gw.gen.Load() != gen
	})
	pubStop := make(chan struct{})
	var publishing sync.WaitGroup
	publishing.Go(func() { s.pub.run(s.cfg.rate, s.accts, s.cfg.seed, pubStop) })
	s.stopChurn = func() {
		stopHostile()
		hostiles.Wait()
		close(pubStop)
		publishing.Wait()
	}

	begin := time.Now()
	restartAt := make([]time.Time, s.nRestarts)
	for i := range restartAt {
		restartAt[i] = begin.Add(time.Duration(i+1) * s.cfg.duration / time.Duration(s.nRestarts+1))
	}
	progress := time.NewTicker(20 * time.Second)
	defer progress.Stop()
	for time.Since(begin) < s.cfg.duration {
		var due <-chan time.Time
		if len(restartAt) > 0 {
			due = time.After(time.Until(restartAt[0]))
		}
		select {
		case <-s.ctx.Done():
			t.Fatal("test cancelled")
		case <-time.After(time.Until(begin.Add(s.cfg.duration))):
		case <-due:
			restartAt = restartAt[1:]
			down, err := gw.stop(45 * time.Second)
			if err != nil {
				t.Errorf("restart %d: %v", gw.starts, err)
			}
			up, err := gw.start(s.ctx)
			if err != nil {
				t.Fatalf("restart %d: %v", gw.starts, err)
			}
			t.Logf("restart %d at %s: SIGTERM to exit %s, start to ready %s", gw.starts-1, time.Since(begin).Round(time.Second), down.Round(time.Millisecond), up.Round(time.Millisecond))
		case <-progress.C:
			m, err := gw.scrape(s.ctx)
			if err != nil {
				t.Logf("%s: /metrics: %v", time.Since(begin).Round(time.Second), err)
				continue
			}
			u := m.usage()
			s.peak = maxUsage(s.peak, u)
			t.Logf("%s: published %d, frames received %d, slow-consumer closes %.0f; server: %v",
				time.Since(begin).Round(time.Second), s.pub.published.Load(), s.run.frames.Load(), m.closed4008(), u)
		}
	}
}

// windDown stops the hostile clients and the publisher, checks the stream
// against the acknowledgements, lets every client catch up with what was
// published and disconnects them all. It returns the acknowledged events.
func (s *soak) windDown() [][]pubEvent {
	t := s.t
	s.stopChurn()
	acked := s.pub.acked()
	for _, e := range s.pub.errs {
		t.Errorf("publisher: %s", e)
	}
	if err := s.pub.checkStream(s.ctx, acked); err != nil {
		t.Errorf("stream and acknowledgements disagree: %v", err)
	}
	s.run.draining.Store(true)
	type owedStream struct {
		s      *stream
		target uint64
		who    string
	}
	var all []owedStream
	for _, c := range s.raws {
		for _, st := range c.subs {
			all = append(all, owedStream{st, st.target(acked[st.acct.idx]), fmt.Sprintf("%s client %d", c.kind, c.id)})
		}
	}
	for _, sc := range s.sdks {
		all = append(all, owedStream{sc.s, sc.s.target(acked[sc.s.acct.idx]), fmt.Sprintf("SDK client %d", sc.id)})
	}
	begin := time.Now()
	behind, lastLog := 0, time.Now()
	drainWait := s.budget(2 * time.Minute)
	caughtUp := testkit.Until(s.ctx, drainWait, func() bool {
		behind = 0
		var example string
		for _, o := range all {
			if o.s.last.Load() < o.target {
				if behind++; behind == 1 {
					example = fmt.Sprintf("%s at %d of %d", o.who, o.s.last.Load(), o.target)
				}
			}
		}
		if behind > 0 && time.Since(lastLog) > 10*time.Second {
			lastLog = time.Now()
			t.Logf("catching up: %d client streams behind, e.g. %s", behind, example)
		}
		return behind == 0
	})
	if caughtUp {
		t.Logf("publishing stopped; every client caught up in %s", time.Since(begin).Round(time.Millisecond))
	} else {
		t.Errorf("%d of %d client streams still behind %s after publishing stopped", behind, len(all), drainWait)
	}
	s.stopClients()
	s.clients.Wait()
	for _, sc := range s.sdks {
		sc.close()
	}
	return acked
}

// checkFlood checks the connection flood: exactly the per-address limit
// admitted, the rest turned away with 429.
func (s *soak) checkFlood() {
	f := &s.flood
	switch {
	case f.interrupted:
		s.t.Logf("connection flood: interrupted by a restart (%d admitted, %d refused)", f.admitted, f.refused)
	case f.other != "" || f.admitted != perIPLimit || f.refused != 20:
		s.t.Errorf("connection flood from one address: %d admitted, %d refused with 429 (%s); want %d admitted, the next 20 refused", f.admitted, f.refused, f.other, perIPLimit)
	default:
		s.t.Logf("connection flood from one address: %d admitted, the next %d refused with 429", f.admitted, f.refused)
	}
}

// checkLeaks checks that, with every client gone, the server's
// connections, bindings, JetStream consumers, goroutines and heap come
// back to where they started. It reports whether the gateway still runs:
// on a leak it is made to dump its goroutines, which ends it.
func (s *soak) checkLeaks() bool {
	t, gw, base := s.t, s.gw, s.base
	var end usage
	endConsumers := -1
	settleWait := s.budget(time.Minute)
	settled := testkit.Until(s.ctx, settleWait, func() bool {
		m, err := gw.scrape(s.ctx)
		if err != nil {
			return false
		}
		end = m.usage()
		if endConsumers, err = s.pub.consumers(s.ctx); err != nil {
			return false
		}
		return end.conns == 0 && end.subs == 0 && end.goroutines <= base.goroutines+goroutineSlack && endConsumers <= s.baseConsumers
	})
	if !settled {
		t.Errorf("%s after the last client left: %v, %d JetStream consumers; baseline was %v, %d JetStream consumers (slack %d goroutines)",
			settleWait, end, endConsumers, base, s.baseConsumers, goroutineSlack)
		t.Logf("the gateway's goroutines, most common stacks first:\n%s", gw.dumpGoroutines())
		return false
	}
	// The heap takes longer: NATS keeps recently used stream blocks cached
	// for a while after the last read.
	heapWait := s.budget(2 * time.Minute)
	heapBack := testkit.Until(s.ctx, heapWait, func() bool {
		u, err := gw.settledUsage(s.ctx)
		if err != nil {
			return false
		}
		end = u
		if end.heapInuse <= base.heapInuse+heapSlack {
			return true
		}
		_ = backoff.Sleep(s.ctx, 5*time.Second)
		return false
	})
	p := s.peak
	t.Logf("goroutines: baseline %d, peak %d, end %d", base.goroutines, p.goroutines, end.goroutines)
	t.Logf("heap in use: baseline %.1f MiB, peak %.1f MiB, end %.1f MiB (after GC)", base.heapInuse/(1<<20), p.heapInuse/(1<<20), end.heapInuse/(1<<20))
	t.Logf("RSS: baseline %.1f MiB, peak %.1f MiB, end %.1f MiB (the Go runtime returns memory to the OS lazily)", base.rss/(1<<20), p.rss/(1<<20), end.rss/(1<<20))
	if !heapBack {
		t.Errorf("heap in use %s after every client left is %.1f MiB, more than the baseline %.1f MiB + %d MiB", heapWait, end.heapInuse/(1<<20), base.heapInuse/(1<<20), heapSlack>>20)
	}
	return true
}

// budget returns want, or less when the test's deadline is near, so that
// a failing run still reaches its report instead of the test timeout.
func (s *soak) budget(want time.Duration) time.Duration {
	d, ok := s.t.Deadline()
	if !ok {
		return want
	}
	return max(min(want, time.Until(d)-45*time.Second), 10*time.Second)
}

func maxUsage(a, b usage) usage {
	return usage{goroutines: max(a.goroutines, b.goroutines), heapInuse: max(a.heapInuse, b.heapInuse),
		rss: max(a.rss, b.rss), conns: max(a.conns, b.conns), subs: max(a.subs, b.subs)}
}
