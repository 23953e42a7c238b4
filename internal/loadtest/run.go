package loadtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ccevents/ccevents/internal/backoff"
)

// Run executes the scenario against the gateway and, when a peer URL is
// given, against the peer, one after the other with the same connections,
// bindings and publish rates, and returns what it measured. It stops by
// itself: every phase has a deadline.
func Run(ctx context.Context, sc Scenario) (*Report, error) {
	if err := sc.Validate(); err != nil {
		return nil, err
	}
	perTarget := setupTimeout + sc.plannedPerTarget() + drainTimeout + 30*time.Second
	ctx, cancel := context.WithTimeout(ctx, accountsTimeout(sc.Accounts)+time.Duration(sc.targets())*perTarget+30*time.Second)
	defer cancel()

	rep := &Report{Scenario: summarize(&sc)}
	var accounts []string
	var token string
	switch {
	case len(sc.GatewayURLs) > 0 && sc.tenant():
		t, err := newBenchTenants(ctx, sc.APIURL, sc.APIKey, sc.Accounts, sc.Logger)
		if err != nil {
			return nil, err
		}
		accounts, token = t.ids, t.parent.Token
		rep.Scenario.Account = t.parent.ID
		sc.Logger.Info("bench accounts ready", "parent", t.parent.ID, "accounts", len(accounts))
	case len(sc.GatewayURLs) > 0:
		acct, err := newBenchAccount(ctx, sc.APIURL, sc.APIKey)
		if err != nil {
			return nil, err
		}
		accounts, token = []string{acct.ID}, acct.Token
		rep.Scenario.Account = acct.ID
		sc.Logger.Info("bench account ready", "account_id", acct.ID)
	default:
		accounts = make([]string, max(sc.Accounts, 1))
		for i := range accounts {
			accounts[i] = randomAccountID()
		}
		rep.Scenario.Account = accounts[0]
	}

	var pub *publisher
	if !sc.idle() {
		script := roundRobinScript(sc.Queues, sc.Recipients)
		if sc.tenant() {
			script = callScript()
		}
		var err error
		if pub, err = newPublisher(ctx, sc.NATSURL, sc.NATSOptions, accounts, sc.Queues, sc.Recipients, script, sc.PayloadBytes); err != nil {
			return nil, err
		}
		defer pub.close()
	}
	// The bus's consumers are counted when the tool can sign in there; a
	// run that publishes nothing does without.
	bus, err := newNATSProbe(ctx, &sc)
	switch {
	case err != nil && !sc.idle():
		return nil, err
	case err != nil:
		sc.Logger.Warn("the stream's consumers are not counted", "err", err)
	case bus != nil:
		defer bus.close()
	}
	if len(sc.GatewayURLs) > 0 {
		tr, err := runTarget(ctx, &sc, "gateway", protoGateway, sc.GatewayURLs, accounts, token, pub, bus)
		rep.Gateway = tr
		if err != nil {
			return rep, fmt.Errorf("gateway: %w", err)
		}
	}
	if sc.PeerURL != "" {
		if pub != nil {
			pub.reset(accounts)
		}
		tr, err := runTarget(ctx, &sc, "peer", protoNATS, []string{sc.PeerURL}, accounts, "", pub, bus)
		rep.Peer = tr
		if err != nil {
			return rep, fmt.Errorf("peer: %w", err)
		}
	}
	if rep.Gateway != nil && rep.Peer != nil {
		rep.Ratios = ratios(rep.Gateway, rep.Peer)
	}
	return rep, nil
}

// accountsTimeout bounds creating n accounts through the REST API.
func accountsTimeout(n int) time.Duration { return time.Minute + time.Duration(n)*10*time.Millisecond }

// drainTimeout bounds the wait for events still in flight after publishing.
const drainTimeout = 10 * time.Second

func randomAccountID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// fleets is every process's share of one target's connections.
type fleets struct {
	all   []fleet
	local bool
}

