package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"time"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/lease"
	"github.com/ccevents/ccevents/internal/sipstore"
	"github.com/ccevents/ccevents/internal/socketlist"
)

func newDoctorCommand(stdout, stderr io.Writer) *ffcli.Command {
	fs := flag.NewFlagSet("ccevents doctor", flag.ContinueOnError)
	var nf toolNATSFlags
	nf.register(fs, "NATS URLs of the cluster, or of a ccevents serve started with --nats-listen",
		"data dir of a ccevents serve with --nats-listen: its NATS credentials (nats/ccevents.nk), used when no credential flag is given")
	timeout := fs.Duration("timeout", 20*time.Second, "how long to wait for NATS")
	fs.String("config", "", "the config file of `ccevents serve`; doctor reads the NATS settings from it")
	return &ffcli.Command{
		Name:       "doctor",
		ShortUsage: "ccevents doctor [--nats URL,…] [--data-dir DIR | --nats-creds FILE …] [--config FILE]",
		ShortHelp:  "check that every NATS server holds a current copy of every stream and bucket",
		LongHelp: "Reads, from the leader of each, how the event stream and every ccevents\n" +
			"key-value bucket are replicated, and says which copies are missing, offline\n" +
			"or behind. A NATS server that restarted after a crash may have dropped its\n" +
			"copies while its health check still says ok; this is how to see it.\n" +
			"Exits 0 when every configured copy is current, 1 otherwise.\n\n" +
			"Give it the same NATS settings as serve: flags, CCEVENTS_* variables or --config.",
		FlagSet: fs,
		Options: []ff.Option{ff.WithEnvVarPrefix("CCEVENTS"), ff.WithConfigFileFlag("config"), ff.WithConfigFileParser(ff.PlainParser), ff.WithIgnoreUndefined(true)},
		Exec: flagsOnly("doctor", "", func(ctx context.Context) error {
			opts, credErr := nf.toolOptions(nf.URLs, nf.DataDir)
			if credErr != nil {
				if nf.given() {
					return credErr
				}
				// No credential anywhere: a cluster without authorization
				// takes the connection; one with it refuses, and credErr
				// says what to give.
				opts = nil
			}
			ctx, cancel := context.WithTimeout(ctx, *timeout)
			defer cancel()
			b, err := bus.Open(ctx, bus.Config{URLs: nf.URLs, Name: "ccevents-doctor", UseExistingStream: true,
				ConnectOptions: opts, Logger: slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
			if err != nil && credErr != nil {
				return fmt.Errorf("%w (%v)", err, credErr)
			}
			if err != nil {
				return err
			}
			defer b.Close()
			report, err := b.Replicas(ctx, doctorBuckets...)
			if err != nil {
				return err
			}
			fmt.Fprintf(stdout, "NATS %s, nats-server %s\n\n", b.Conn().ConnectedUrlRedacted(), b.Conn().ConnectedServerVersion())
			problems := printReplicas(stdout, report)
			if len(problems) > 0 {
				fmt.Fprintln(stdout)
				for _, p := range problems {
					fmt.Fprintln(stdout, "problem: "+p)
				}
				return fmt.Errorf("%d problem(s) with the copies of ccevents' streams and buckets (see above)", len(problems))
			}
			fmt.Fprintln(stdout, "\nok: every stream and bucket has all its copies current")
			return nil
		}),
	}
}

// doctorBuckets are the key-value buckets ccevents keeps, those a
// deployment has not created left out of the report.
var doctorBuckets = []string{authBucket, engine.Bucket, lease.Bucket, sipstore.Bucket, socketlist.RegistryBucket}

// printReplicas writes one line per stream or bucket and returns the
// problems found.
func printReplicas(w io.Writer, report []bus.AssetReplicas) []string {
	var problems []string
	for _, a := range report {
		kind := "stream"
		if a.Bucket {
			kind = "bucket"
		}
		var copies string
		switch {
		case a.Err != nil:
			copies = "could not be read"
		case !a.Clustered:
			copies = "single server, not clustered"
		default:
			parts := []string{"leader " + orNone(a.Leader)}
			for _, p := range a.Peers {
				state := "current"
				switch {
				case p.Offline:
					state = "OFFLINE"
				case !p.Current:
					state = fmt.Sprintf("BEHIND by %d", p.Lag)
				}
				parts = append(parts, p.Name+" "+state)
			}
			copies = strings.Join(parts, ", ")
		}
		count := fmt.Sprintf("%d/%d", a.Current(), a.Replicas)
		if a.Err != nil {
			count = "?/?"
		}
		fmt.Fprintf(w, "%-6s %-22s %s current  %s\n", kind, a.Name, count, copies)
		problems = append(problems, a.Problems()...)
	}
	return problems
}

func orNone(s string) string {
	if s == "" {
		return "NONE"
	}
	return s
}

// replicaWatch reads the replica report every interval, keeps it for
// /metrics (ccevents_bus_replicas, ccevents_bus_replicas_current) and
// logs a warning when a problem appears and when it is gone.
type replicaWatch struct {
	b        *bus.Bus
	log      *slog.Logger
	total    *prometheus.Desc
	current  *prometheus.Desc
	mu       sync.Mutex
	last     []bus.AssetReplicas
	problems string
}

func newReplicaWatch(b *bus.Bus, log *slog.Logger) *replicaWatch {
	return &replicaWatch{
		b: b, log: log,
		total:   prometheus.NewDesc("ccevents_bus_replicas", "Copies each ccevents stream or bucket is configured to have (checked every 30 s).", []string{"asset"}, nil),
		current: prometheus.NewDesc("ccevents_bus_replicas_current", "Copies of each ccevents stream or bucket that are current, its leader included; below ccevents_bus_replicas means a NATS server lost or is rebuilding its copy (ccevents doctor says which).", []string{"asset"}, nil),
	}
}

func (r *replicaWatch) run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		r.check(ctx)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (r *replicaWatch) check(ctx context.Context) {
	report, err := r.b.Replicas(ctx)
	if err != nil {
		if ctx.Err() == nil {
			r.log.Warn("could not read how the streams and buckets are replicated", "err", err)
		}
		return
	}
	var problems []string
	for _, a := range report {
		problems = append(problems, a.Problems()...)
	}
	now := strings.Join(problems, "; ")
	r.mu.Lock()
	before := r.problems
	r.last, r.problems = report, now
	r.mu.Unlock()
	switch {
	case now != "" && now != before:
		r.log.Warn("not every NATS server holds a current copy of ccevents' streams and buckets; run ccevents doctor", "problems", now)
	case now == "" && before != "":
		r.log.Info("every copy of ccevents' streams and buckets is current again")
	}
}

func (r *replicaWatch) Describe(ch chan<- *prometheus.Desc) {
	ch <- r.total
	ch <- r.current
}

func (r *replicaWatch) Collect(ch chan<- prometheus.Metric) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, a := range r.last {
		ch <- prometheus.MustNewConstMetric(r.total, prometheus.GaugeValue, float64(a.Replicas), a.Name)
		ch <- prometheus.MustNewConstMetric(r.current, prometheus.GaugeValue, float64(a.Current()), a.Name)
	}
}
