package loadtest

import (
	"fmt"
	"io"
	"math"
	"strconv"
	"strings"
	"text/tabwriter"
)

// Report is everything one run measured. Field names in JSON carry their
// units.
type Report struct {
	Scenario ScenarioSummary `json:"scenario"`
	Gateway  *TargetReport   `json:"gateway,omitempty"`
	Peer     *TargetReport   `json:"peer,omitempty"`
	// Ratios compare the gateway with the peer (gateway ÷ peer).
	Ratios *Ratios `json:"ratios,omitempty"`
}

// ScenarioSummary restates the run's settings next to its results.
type ScenarioSummary struct {
	// Account is the bench account: the one every connection uses, or with
	// Accounts the parent of the run's accounts.
	Account      string    `json:"account_id"`
	Conns        int       `json:"conns"`
	Mix          string    `json:"bindings,omitempty"`
	Accounts     int       `json:"accounts,omitempty"`
	Agents       int       `json:"agents_per_account,omitempty"`
	Wallboards   int       `json:"wallboards_per_account,omitempty"`
	AgentQueues  int       `json:"queues_per_agent,omitempty"`
	Gateways     int       `json:"gateways,omitempty"`
	Queues       int       `json:"queues"`
	Recipients   int       `json:"recipients"`
	Rates        []float64 `json:"rates_events_per_s"`
	StepSeconds  float64   `json:"step_s"`
	Warmup       float64   `json:"warmup_s"`
	PayloadBytes int       `json:"payload_bytes"`
	SourceIPs    int       `json:"source_ips"`
	Procs        int       `json:"procs"`
}

func summarize(sc *Scenario) ScenarioSummary {
	mix := sc.Mix.String()
	if sc.tenant() {
		mix = ""
	}
	return ScenarioSummary{Conns: sc.Conns, Mix: mix, Queues: sc.Queues, Recipients: sc.Recipients,
		Accounts: sc.Accounts, Agents: sc.Agents, Wallboards: sc.Wallboards, AgentQueues: sc.AgentQueues, Gateways: len(sc.GatewayURLs),
		Rates: sc.Rates, StepSeconds: sc.StepDuration.Seconds(), Warmup: sc.Warmup.Seconds(),
		PayloadBytes: sc.PayloadBytes, SourceIPs: len(sc.SourceIPs), Procs: sc.Procs}
}

// TargetReport is what one target (gateway or peer) did.
type TargetReport struct {
	Name       string `json:"name"`
	URL        string `json:"url"`
	ServerPID  int    `json:"server_pid,omitempty"`
	ServerPIDs []int  `json:"server_pids,omitempty"` // every gateway process, when several; memory and CPU are their sum

	Conns     int `json:"conns"`
	Accounts  int `json:"accounts,omitempty"`
	Connected int `json:"connected"`
	// Refused counts subscribes answered with an error; the others that
	// did not connect got no answer or failed on the network.
	Refused        int      `json:"refused"`
	SetupSeconds   float64  `json:"setup_s"`
	SetupPerSecond float64  `json:"setup_per_s"` // authenticated and subscribed connections per second
	SetupErrors    []string `json:"setup_errors,omitempty"`
	// CPU seconds spent during set-up by the server, by the load tool and by
	// every other process of the machine (noise when it is large).
	SetupServerCPUSeconds float64 `json:"setup_server_cpu_s"`
	SetupToolCPUSeconds   float64 `json:"setup_tool_cpu_s"`
	SetupOtherCPUSeconds  float64 `json:"setup_other_cpu_s"`
	// SetupSoftirqCPUSeconds is the machine's kernel softirq time (mostly
	// loopback TCP); the kernel charges most of it to the interrupted
	// process as well, so it overlaps the figures above.
	SetupSoftirqCPUSeconds float64 `json:"setup_softirq_cpu_s"`

	RSSBeforeBytes   int64   `json:"rss_before_bytes,omitempty"`
	RSSIdleBytes     int64   `json:"rss_idle_bytes,omitempty"`
	IdleBytesPerConn float64 `json:"idle_bytes_per_conn,omitempty"` // server RSS delta ÷ connections
	// IdleBytesPerAccount is the same delta ÷ accounts (multi-tenant runs):
	// what an account costs with its connections.
	IdleBytesPerAccount float64 `json:"idle_bytes_per_account,omitempty"`
	// NATS is the bus: its consumers and, when it is a process of its own,
	// its memory, before set-up, with idle connections and after the steps.
	NATS *NATSReport `json:"nats,omitempty"`

	Steps                  []StepReport `json:"steps,omitempty"`
	PeakDeliveredPerSecond float64      `json:"peak_delivered_per_s,omitempty"`
	ServerCPUPerMillion    float64      `json:"server_cpu_s_per_million,omitempty"`
	// ServerCPUPerMillionEvents is server CPU per million events published,
	// whatever the number of connections each reached.
	ServerCPUPerMillionEvents float64 `json:"server_cpu_s_per_million_events,omitempty"`
	ToolCPUPerMillion         float64 `json:"tool_cpu_s_per_million,omitempty"`

	Published     uint64 `json:"published"`
	PublishErrors uint64 `json:"publish_errors"`
	Delivered     uint64 `json:"delivered"` // including warm-up and drain
	// Drops are sequence gaps: events a connection never got although it
	// got later ones of the same stream.
	Drops uint64 `json:"drops"`
	// Undelivered counts events still owed to open connections when the
	// run ended (after a drain of up to 10 s): a backlog, not yet a loss.
	Undelivered uint64 `json:"undelivered"`
	Duplicates  uint64 `json:"duplicates"`
	// Strays are events a connection received for a stream it did not
	// subscribe to: another account's, or another entity's.
	Strays             uint64   `json:"strays"`
	SlowConsumerCloses uint64   `json:"slow_consumer_closes"`
	OtherCloses        uint64   `json:"other_closes"`
	Unparsed           uint64   `json:"unparsed"`
	Errors             []string `json:"errors,omitempty"`
	Notes              []string `json:"notes,omitempty"`
}

