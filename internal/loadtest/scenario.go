package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"net/url"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
)

// Kind is the shape of binding a connection subscribes with.
type Kind string

// Binding kinds. For account A, queue Q and recipient R a connection binds:
//
//	KindAccount    qubicle.*.A.*          (NATS peer: qubicle.*.A.*.>)
//	KindQueue      qubicle.queue.A.Q      (NATS peer: qubicle.queue.A.Q.>)
//	KindRecipient  qubicle.recipient.A.R  (NATS peer: qubicle.recipient.A.R.>)
const (
	KindAccount   Kind = "account"
	KindQueue     Kind = "queue"
	KindRecipient Kind = "recipient"
)

var kinds = []Kind{KindAccount, KindQueue, KindRecipient}

// Mix is the share of connections per binding kind; shares sum to 1.
type Mix map[Kind]float64

// ParseMix reads "account=0.8,queue=0.1,recipient=0.1". Shares are
// normalised, so "account=8,queue=1,recipient=1" means the same.
func ParseMix(s string) (Mix, error) {
	m := Mix{}
	var sum float64
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, v, ok := strings.Cut(part, "=")
		kind := Kind(strings.TrimSpace(k))
		if !ok || !slices.Contains(kinds, kind) {
			return nil, fmt.Errorf("binding mix %q: each entry is KIND=SHARE with KIND one of account, queue, recipient (e.g. account=0.8,queue=0.1,recipient=0.1)", s)
		}
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return nil, fmt.Errorf("binding mix %q: share of %s must be a number ≥ 0, got %q", s, kind, v)
		}
		m[kind] += f
		sum += f
	}
	if sum <= 0 {
		return nil, fmt.Errorf("binding mix %q: give at least one kind a share above 0 (e.g. account=1)", s)
	}
	for k := range m {
		m[k] /= sum
	}
	return m, nil
}

// String writes the mix back as "account=0.8,queue=0.1,recipient=0.1".
func (m Mix) String() string {
	var parts []string
	for _, k := range kinds {
		if m[k] > 0 {
			parts = append(parts, string(k)+"="+strconv.FormatFloat(m[k], 'g', 4, 64))
		}
	}
	return strings.Join(parts, ",")
}

// Ramp steps the publish rate from Start to End (inclusive) by Step events/s.
type Ramp struct {
	Start, End, Step float64
}

// ParseRamp reads "start:end:step" in events per second, e.g. "200:1000:200".
func ParseRamp(s string) (Ramp, error) {
	parts := strings.Split(s, ":")
	if len(parts) != 3 {
		return Ramp{}, fmt.Errorf("ramp %q: write START:END:STEP in events/s, e.g. 200:1000:200", s)
	}
	var v [3]float64
	for i, p := range parts {
		f, err := strconv.ParseFloat(strings.TrimSpace(p), 64)
		if err != nil || f < 0 || math.IsInf(f, 0) || math.IsNaN(f) {
			return Ramp{}, fmt.Errorf("ramp %q: %q is not a rate ≥ 0", s, p)
		}
		v[i] = f
	}
	r := Ramp{Start: v[0], End: v[1], Step: v[2]}
	switch {
	case r.Start <= 0 || r.End < r.Start:
		return Ramp{}, fmt.Errorf("ramp %q: START must be above 0 and END at least START", s)
	case r.Step <= 0 && r.End > r.Start:
		return Ramp{}, fmt.Errorf("ramp %q: STEP must be above 0", s)
	case len(r.Rates()) > maxSteps:
		return Ramp{}, fmt.Errorf("ramp %q has %d steps; at most %d keep a run bounded (use a larger STEP)", s, len(r.Rates()), maxSteps)
	}
	return r, nil
}

// maxSteps bounds a ramp so a typo cannot start an hour-long run.
const maxSteps = 50

// Rates lists the rate of every step.
func (r Ramp) Rates() []float64 {
	var out []float64
	for x := r.Start; x <= r.End*(1+1e-9) && len(out) <= maxSteps; x += r.Step {
		out = append(out, x)
		if r.Step <= 0 {
			break
		}
	}
	return out
}