// each runs fn on every fleet at once and returns the first error.
func (f *fleets) each(fn func(i int, fl fleet) error) error {
	errs := make([]error, len(f.all))
	var wg sync.WaitGroup
	for i, fl := range f.all {
		wg.Go(func() { errs[i] = fn(i, fl) })
	}
	wg.Wait()
	return errors.Join(errs...)
}

// mark closes a measurement window on every process at once.
func (f *fleets) mark(ctx context.Context) (received uint64, hist *histogram, toolCPU time.Duration, err error) {
	marks := make([]markResult, len(f.all))
	err = f.each(func(i int, fl fleet) error {
		var e error
		marks[i], e = fl.mark(ctx)
		return e
	})
	hist = new(histogram)
	for _, m := range marks {
		hist.add(m.Latency)
		if !f.local {
			toolCPU += time.Duration(m.CPUNS)
		}
	}
	// A local fleet runs in this process: selfCPU already covers it.
	toolCPU += selfCPU()
	return hist.Count(), hist, toolCPU, err
}

func (f *fleets) close() {
	_ = f.each(func(_ int, fl fleet) error { fl.close(); return nil })
}

// runTarget sets up the scenario's connections to one target, measures
// idle memory, runs every publish step and collects the final counts.
func runTarget(ctx context.Context, sc *Scenario, name string, proto targetProto, urls, accounts []string, token string, pub *publisher, bus *natsProbe) (*TargetReport, error) {
	log := sc.Logger.With("target", name)
	tr := &TargetReport{Name: name, URL: strings.Join(urls, ","), Conns: sc.Conns}
	if sc.tenant() {
		tr.Accounts = len(accounts)
	}

	var pids []int
	if proto == protoGateway {
		pids = sc.ServerPIDs
	}
	srv := newServerProbe(pids, urls)
	tr.ServerPID, tr.ServerPIDs = srv.first(), srv.pids
	tr.Notes = append(tr.Notes, srv.notes...)
	before := srv.sample()
	tr.RSSBeforeBytes = before.RSS
	if bus != nil {
		tr.NATS = &NATSReport{PID: bus.pid, Note: bus.note}
		if proto == protoGateway && bus.pid != 0 && slices.Contains(srv.pids, bus.pid) {
			tr.NATS.Note = "the NATS server runs inside the gateway process (embedded): its memory is part of the server RSS above; run `ccevents serve --roles api,engine` as the bus and the gateway with --nats to see them apart"
		}
		s := bus.sample(ctx)
		tr.NATS.RSSBeforeBytes, tr.NATS.ConsumersBefore = s.RSS, s.Consumers
	}

	base := plan{Proto: proto, URLs: urls, Token: token, Accounts: accounts, Conns: sc.Conns, Hi: sc.Conns,
		Mix: sc.Mix, Tenant: sc.tenant(), Agents: sc.Agents, Wallboards: sc.Wallboards, AgentQueues: sc.AgentQueues,
		Queues: sc.Queues, Recipients: sc.Recipients, Setup: sc.SetupConcurrency}
	if proto == protoNATS {
		base.NATSAuth = &sc.PeerAuth
	}
	for _, a := range sc.SourceIPs {
		base.SourceIPs = append(base.SourceIPs, a.String())
	}
	all, err := specs(base)
	if err != nil {
		return tr, err
	}
	fl, err := startFleets(ctx, sc, base)
	if err != nil {
		return tr, err
	}
	defer fl.close()

	// Set-up: every process connects its share at once.
	log.Info("setting up connections", "conns", sc.Conns, "procs", len(fl.all))
	busy0, soft0 := machineCPU()
	srv0 := srv.sample()
	setupCtx, cancel := context.WithTimeout(ctx, setupTimeout)
	results := make([]setupResult, len(fl.all))
	err = fl.each(func(i int, f fleet) error {
		var e error
		results[i], e = f.connect(setupCtx)
		return e
	})
	cancel()
	busy1, soft1 := machineCPU()
	srv1 := srv.sample()
	var start, end int64
	var toolCPU time.Duration
	for i, r := range results {
		toolCPU += time.Duration(r.CPUNS)
		tr.Connected += r.Connected
		tr.Refused += r.Refused
		if i == 0 || r.StartNS < start {
			start = r.StartNS
		}
		end = max(end, r.EndNS)
		tr.SetupErrors = appendDistinct(tr.SetupErrors, r.Errors...)
	}
	if err != nil {
		return tr, fmt.Errorf("set up connections: %w", err)
	}
	tr.SetupSeconds = seconds(time.Duration(end - start))
	tr.SetupToolCPUSeconds = seconds(toolCPU)
	if srv.known() {
		tr.SetupServerCPUSeconds = seconds(srv1.CPU - srv0.CPU)
		tr.SetupSoftirqCPUSeconds = seconds(soft1 - soft0)
		tr.SetupOtherCPUSeconds = seconds(max(0, busy1-busy0-(srv1.CPU-srv0.CPU)-toolCPU))
	}
	if tr.SetupSeconds > 0 {
		tr.SetupPerSecond = float64(tr.Connected) / tr.SetupSeconds
	}
	log.Info("connections ready", "connected", tr.Connected, "of", sc.Conns, "seconds", tr.SetupSeconds, "per_second", math.Round(tr.SetupPerSecond))
	if tr.Connected == 0 {
		msg := "no connection could be set up"
		if len(tr.SetupErrors) > 0 {
			msg += ": " + tr.SetupErrors[0]
		}
		return tr, errors.New(msg)
	}

	// Idle memory: after a settle, and for an idle run after the hold too.
	if err := backoff.Sleep(ctx, sc.Settle); err != nil {
		return tr, err
	}
	idle := srv.sample()
	if sc.idle() {
		log.Info("holding connections idle", "for", sc.StepDuration)
		if err := backoff.Sleep(ctx, sc.StepDuration); err != nil {
			return tr, err
		}
		idle = srv.sample()
	}
	tr.RSSIdleBytes = idle.RSS
	if srv.known() && tr.Connected > 0 {
		tr.IdleBytesPerConn = float64(idle.RSS-before.RSS) / float64(tr.Connected)
		if tr.Accounts > 0 {
			tr.IdleBytesPerAccount = float64(idle.RSS-before.RSS) / float64(tr.Accounts)
		}
	}
	if bus != nil {
		s := bus.sample(ctx)
		tr.NATS.RSSIdleBytes, tr.NATS.ConsumersIdle = s.RSS, s.Consumers
	}

	var exp expected
	if !sc.idle() {
		if err := runSteps(ctx, sc, log, tr, fl, all, srv, pub, bus); err != nil {
			return tr, err
		}
		exp = pub.counts()
		tr.Published = pub.published()
		tr.PublishErrors = pub.errors.Load()
	}

	finals := make([]finalResult, len(fl.all))
	err = fl.each(func(i int, f fleet) error {
		var e error
		finals[i], e = f.finish(ctx, exp)
		return e
	})
	for _, f := range finals {
		tr.Delivered += f.Received
		tr.Drops += f.Gaps
		tr.Undelivered += f.Missing
		tr.Duplicates += f.Duplicates
		tr.Strays += f.Strays
		tr.SlowConsumerCloses += f.SlowCloses
		tr.OtherCloses += f.OtherCloses
		tr.Unparsed += f.Unparsed
		tr.Errors = appendDistinct(tr.Errors, f.Errors...)
	}
	if err != nil {
		return tr, fmt.Errorf("collect final counts: %w", err)
	}
	log.Info("target done", "delivered", tr.Delivered, "drops", tr.Drops, "slow_closes", tr.SlowConsumerCloses)
	return tr, nil
}