// StepReport is one publish rate held for one step.
type StepReport struct {
	Rate               float64 `json:"rate_events_per_s"`
	Seconds            float64 `json:"seconds"`
	Published          uint64  `json:"published"`
	PublishedPerSecond float64 `json:"published_per_s"`
	// OfferedPerSecond is the deliveries per second the published events
	// call for: each event times the connections bound to it.
	OfferedPerSecond   float64 `json:"offered_per_s"`
	Delivered          uint64  `json:"delivered"`
	DeliveredPerSecond float64 `json:"delivered_per_s"`
	Latency            Latency `json:"latency"`
	ServerCPUSeconds   float64 `json:"server_cpu_s"`
	ToolCPUSeconds     float64 `json:"tool_cpu_s"`
	// SoftirqCPUSeconds is the machine's kernel softirq time meanwhile
	// (mostly the run's own loopback TCP); the kernel charges most of it to
	// the interrupted process too, so it overlaps the server and tool times.
	SoftirqCPUSeconds float64 `json:"softirq_cpu_s"`
	// OtherCPUSeconds is what other processes used meanwhile; more than a
	// few percent of a core means the step shared the CPUs.
	OtherCPUSeconds     float64 `json:"other_cpu_s"`
	ServerCPUPerMillion float64 `json:"server_cpu_s_per_million"`
	// ServerCPUPerMillionEvents is server CPU per million events published.
	ServerCPUPerMillionEvents float64 `json:"server_cpu_s_per_million_events"`
	ToolCPUPerMillion         float64 `json:"tool_cpu_s_per_million"`
}

// NATSReport is what the bus held during one target's run.
type NATSReport struct {
	PID  int    `json:"pid,omitempty"`
	Note string `json:"note,omitempty"`
	// Memory of the NATS server process (0: unknown).
	RSSBeforeBytes int64 `json:"rss_before_bytes,omitempty"`
	RSSIdleBytes   int64 `json:"rss_idle_bytes,omitempty"`
	RSSBusyBytes   int64 `json:"rss_after_steps_bytes,omitempty"`
	// Consumers on the event stream (-1: could not be read).
	ConsumersBefore int `json:"consumers_before"`
	ConsumersIdle   int `json:"consumers_idle"`
	ConsumersBusy   int `json:"consumers_after_steps"`
}

// Ratios are gateway ÷ peer. Above 1 is better for rates; below 1 is better
// for latency, memory and CPU. Zero means one side was not measured.
type Ratios struct {
	PeakDelivered       float64   `json:"peak_delivered"`
	SetupRate           float64   `json:"setup_rate"`
	IdleBytesPerConn    float64   `json:"idle_bytes_per_conn"`
	ServerCPUPerMillion float64   `json:"server_cpu_per_million"`
	P99                 []float64 `json:"p99_per_step,omitempty"`
}

func ratio(a, b float64) float64 {
	if a == 0 || b == 0 || math.IsNaN(a/b) {
		return 0
	}
	return math.Round(a/b*100) / 100
}