// ParseAddrRange reads source addresses: "127.0.0.1-127.0.0.20", a single
// address, or a comma-separated list of either. Every address must be
// 127.0.0.x.
func ParseAddrRange(s string) ([]netip.Addr, error) {
	var out []netip.Addr
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := netip.ParseAddr(strings.TrimSpace(lo))
		if err != nil || !isLoopback127(a) {
			return nil, fmt.Errorf("source address %q: only 127.0.0.x addresses may be used", strings.TrimSpace(lo))
		}
		b := a
		if isRange {
			b, err = netip.ParseAddr(strings.TrimSpace(hi))
			if err != nil || !isLoopback127(b) {
				return nil, fmt.Errorf("source address %q: only 127.0.0.x addresses may be used", strings.TrimSpace(hi))
			}
			if b.Less(a) {
				return nil, fmt.Errorf("source range %q runs backwards; write LOW-HIGH", part)
			}
		}
		for x := a; ; x = x.Next() {
			out = append(out, x)
			if x == b {
				break
			}
		}
	}
	if len(out) == 0 {
		return nil, errors.New("give at least one source address, e.g. 127.0.0.1-127.0.0.20")
	}
	return out, nil
}

func isLoopback127(a netip.Addr) bool {
	a = a.Unmap()
	if !a.Is4() {
		return false
	}
	b := a.As4()
	return b[0] == 127 && b[1] == 0 && b[2] == 0
}

// CheckLoopbackURL refuses a URL whose host is not a 127.0.0.x address (or
// "localhost", read as 127.0.0.1): the tool generates heavy load and must
// never be pointed at another machine. what names the flag in the error.
func CheckLoopbackURL(what, raw string, schemes ...string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("%s %q is not a URL; write e.g. %s://127.0.0.1:PORT", what, raw, schemes[0])
	}
	if !slices.Contains(schemes, u.Scheme) {
		return nil, fmt.Errorf("%s %q: scheme must be %s", what, raw, strings.Join(schemes, " or "))
	}
	host := u.Hostname()
	if host == "localhost" {
		host = "127.0.0.1"
		u.Host = net.JoinHostPort(host, u.Port())
	}
	a, err := netip.ParseAddr(host)
	if err != nil || !isLoopback127(a) {
		return nil, fmt.Errorf("%s %q: the load tool only targets 127.0.0.x addresses on this machine, not %q", what, raw, u.Hostname())
	}
	if u.Port() == "" {
		return nil, fmt.Errorf("%s %q: give the port, e.g. %s://127.0.0.1:PORT", what, raw, schemes[0])
	}
	return u, nil
}

// Scenario is one benchmark run. The same scenario is run against the
// gateway and, when PeerURL is set, against the NATS websocket peer.
type Scenario struct {
	// GatewayURL is the ccevents gateway (ws://127.0.0.1:5555); empty runs
	// only the peer.
	GatewayURL string
	// APIURL is the REST API used to create the bench account and its token.
	APIURL string
	// APIKey is an account's API key; the bench creates a child account of
	// it, so runs never see each other's or real traffic.
	APIKey string
	// NATSURL is where events are published (JetStream, stream QUBICLE).
	NATSURL string
	// NATSOptions are the publisher's connection options: the credential
	// of an identity that may publish events (ccevents' own), TLS.
	NATSOptions []nats.Option
	// PeerURL is nats-server's websocket listener (ws://127.0.0.1:8080);
	// empty skips the peer.
	PeerURL string
	// PeerAuth is the credential of the peer's connections.
	PeerAuth PeerAuth

	// Conns is the number of websocket connections per target.
	Conns int
	// Mix is the share of each binding kind.
	Mix Mix
	// Queues and Recipients are how many entities events are spread over
	// (round robin); per-queue and per-recipient connections bind one each.
	Queues, Recipients int
	// Rates are the publish rates in events/s, one step each; empty or a
	// single 0 holds the connections idle (memory and set-up measurements).
	Rates []float64
	// StepDuration is how long each rate is held (the idle hold when idle).
	StepDuration time.Duration
	// Warmup publishes at each step's rate before measuring the step.
	Warmup time.Duration
	// Settle is the pause between set-up and the idle RSS reading.
	Settle time.Duration
	// PayloadBytes is the approximate size of each published payload.
	PayloadBytes int
	// SourceIPs are the local addresses connections are spread over.
	SourceIPs []netip.Addr
	// Procs splits connections over this many child processes (see Spawn).
	Procs int
	// SetupConcurrency is how many connections each process sets up at once.
	SetupConcurrency int
	// ServerPID is the server process to read RSS and CPU of; 0 finds the
	// process listening on the target's port through /proc.
	ServerPID int
	// Spawn returns the command of one child process, which must call
	// ServeChild with its stdin and stdout. Required when Procs > 1.
	Spawn func(ctx context.Context) *exec.Cmd
	// Logger receives progress; nil discards it.
	Logger *slog.Logger
}

// idle reports whether the scenario publishes nothing.
func (sc *Scenario) idle() bool {
	return len(sc.Rates) == 0 || (len(sc.Rates) == 1 && sc.Rates[0] == 0)
}

// targets is how many servers the scenario measures: the gateway, the
// peer or both.
func (sc *Scenario) targets() int {
	n := 0
	for _, u := range []string{sc.GatewayURL, sc.PeerURL} {
		if u != "" {
			n++
		}
	}
	return n
}

