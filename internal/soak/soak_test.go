package soak

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
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
	began := time.Now()
	nSDK := min(max(cfg.conns/40, 1), 50)
	nSlow := min(max(cfg.conns/500, 1), 4)
	nRaw := cfg.conns - nSDK - nSlow
	nAbusers := min(max(cfg.conns/100, 4), 30)
	nRestarts := min(max(int(cfg.duration/(50*time.Second)), 1), 20)
	t.Logf("soak: %s churn phase, %d well-behaved connections (%d raw, %d slow readers, %d SDK clients), %d hostile clients, %.0f events/s over %d accounts, %d restarts, seed %d (CCEVENTS_SOAK_SEED)",
		cfg.duration, cfg.conns, nRaw, nSlow, nSDK, nAbusers, cfg.rate, soakAccounts, nRestarts, cfg.seed)

	ctx := t.Context()
	gw := newGatewayProc(t, buildBinary(t), soakServeFlags...)
	if _, err := gw.start(ctx); err != nil {
		t.Fatal(err)
	}
	// Four accounts share the steady traffic, one busy account taking 40%
	// of it. A fifth, the firehose, carries large events for the slow
	// readers alone, while one of them is paused (see slowEpisodes).
	created, err := gw.createAccounts(ctx, soakAccounts+1)
	if err != nil {
		t.Fatal(err)
	}
	accts, firehose := created[:soakAccounts], created[soakAccounts]
	for i, a := range accts {
		a.weight = 0.6 / float64(len(accts)-1)
		if i == 0 {
			a.weight = 0.4
		}
	}
	firehose.weight = 1
	pub, err := newPublisher(gw.natsURL(), created)
	if err != nil {
		t.Fatal(err)
	}
	defer pub.close()
	base, _, err := gw.settledUsage(ctx)
	if err != nil {
		t.Fatal(err)
	}
	baseConsumers, err := pub.consumers(ctx)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("baseline (idle, after GC): %v, %d JetStream consumers", base, baseConsumers)

	// Clients.
	run := &soakRun{gw: gw, accts: accts}
	rng := rand.New(rand.NewPCG(cfg.seed, 0))
	form := func() int { return rng.IntN(3) }
	var raws, slows []*rawClient
	for i := range nRaw + nSlow {
		c := &rawClient{run: run, id: i, kind: kindSteady, local: loopbackIP(10 + i/clientsPerIP)}
		switch {
		case i >= nRaw:
			c.kind = kindSlow
			c.subs = []*stream{newStream(firehose, []spec{{}}, form)}
			slows = append(slows, c)
		default:
			if i%2 == 1 {
				c.kind = kindChurn
			}
			c.subs = []*stream{newStream(accts[pickAccount(rng, accts)], randomSpecs(rng), form)}
		}
		raws = append(raws, c)
	}
	var sdks []*sdkClient
	for i := range nSDK {
		sdks = append(sdks, &sdkClient{run: run, id: i, s: newStream(accts[pickAccount(rng, accts)], randomSpecs(rng), form)})
	}

	clientCtx, stopClients := context.WithCancel(ctx)
	defer stopClients()
	var clients sync.WaitGroup
	rampStart := time.Now()
	for i, c := range raws {
		clients.Go(func() { c.loop(clientCtx) })
		if i%50 == 49 {
			time.Sleep(25 * time.Millisecond)
		}
	}
	for _, sc := range sdks {
		if err := sc.start(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if !waitFor(ctx, 3*time.Minute, func() bool {
		for _, c := range raws {
			if !c.everReady.Load() {
				return false
			}
		}
		return true
	}) {
		t.Fatalf("not every client subscribed within 3 minutes of connecting")
	}
	m, err := gw.scrape(ctx)
	if err != nil {
		t.Fatal(err)
	}
	loaded := m.usage()
	t.Logf("%d connections subscribed in %s: %v", cfg.conns, time.Since(rampStart).Round(time.Millisecond), loaded)

	// The churn phase: steady publishing, churning clients, hostile
	// clients, slow readers, one connection flood and restarts.
	pubStop, pubDone := make(chan struct{}), make(chan struct{})
	var publishers sync.WaitGroup
	publishers.Go(func() { pub.run(cfg.rate, accts, cfg.seed, pubStop) })
	go func() {
		publishers.Wait()
		close(pubDone)
	}()
	hostileCtx, stopHostile := context.WithCancel(ctx)
	defer stopHostile()
	var hostiles sync.WaitGroup
	ab := newAbuse(run, []net.IP{loopbackIP(200), loopbackIP(201), loopbackIP(202)}, []net.IP{loopbackIP(210), loopbackIP(211), loopbackIP(212)})
	for i := range nAbusers {
		hostiles.Go(func() { ab.loop(hostileCtx, cfg.seed+uint64(i)+100) })
	}
	var slowEps slowEpisodes
	hostiles.Go(func() { slowEps.run(hostileCtx, gw, pub, firehose, slows, cfg.seed) })
	var flood struct {
		admitted, refused int
		other             string
		interrupted       bool
	}
	hostiles.Go(func() {
		select {
		case <-hostileCtx.Done():
			return
		case <-time.After(5 * time.Second):
		}
		gen := gw.gen.Load()
		flood.admitted, flood.refused, flood.other = connFlood(hostileCtx, run, loopbackIP(220), perIPLimit)
		flood.interrupted = gw.gen.Load() != gen
	})

	phaseStart := time.Now()
	restartAt := make([]time.Time, nRestarts)
	for i := range restartAt {
		restartAt[i] = phaseStart.Add(time.Duration(i+1) * cfg.duration / time.Duration(nRestarts+1))
	}
	peak := loaded
	progress := time.NewTicker(20 * time.Second)
	defer progress.Stop()
	for time.Since(phaseStart) < cfg.duration {
		var due <-chan time.Time
		if len(restartAt) > 0 {
			due = time.After(time.Until(restartAt[0]))
		}
		select {
		case <-ctx.Done():
			t.Fatal("test cancelled")
		case <-time.After(time.Until(phaseStart.Add(cfg.duration))):
		case <-due:
			restartAt = restartAt[1:]
			down, err := gw.stop(45 * time.Second)
			if err != nil {
				t.Errorf("restart %d: %v", gw.starts, err)
			}
			up, err := gw.start(ctx)
			if err != nil {
				t.Fatalf("restart %d: %v", gw.starts, err)
			}
			t.Logf("restart %d at %s: SIGTERM to exit %s, start to ready %s", gw.starts-1, time.Since(phaseStart).Round(time.Second), down.Round(time.Millisecond), up.Round(time.Millisecond))
		case <-progress.C:
			m, err := gw.scrape(ctx)
			if err != nil {
				t.Logf("%s: /metrics: %v", time.Since(phaseStart).Round(time.Second), err)
				continue
			}
			u := m.usage()
			peak = maxUsage(peak, u)
			t.Logf("%s: published %d, frames received %d, slow-consumer closes %.0f; server: %v",
				time.Since(phaseStart).Round(time.Second), pub.published.Load(), run.frames.Load(), m.closed4008(), u)
		}
	}

	// Wind down: stop the hostile clients and the publisher, then let every
	// client catch up with what was published.
	stopHostile()
	hostiles.Wait()
	close(pubStop)
	<-pubDone
	acked := pub.acked()
	for _, e := range pub.errs {
		t.Errorf("publisher: %s", e)
	}
	if err := pub.checkStream(ctx, acked); err != nil {
		t.Errorf("stream and acknowledgements disagree: %v", err)
	}
	run.draining.Store(true)
	type owedStream struct {
		s      *stream
		target uint64
		who    string
	}
	var all []owedStream
	for _, c := range raws {
		for _, s := range c.subs {
			all = append(all, owedStream{s, s.target(acked[s.acct.idx]), fmt.Sprintf("%s client %d", c.kind, c.id)})
		}
	}
	for _, sc := range sdks {
		all = append(all, owedStream{sc.s, sc.s.target(acked[sc.s.acct.idx]), fmt.Sprintf("SDK client %d", sc.id)})
	}
	drainStart := time.Now()
	behind, lastLog := 0, time.Now()
	caughtUp := waitFor(ctx, 2*time.Minute, func() bool {
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
	if !caughtUp {
		t.Errorf("%d of %d client streams still behind 2 minutes after publishing stopped", behind, len(all))
		n := 0
		for _, o := range all {
			if last := o.s.last.Load(); last < o.target && n < 10 {
				n++
				t.Logf("behind: %s, account %s, bindings %q: at %d of %d", o.who, o.s.acct.id, o.s.bindings, last, o.target)
			}
		}
	}
	t.Logf("publishing stopped; every client caught up in %s", time.Since(drainStart).Round(time.Millisecond))
	stopClients()
	clients.Wait()
	for _, sc := range sdks {
		sc.close()
	}

	// Every well-behaved client got exactly what it was owed.
	report(t, pub, acked, raws, sdks, ab, &slowEps)
	switch {
	case flood.interrupted:
		t.Logf("connection flood: interrupted by a restart (%d admitted, %d refused)", flood.admitted, flood.refused)
	case flood.other != "" || flood.admitted != perIPLimit || flood.refused != 20:
		t.Errorf("connection flood from one address: %d admitted, %d refused with 1008 (%s); want %d admitted, the next 20 refused", flood.admitted, flood.refused, flood.other, perIPLimit)
	default:
		t.Logf("connection flood from one address: %d admitted, the next %d refused with 1008", flood.admitted, flood.refused)
	}

	// Nothing leaked: with every client gone, the server's connections,
	// bindings, goroutines and heap come back to where they started.
	var end usage
	endConsumers := -1
	settled := waitFor(ctx, time.Minute, func() bool {
		m, err := gw.scrape(ctx)
		if err != nil {
			return false
		}
		end = m.usage()
		if endConsumers, err = pub.consumers(ctx); err != nil {
			return false
		}
		return end.conns == 0 && end.subs == 0 && end.goroutines <= base.goroutines+goroutineSlack && endConsumers <= baseConsumers
	})
	if !settled {
		t.Errorf("a minute after the last client left: %v, %d JetStream consumers; baseline was %v, %d JetStream consumers (slack %d goroutines)",
			end, endConsumers, base, baseConsumers, goroutineSlack)
		t.Logf("the gateway's goroutines, most common stacks first:\n%s", gw.dumpGoroutines())
		return
	}
	// The heap takes longer: NATS keeps recently used stream blocks cached
	// for a while after the last read.
	heapBack := waitFor(ctx, 2*time.Minute, func() bool {
		u, _, err := gw.settledUsage(ctx)
		if err != nil {
			return false
		}
		end = u
		if end.heapInuse <= base.heapInuse+heapSlack {
			return true
		}
		sleepCtx(ctx, 5*time.Second)
		return false
	})
	t.Logf("goroutines: baseline %d, peak %d, end %d", base.goroutines, peak.goroutines, end.goroutines)
	t.Logf("heap in use: baseline %.1f MiB, peak %.1f MiB, end %.1f MiB (after GC)", base.heapInuse/(1<<20), peak.heapInuse/(1<<20), end.heapInuse/(1<<20))
	t.Logf("RSS: baseline %.1f MiB, peak %.1f MiB, end %.1f MiB (the Go runtime returns memory to the OS lazily)", base.rss/(1<<20), peak.rss/(1<<20), end.rss/(1<<20))
	if !heapBack {
		t.Errorf("heap in use 2 minutes after every client left is %.1f MiB, more than the baseline %.1f MiB + %d MiB", end.heapInuse/(1<<20), base.heapInuse/(1<<20), heapSlack>>20)
	}
	if _, err := gw.stop(45 * time.Second); err != nil {
		t.Errorf("final shutdown: %v", err)
	}
	t.Logf("soak finished in %s", time.Since(began).Round(time.Second))
}

func maxUsage(a, b usage) usage {
	return usage{goroutines: max(a.goroutines, b.goroutines), heapInuse: max(a.heapInuse, b.heapInuse),
		rss: max(a.rss, b.rss), conns: max(a.conns, b.conns), subs: max(a.subs, b.subs)}
}

// waitFor polls cond until it holds or d passes.
func waitFor(ctx context.Context, d time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if cond() {
			return true
		}
		if time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(250 * time.Millisecond)
	}
}

// slowEpisodes pauses one slow reader at a time and, meanwhile, publishes
// large events to the firehose account only slow readers subscribe to,
// until the gateway reports a slow-consumer close (or 20 s pass); then the
// reader reads again: it must find the 4008 close after what was queued,
// reconnect and resume without loss. On loopback the kernel buffers about
// 4 MiB for a reader that stops, hence the large events.
type slowEpisodes struct {
	episodes, overflowed, interrupted int
	took                              []time.Duration // pause to overflow
}

func (e *slowEpisodes) run(ctx context.Context, gw *gatewayProc, pub *publisher, firehose *account, slows []*rawClient, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 3))
	custom := []byte(`{"pad":"` + strings.Repeat("x", firehosePad) + `"}`)
	for i := 0; ctx.Err() == nil; i++ {
		c := slows[i%len(slows)]
		if !c.subscribed.Load() {
			sleepCtx(ctx, 500*time.Millisecond)
			continue
		}
		m, err := gw.scrape(ctx)
		if err != nil {
			sleepCtx(ctx, 500*time.Millisecond)
			continue
		}
		before, gen, sessions := m.closed4008(), gw.gen.Load(), c.sessions.Load()
		c.pause()
		paused := time.Now()
		overflowed := false
		next := paused
		for n := 1; !overflowed && time.Since(paused) < 20*time.Second && ctx.Err() == nil; n++ {
			pub.publishOne(firehose, rng, custom)
			next = next.Add(time.Second / firehoseRate)
			sleepCtx(ctx, time.Until(next))
			if n%8 == 0 {
				if m, err := gw.scrape(ctx); err == nil && m.closed4008() > before {
					overflowed = true
				}
			}
		}
		c.resume()
		e.episodes++
		switch {
		case gw.gen.Load() != gen:
			e.interrupted++
		case overflowed:
			e.overflowed++
			e.took = append(e.took, time.Since(paused).Round(100*time.Millisecond))
		}
		// Let it read the close, reconnect and catch up before the next.
		waitFor(ctx, 20*time.Second, func() bool { return !overflowed || (c.sessions.Load() > sessions && c.subscribed.Load()) })
		sleepCtx(ctx, 2*time.Second)
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// report checks every client's streams against what was published and
// logs the run's numbers.
func report(t *testing.T, pub *publisher, acked [][]pubEvent, raws []*rawClient, sdks []*sdkClient, ab *abuse, slow *slowEpisodes) {
	t.Helper()
	perAcct := make([]int, len(acked))
	for i, evs := range acked {
		perAcct[i] = len(evs)
	}
	t.Logf("published %d events (per account %v), %d publish retries, %d found already stored",
		pub.published.Load(), perAcct, pub.retries.Load(), pub.duplicates.Load())

	var checked, streams, bad int
	var sessions, resumes int64
	endings := map[string]*tally{kindSteady: {}, kindChurn: {}, kindSlow: {}, "sdk": {}}
	fails := 0
	failf := func(format string, args ...any) {
		bad++
		if fails < 10 {
			fails++
			t.Errorf(format, args...)
		}
	}
	for _, c := range raws {
		sessions += c.sessions.Load()
		resumes += c.resumes.Load()
		c.endings.mergeInto(endings[c.kind])
		if n := c.probs.count(); n > 0 {
			failf("%s client %d (bindings %q): %d protocol problems, first: %q", c.kind, c.id, c.subs[0].bindings, n, c.probs.msgs)
		}
		for _, s := range c.subs {
			streams++
			d := s.compare(acked[s.acct.idx])
			checked += d.owed
			if !d.ok() {
				failf("%s client %d, account %s, bindings %q, live from %d: %v", c.kind, c.id, s.acct.id, s.bindings, s.start, d)
			}
		}
	}
	for _, sc := range sdks {
		sc.drops.mergeInto(endings["sdk"])
		if n := sc.probs.count(); n > 0 {
			failf("SDK client %d (bindings %q): %d problems, first: %q", sc.id, sc.s.bindings, n, sc.probs.msgs)
		}
		streams++
		d := sc.s.compare(acked[sc.s.acct.idx])
		checked += d.owed
		if !d.ok() {
			failf("SDK client %d, account %s, bindings %q, live from %d: %v", sc.id, sc.s.acct.id, sc.s.bindings, sc.s.start, d)
		}
	}
	if bad > fails {
		t.Errorf("… and %d more clients with problems", bad-fails)
	}
	if bad == 0 {
		t.Logf("all %d client streams complete: %d owed deliveries checked, each received once and in order", streams, checked)
	}
	t.Logf("raw clients: %d connections, %d resumes with since", sessions, resumes)
	for _, k := range []string{kindSteady, kindChurn, kindSlow, "sdk"} {
		t.Logf("how %s clients' connections ended: %v", k, endings[k])
	}
	t.Logf("slow-reader episodes: %d, %d overflowed into a slow-consumer close (paused for %v), %d interrupted by a restart", slow.episodes, slow.overflowed, slow.took, slow.interrupted)
	if got := endings[kindSlow].get("close 4008"); got == 0 {
		t.Errorf("no slow reader was closed with 4008: the slow-consumer path was not exercised")
	}
	for _, k := range abuseKinds {
		tl := ab.outcomes[k.name]
		t.Logf("hostile %q: %v", k.name, tl)
		n := 0
		for _, e := range k.expect {
			n += tl.get(e)
		}
		if n == 0 {
			t.Errorf("hostile %q never got the documented answer (%v)", k.name, k.expect)
		}
	}
	if n := ab.bad.count(); n > 0 {
		t.Errorf("%d hostile attempts got an undocumented answer, first: %q", n, ab.bad.msgs)
	}
}