// runSteps publishes at each rate and measures each step.
func runSteps(ctx context.Context, sc *Scenario, log *slog.Logger, tr *TargetReport, fl *fleets, all []connSpec, srv *serverProbe, pub *publisher, bus *natsProbe) error {
	// Receivers per event of each account and entity: the account's
	// account-wide connections get all its events, others their entities'.
	wide := make([]float64, len(pub.acct))
	receivers := make([][]float64, len(pub.acct))
	for i := range receivers {
		receivers[i] = make([]float64, entities(sc.Queues, sc.Recipients))
	}
	for _, s := range all {
		ents := s.follows(sc.Queues, sc.AgentQueues)
		if ents == nil {
			wide[s.account]++
		}
		for _, k := range ents {
			receivers[s.account][k]++
		}
	}
	offered := func(c0, c1 expected) float64 {
		var n float64
		for a := range c1.Accounts {
			n += float64(c1.Accounts[a].All-c0.Accounts[a].All) * wide[a]
			for k, v := range c1.Accounts[a].Entities {
				n += float64(v-c0.Accounts[a].Entities[k]) * receivers[a][k]
			}
		}
		return n
	}
	var stepCPU, stepToolCPU time.Duration
	var stepDelivered, stepPublished uint64
	for _, rate := range sc.Rates {
		// Every step starts with a warm-up at its own rate, not measured,
		// so it reports that rate's steady state rather than the switch
		// from the previous one (the backlog a jump in rate builds while
		// the gateway's writes grow into larger batches).
		if sc.Warmup > 0 {
			log.Info("warming up", "rate", rate, "for", sc.Warmup)
			if err := pub.run(ctx, rate, sc.Warmup); err != nil {
				return fmt.Errorf("publish: %w", err)
			}
		}
		c0 := pub.counts()
		p0 := pub.published()
		_, _, tool0, err := fl.mark(ctx)
		if err != nil {
			return err
		}
		s0 := srv.sample()
		busy0, soft0 := machineCPU()
		t0 := time.Now()
		log.Info("publishing", "rate", rate, "for", sc.StepDuration)
		if err := pub.run(ctx, rate, sc.StepDuration); err != nil {
			return fmt.Errorf("publish: %w", err)
		}
		received, hist, tool1, err := fl.mark(ctx)
		if err != nil {
			return err
		}
		el := time.Since(t0)
		s1 := srv.sample()
		busy1, soft1 := machineCPU()
		c1 := pub.counts()

		st := StepReport{Rate: rate, Seconds: seconds(el), Delivered: received, Latency: hist.Summary()}
		st.Published = pub.published() - p0
		secs := el.Seconds()
		st.PublishedPerSecond = round1(float64(st.Published) / secs)
		st.OfferedPerSecond = round1(offered(c0, c1) / secs)
		st.DeliveredPerSecond = round1(float64(received) / secs)
		st.ToolCPUSeconds = seconds(tool1 - tool0)
		if srv.known() {
			st.ServerCPUSeconds = seconds(s1.CPU - s0.CPU)
			st.SoftirqCPUSeconds = seconds(soft1 - soft0)
			st.OtherCPUSeconds = seconds(max(0, busy1-busy0-(s1.CPU-s0.CPU)-(tool1-tool0)))
		}
		if received > 0 {
			st.ServerCPUPerMillion = round3(st.ServerCPUSeconds / (float64(received) / 1e6))
			st.ToolCPUPerMillion = round3(st.ToolCPUSeconds / (float64(received) / 1e6))
		}
		if st.Published > 0 {
			st.ServerCPUPerMillionEvents = round3(st.ServerCPUSeconds / (float64(st.Published) / 1e6))
		}
		stepCPU += s1.CPU - s0.CPU
		stepToolCPU += tool1 - tool0
		stepDelivered += received
		stepPublished += st.Published
		tr.Steps = append(tr.Steps, st)
		tr.PeakDeliveredPerSecond = max(tr.PeakDeliveredPerSecond, st.DeliveredPerSecond)
		log.Info("step done", "rate", rate, "delivered_per_s", st.DeliveredPerSecond, "p99_ms", st.Latency.P99)
	}
	if stepDelivered > 0 {
		if srv.known() {
			tr.ServerCPUPerMillion = round3(stepCPU.Seconds() / (float64(stepDelivered) / 1e6))
			tr.ServerCPUPerMillionEvents = round3(stepCPU.Seconds() / (float64(stepPublished) / 1e6))
		}
		tr.ToolCPUPerMillion = round3(stepToolCPU.Seconds() / (float64(stepDelivered) / 1e6))
	}
	if bus != nil {
		s := bus.sample(ctx)
		tr.NATS.RSSBusyBytes, tr.NATS.ConsumersBusy = s.RSS, s.Consumers
	}

	// Drain: wait for acknowledgements, then for deliveries to stop.
	dctx, cancel := context.WithTimeout(ctx, drainTimeout)
	defer cancel()
	pub.flush(dctx)
	quiet := 0
	for quiet < 2 && dctx.Err() == nil {
		if err := backoff.Sleep(dctx, 250*time.Millisecond); err != nil {
			break
		}
		received, _, _, err := fl.mark(ctx)
		if err != nil {
			return err
		}
		if received == 0 {
			quiet++
		} else {
			quiet = 0
		}
	}
	return ctx.Err()
}