// plannedPerTarget is how long one target's settle, warm-up and publish
// steps take (the idle hold when idle).
func (sc *Scenario) plannedPerTarget() time.Duration {
	steps := time.Duration(max(len(sc.Rates), 1))
	return sc.Settle + steps*(sc.Warmup+sc.StepDuration)
}

// MaxRunTime bounds a whole run; Validate refuses scenarios planned longer.
const MaxRunTime = 30 * time.Minute

// setupTimeout bounds the set-up of all connections of one target.
const setupTimeout = 2 * time.Minute

// Validate checks the scenario and fills defaults. Errors name the flag-level
// setting a person has to change.
func (sc *Scenario) Validate() error {
	if sc.GatewayURL == "" && sc.PeerURL == "" {
		return errors.New("nothing to measure: give the gateway URL, the peer URL or both")
	}
	if sc.GatewayURL != "" {
		if _, err := CheckLoopbackURL("gateway URL", sc.GatewayURL, "ws"); err != nil {
			return err
		}
		if _, err := CheckLoopbackURL("API URL", sc.APIURL, "http"); err != nil {
			return err
		}
		if sc.APIKey == "" {
			return errors.New("an API key is needed to create the bench account (give it, or the server's data dir holding root.json)")
		}
	}
	if sc.PeerURL != "" {
		if _, err := CheckLoopbackURL("peer URL", sc.PeerURL, "ws"); err != nil {
			return err
		}
	}
	if !sc.idle() {
		if _, err := CheckLoopbackURL("NATS URL", sc.NATSURL, "nats"); err != nil {
			return err
		}
	}
	if sc.Conns < 1 {
		return fmt.Errorf("connections must be at least 1, got %d", sc.Conns)
	}
	if sc.Mix == nil {
		sc.Mix = Mix{KindAccount: 1}
	}
	if sc.Queues < 0 || sc.Recipients < 0 || sc.Queues+sc.Recipients == 0 {
		return fmt.Errorf("events need at least one queue or recipient to be about (queues %d, recipients %d)", sc.Queues, sc.Recipients)
	}
	if sc.Mix[KindQueue] > 0 && sc.Queues == 0 {
		return errors.New("the binding mix has per-queue connections but there are 0 queues")
	}
	if sc.Mix[KindRecipient] > 0 && sc.Recipients == 0 {
		return errors.New("the binding mix has per-recipient connections but there are 0 recipients")
	}
	for _, r := range sc.Rates {
		if r < 0 || math.IsNaN(r) || math.IsInf(r, 0) {
			return fmt.Errorf("rate must be a number of events/s ≥ 0, got %g", r)
		}
	}
	if sc.StepDuration <= 0 {
		return fmt.Errorf("duration must be above 0, got %s", sc.StepDuration)
	}
	if sc.Warmup < 0 || sc.Settle < 0 {
		return errors.New("warm-up and settle times cannot be negative")
	}
	if sc.PayloadBytes < 0 || sc.PayloadBytes > 60<<10 {
		return fmt.Errorf("payload size must be between 0 and 61440 bytes, got %d", sc.PayloadBytes)
	}
	if len(sc.SourceIPs) == 0 {
		sc.SourceIPs = []netip.Addr{netip.AddrFrom4([4]byte{127, 0, 0, 1})}
	}
	for _, a := range sc.SourceIPs {
		if !isLoopback127(a) {
			return fmt.Errorf("source address %s: only 127.0.0.x addresses may be used", a)
		}
	}
	if sc.Procs < 1 {
		sc.Procs = 1
	}
	if sc.Procs > sc.Conns {
		sc.Procs = sc.Conns
	}
	if sc.Procs > 1 && sc.Spawn == nil {
		return errors.New("splitting connections over processes needs a way to start them (Spawn)")
	}
	if per := (sc.Conns + sc.Procs - 1) / sc.Procs; per > maxConnsPerProc() {
		return fmt.Errorf("%d connections per process exceed what one process may hold open here (%d); use more processes (e.g. --procs %d)",
			per, maxConnsPerProc(), (sc.Conns+maxConnsPerProc()-1)/maxConnsPerProc())
	}
	if sc.SetupConcurrency < 1 {
		sc.SetupConcurrency = 100
	}
	planned := time.Duration(sc.targets()) * sc.plannedPerTarget()
	if planned > MaxRunTime {
		return fmt.Errorf("the run is planned for %s; at most %s is allowed (shorten the duration or use fewer ramp steps)", planned.Round(time.Second), MaxRunTime)
	}
	if sc.Logger == nil {
		sc.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}