func ratios(g, p *TargetReport) *Ratios {
	r := &Ratios{
		PeakDelivered:       ratio(g.PeakDeliveredPerSecond, p.PeakDeliveredPerSecond),
		SetupRate:           ratio(g.SetupPerSecond, p.SetupPerSecond),
		IdleBytesPerConn:    ratio(g.IdleBytesPerConn, p.IdleBytesPerConn),
		ServerCPUPerMillion: ratio(g.ServerCPUPerMillion, p.ServerCPUPerMillion),
	}
	for i := range min(len(g.Steps), len(p.Steps)) {
		r.P99 = append(r.P99, ratio(g.Steps[i].Latency.P99, p.Steps[i].Latency.P99))
	}
	return r
}

// WriteTable writes the report for people: one block per target and the
// ratios.
func (r *Report) WriteTable(w io.Writer) error {
	s := r.Scenario
	rates := make([]string, len(s.Rates))
	for i, x := range s.Rates {
		rates[i] = count(x)
	}
	rateText := "idle (no events)"
	if len(rates) > 0 && !(len(rates) == 1 && s.Rates[0] == 0) {
		rateText = strings.Join(rates, ", ") + " events/s, " + strconv.FormatFloat(s.StepSeconds, 'g', -1, 64) + " s each"
	}
	shape := s.Mix
	if s.Accounts > 0 {
		shape = fmt.Sprintf("%s accounts × (%d agents serving %d of %d queues + %d wallboards)", count(float64(s.Accounts)), s.Agents, s.AgentQueues, s.Queues, s.Wallboards)
		if s.Gateways > 1 {
			shape += fmt.Sprintf(" over %d gateways", s.Gateways)
		}
	}
	fmt.Fprintf(w, "ccevents bench: %s connections (%s) over %d source addresses, %d process(es); %s; payload ~%d B\n",
		count(float64(s.Conns)), shape, s.SourceIPs, s.Procs, rateText, s.PayloadBytes)

	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	targets := []*TargetReport{r.Gateway, r.Peer}
	fmt.Fprintln(tw, "\ntarget\tconnected\trefused\tset-up/s\tRSS/idle conn\tdelivered\tdrops\tundelivered\tdups\tstrays\tslow closes\tother closes\tpublish errs\t")
	for _, t := range targets {
		if t == nil {
			continue
		}
		fmt.Fprintf(tw, "%s\t%d/%d\t%d\t%s\t%s\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t\n", t.Name, t.Connected, t.Conns, t.Refused, count(t.SetupPerSecond),
			kib(t.IdleBytesPerConn, t.ServerPID != 0), t.Delivered, t.Drops, t.Undelivered, t.Duplicates, t.Strays, t.SlowConsumerCloses, t.OtherCloses, t.PublishErrors)
	}
	hasSteps := (r.Gateway != nil && len(r.Gateway.Steps) > 0) || (r.Peer != nil && len(r.Peer.Steps) > 0)
	if hasSteps {
		fmt.Fprintln(tw, "\ntarget\trate ev/s\toffered/s\tdelivered/s\tp50 ms\tp90 ms\tp99 ms\tp99.9 ms\tmax ms\tserver CPU s/M\ts/M events\ttool CPU s/M\t")
		for _, t := range targets {
			if t == nil {
				continue
			}
			for _, st := range t.Steps {
				l := st.Latency
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\t\n", t.Name, count(st.Rate), count(st.OfferedPerSecond),
					count(st.DeliveredPerSecond), msText(l.P50), msText(l.P90), msText(l.P99), msText(l.P999), msText(l.Max),
					cpuText(st.ServerCPUPerMillion, t.ServerPID != 0), cpuText(st.ServerCPUPerMillionEvents, t.ServerPID != 0), cpuText(st.ToolCPUPerMillion, true))
			}
		}
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, t := range targets {
		if t == nil {
			continue
		}
		if t.ServerPID != 0 {
			pids := strconv.Itoa(t.ServerPID)
			if len(t.ServerPIDs) > 1 {
				pids = fmt.Sprint(t.ServerPIDs) + " (summed)"
			}
			fmt.Fprintf(w, "%s: server pid %s, RSS %s before, %s with idle connections", t.Name, pids, mib(t.RSSBeforeBytes), mib(t.RSSIdleBytes))
			if len(t.Steps) > 0 {
				fmt.Fprintf(w, "; peak %s deliveries/s; server CPU %s s per million deliveries, %s per million events",
					count(t.PeakDeliveredPerSecond), cpuText(t.ServerCPUPerMillion, true), cpuText(t.ServerCPUPerMillionEvents, true))
			}
			fmt.Fprintln(w)
			if t.Accounts > 0 {
				fmt.Fprintf(w, "%s: %s accounts: RSS %s per account with its connections, %s per connection\n",
					t.Name, count(float64(t.Accounts)), kib(t.IdleBytesPerAccount, true), kib(t.IdleBytesPerConn, true))
			}
		}
		if n := t.NATS; n != nil {
			fmt.Fprintf(w, "%s: NATS: consumers on QUBICLE %s before set-up, %s with idle connections", t.Name, consumersText(n.ConsumersBefore), consumersText(n.ConsumersIdle))
			if len(t.Steps) > 0 {
				fmt.Fprintf(w, ", %s after the steps", consumersText(n.ConsumersBusy))
			}
			if n.RSSBeforeBytes > 0 {
				fmt.Fprintf(w, "; server pid %d RSS %s before, %s idle", n.PID, mib(n.RSSBeforeBytes), mib(n.RSSIdleBytes))
				if len(t.Steps) > 0 {
					fmt.Fprintf(w, ", %s after the steps", mib(n.RSSBusyBytes))
				}
			}
			fmt.Fprintln(w)
			if n.Note != "" {
				fmt.Fprintf(w, "%s: note: %s\n", t.Name, n.Note)
			}
		}
		if t.ServerPID != 0 && t.SetupSeconds > 0 {
			fmt.Fprintf(w, "%s: set-up used %.2f CPU-s in the server, %.2f in the tool (%.2f of the machine's in kernel softirq), %.2f in other processes\n",
				t.Name, t.SetupServerCPUSeconds, t.SetupToolCPUSeconds, t.SetupSoftirqCPUSeconds, t.SetupOtherCPUSeconds)
		}
		for _, st := range t.Steps {
			if st.Seconds > 0 && st.OtherCPUSeconds/st.Seconds > 0.1 {
				fmt.Fprintf(w, "%s: warning: other processes used %.0f%% of a core during the %s events/s step; the machine was shared\n",
					t.Name, 100*st.OtherCPUSeconds/st.Seconds, count(st.Rate))
			}
		}
		for _, e := range t.SetupErrors {
			fmt.Fprintf(w, "%s: set-up error: %s\n", t.Name, e)
		}
		for _, e := range t.Errors {
			fmt.Fprintf(w, "%s: error: %s\n", t.Name, e)
		}
		for _, n := range t.Notes {
			fmt.Fprintf(w, "%s: note: %s\n", t.Name, n)
		}
		if t.Strays > 0 {
			fmt.Fprintf(w, "%s: %d events reached a connection that had not subscribed to them\n", t.Name, t.Strays)
		}
		if t.Unparsed > 0 {
			fmt.Fprintf(w, "%s: %d events had a bench stamp the tool could not read\n", t.Name, t.Unparsed)
		}
	}
	if q := r.Ratios; q != nil {
		fmt.Fprintf(w, "\ngateway ÷ peer: peak deliveries/s %s, set-up rate %s, RSS per idle conn %s, server CPU per delivery %s",
			times(q.PeakDelivered), times(q.SetupRate), times(q.IdleBytesPerConn), times(q.ServerCPUPerMillion))
		if len(q.P99) > 0 {
			p := make([]string, len(q.P99))
			for i, x := range q.P99 {
				p[i] = times(x)
			}
			fmt.Fprintf(w, ", p99 latency per step %s", strings.Join(p, " "))
		}
		fmt.Fprintln(w)
	}
	return nil
}

func times(x float64) string {
	if x == 0 {
		return "–"
	}
	return strconv.FormatFloat(x, 'f', 2, 64) + "×"
}

// count writes 1234567 as 1,234,567.
func count(f float64) string {
	n := int64(math.Round(f))
	s := strconv.FormatInt(n, 10)
	if n < 0 {
		return s
	}
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

func kib(b float64, known bool) string {
	if !known {
		return "?"
	}
	return strconv.FormatFloat(b/1024, 'f', 1, 64) + " KiB"
}

func mib(b int64) string { return strconv.FormatFloat(float64(b)/(1<<20), 'f', 1, 64) + " MiB" }

func msText(v float64) string {
	switch {
	case v >= 100:
		return strconv.FormatFloat(v, 'f', 0, 64)
	case v >= 10:
		return strconv.FormatFloat(v, 'f', 1, 64)
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func cpuText(v float64, known bool) string {
	if !known {
		return "?"
	}
	return strconv.FormatFloat(v, 'f', 2, 64)
}

func consumersText(n int) string {
	if n < 0 {
		return "?"
	}
	return strconv.Itoa(n)
}