// startFleets starts the target's connection holders: this process, or
// Procs child processes with an even share each.
func startFleets(ctx context.Context, sc *Scenario, base plan) (*fleets, error) {
	if sc.Procs <= 1 {
		g, err := newGroup(base, sc.Logger)
		if err != nil {
			return nil, err
		}
		return &fleets{all: []fleet{g}, local: true}, nil
	}
	f := &fleets{all: make([]fleet, sc.Procs)}
	err := f.each(func(i int, _ fleet) error {
		p := base
		p.Lo, p.Hi = sc.Conns*i/sc.Procs, sc.Conns*(i+1)/sc.Procs
		c, err := startChild(ctx, sc.Spawn, p)
		if err != nil {
			return err
		}
		f.all[i] = c
		return nil
	})
	if err != nil {
		for _, c := range f.all {
			if c != nil {
				c.close()
			}
		}
		return nil, err
	}
	return f, nil
}

// serverProbe reads the server processes' memory and CPU, summed, when
// they are known.
type serverProbe struct {
	pids  []int
	notes []string
}

// newServerProbe finds the process of each target: pids[i] when given,
// otherwise the one listening on the target's port.
func newServerProbe(pids []int, targets []string) *serverProbe {
	p := &serverProbe{}
	for i, target := range targets {
		pid := 0
		if i < len(pids) {
			pid = pids[i]
		}
		if pid != 0 {
			if _, err := readProc(pid); err != nil {
				p.notes = append(p.notes, fmt.Sprintf("server process %d cannot be read (%v): memory and CPU not measured", pid, err))
				return &serverProbe{notes: p.notes}
			}
		} else {
			u, err := url.Parse(target)
			if err != nil {
				return &serverProbe{notes: []string{"server process unknown: memory and CPU not measured"}}
			}
			port, _ := strconv.Atoi(u.Port())
			if pid, err = pidListeningOn(port); err != nil {
				return &serverProbe{notes: []string{fmt.Sprintf("server process of %s not found (%v): memory and CPU not measured; give its PID", target, err)}}
			}
		}
		if !slices.Contains(p.pids, pid) {
			p.pids = append(p.pids, pid)
		}
	}
	return p
}

func (p *serverProbe) known() bool { return len(p.pids) > 0 }

func (p *serverProbe) first() int {
	if len(p.pids) == 0 {
		return 0
	}
	return p.pids[0]
}

// sample adds up the processes' memory and CPU.
func (p *serverProbe) sample() procSample {
	var sum procSample
	for _, pid := range p.pids {
		s, err := readProc(pid)
		if err != nil {
			return procSample{}
		}
		sum.RSS += s.RSS
		sum.CPU += s.CPU
	}
	return sum
}

// appendDistinct appends the strings of add not yet in dst, keeping at
// most maxNotedErrors.
func appendDistinct(dst []string, add ...string) []string {
	for _, a := range add {
		if len(dst) < maxNotedErrors && !slices.Contains(dst, a) {
			dst = append(dst, a)
		}
	}
	return dst
}

func seconds(d time.Duration) float64 { return round3(d.Seconds()) }
func round1(f float64) float64        { return math.Round(f*10) / 10 }
func round3(f float64) float64        { return math.Round(f*1000) / 1000 }
