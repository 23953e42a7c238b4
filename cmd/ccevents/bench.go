package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ccevents/ccevents/internal/loadtest"
)

// benchChildEnv marks a process started by `ccevents bench --procs N` as one
// of its connection holders; it is not meant to be set by people.
const benchChildEnv = "CCEVENTS_BENCH_CHILD"

// benchConfig is every setting of `ccevents bench`.
type benchConfig struct {
	WSURLs                                    stringList
	APIURL, APIKey, DataDir, NATS, Peer       string
	PeerOnly                                  bool
	Conns, Queues, Recipients, PayloadBytes   int
	Accounts, Agents, Wallboards, AgentQueues int
	Bindings, Ramp, SourceIPs                 string
	Rate                                      float64
	Duration, Warmup, Settle                  time.Duration
	Procs, SetupConcurrency, NATSPID          int
	ServerPIDs                                stringList
	JSON                                      bool
	rateSet, queuesSet                        bool
	NATSClient                                natsClientFlags
}

func (c *benchConfig) register(fs *flag.FlagSet) {
	c.WSURLs = stringList{"ws://127.0.0.1:5555"}
	fs.Var(&c.WSURLs, "ws-url", "the ccevents gateway to measure; several (comma-separated) share the accounts of a multi-tenant run, each account on one")
	fs.StringVar(&c.APIURL, "api-url", "http://127.0.0.1:8000", "the REST API, used to create the bench account and its token")
	fs.StringVar(&c.APIKey, "api-key", "", "API key of an account to create the bench account under (default: the root key in --data-dir/root.json)")
	fs.StringVar(&c.DataDir, "data-dir", "ccevents-data", "data dir of the running `ccevents serve`, to read root.json when --api-key is empty")
	fs.StringVar(&c.NATS, "nats", "nats://127.0.0.1:4222", "NATS of the running ccevents (serve --nats-listen); events are published there with JetStream, and the stream's consumers counted, as ccevents' own identity, from --data-dir unless a --nats-* credential is given")
	fs.StringVar(&c.Peer, "peer", "", "nats-server websocket listener to run the same scenario against (e.g. ws://127.0.0.1:8080 from `ccevents serve --nats-ws-listen 127.0.0.1:8080`)")
	fs.BoolVar(&c.PeerOnly, "peer-only", false, "measure only the --peer, not the gateway")
	fs.IntVar(&c.Conns, "conns", 1000, "websocket connections per target")
	fs.StringVar(&c.Bindings, "bindings", "account=1", "share of connections per binding kind: account (qubicle.*.A.*), queue (qubicle.queue.A.Q), recipient (qubicle.recipient.A.R)")
	fs.IntVar(&c.Queues, "queues", 10, "queues events are spread over (round robin with the recipients); with --accounts, queues per account (default 3)")
	fs.IntVar(&c.Recipients, "recipients", 10, "recipients events are spread over")
	fs.IntVar(&c.Accounts, "accounts", 0, "multi-tenant run: this many accounts, each with --agents and --wallboards connections, events in the demo's mix (replaces --conns and --bindings)")
	fs.IntVar(&c.Agents, "agents", 2, "with --accounts: agent connections per account, each bound to its own recipient and the queues it serves")
	fs.IntVar(&c.Wallboards, "wallboards", 1, "with --accounts: wallboard connections per account, bound account-wide")
	fs.IntVar(&c.AgentQueues, "agent-queues", 2, "with --accounts: queues each agent serves")
	fs.Float64Var(&c.Rate, "rate", 1000, "events published per second (0 holds the connections idle: set-up and memory only)")
	fs.StringVar(&c.Ramp, "ramp", "", "step the rate instead: START:END:STEP events/s, each step lasting --duration")
	fs.DurationVar(&c.Duration, "duration", 10*time.Second, "how long each rate is held (the idle hold when --rate 0)")
	fs.DurationVar(&c.Warmup, "warmup", 2*time.Second, "publishing at each step's rate before measuring the step")
	fs.DurationVar(&c.Settle, "settle", 2*time.Second, "pause after set-up before the idle memory reading")
	fs.IntVar(&c.PayloadBytes, "payload-bytes", 300, "approximate size of each published payload")
	fs.StringVar(&c.SourceIPs, "source-ips", "127.0.0.1-127.0.0.20", "local 127.0.0.x addresses connections are spread over (LOW-HIGH or a list)")
	fs.IntVar(&c.Procs, "procs", 1, "split connections over this many child processes (one process here may hold ~19,900 open files)")
	fs.IntVar(&c.SetupConcurrency, "setup-concurrency", 100, "connections each process sets up at once")
	fs.Var(&c.ServerPIDs, "server-pid", "processes to read server memory and CPU from, one per --ws-url (default: the one listening on each target's port)")
	fs.IntVar(&c.NATSPID, "nats-pid", 0, "NATS server process to read memory from (default: the one listening on --nats's port)")
	fs.BoolVar(&c.JSON, "json", false, "print the report as JSON instead of a table")
	c.NATSClient.register(fs)
}

// scenario turns the flags into a load test scenario, reading the API key
// from root.json when it was not given; spawn starts the child processes
// of --procs.
func (c *benchConfig) scenario(spawn func(context.Context) *exec.Cmd) (loadtest.Scenario, error) {
	var sc loadtest.Scenario
	mix, err := loadtest.ParseMix(c.Bindings)
	if err != nil {
		return sc, fmt.Errorf("--bindings: %w", err)
	}
	ips, err := loadtest.ParseAddrRange(c.SourceIPs)
	if err != nil {
		return sc, fmt.Errorf("--source-ips: %w", err)
	}
	rates := []float64{c.Rate}
	if c.Ramp != "" {
		if c.rateSet {
			return sc, errors.New("give either --rate or --ramp, not both")
		}
		r, err := loadtest.ParseRamp(c.Ramp)
		if err != nil {
			return sc, fmt.Errorf("--ramp: %w", err)
		}
		rates = r.Rates()
	}
	if c.PeerOnly && c.Peer == "" {
		return sc, errors.New("--peer-only needs --peer ws://127.0.0.1:PORT")
	}
	var pids []int
	for _, p := range c.ServerPIDs {
		n, err := strconv.Atoi(p)
		if err != nil || n <= 0 {
			return sc, fmt.Errorf("--server-pid: %q is not a process id", p)
		}
		pids = append(pids, n)
	}
	sc = loadtest.Scenario{
		APIURL: c.APIURL, NATSURL: c.NATS, PeerURL: c.Peer,
		Conns: c.Conns, Mix: mix, Queues: c.Queues, Recipients: c.Recipients,
		Rates: rates, StepDuration: c.Duration, Warmup: c.Warmup, Settle: c.Settle,
		PayloadBytes: c.PayloadBytes, SourceIPs: ips, Procs: c.Procs,
		SetupConcurrency: c.SetupConcurrency, ServerPIDs: pids, NATSServerPID: c.NATSPID, Spawn: spawn,
	}
	if c.Accounts > 0 {
		sc.Accounts, sc.Agents, sc.Wallboards, sc.AgentQueues = c.Accounts, c.Agents, c.Wallboards, c.AgentQueues
		if !c.queuesSet {
			sc.Queues = 3
		}
		sc.AgentQueues = min(sc.AgentQueues, sc.Queues)
	}
	if !c.PeerOnly {
		sc.GatewayURLs = c.WSURLs
		sc.APIKey = c.APIKey
		if sc.APIKey == "" {
			if sc.APIKey, err = rootAPIKey(c.DataDir); err != nil {
				return sc, err
			}
		}
	}
	// Where it connects is checked before who it connects as.
	if err := sc.Validate(); err != nil {
		return sc, err
	}
	// An idle run needs NATS only to count the stream's consumers, which
	// it does without when it cannot sign in.
	needsNATS := slices.ContainsFunc(rates, func(r float64) bool { return r != 0 }) || c.Peer != ""
	if sc.NATSOptions, err = c.NATSClient.toolOptions([]string{c.NATS}, c.DataDir); err != nil && needsNATS {
		return sc, err
	}
	if c.Peer != "" {
		if sc.PeerAuth, err = c.peerAuth(); err != nil {
			return sc, err
		}
	}
	return sc, nil
}

// peerAuth is the credential the peer's raw NATS connections present: the
// same identity the events are published with.
func (c *benchConfig) peerAuth() (loadtest.PeerAuth, error) {
	switch f := c.NATSClient; {
	case f.Nkey != "":
		seed, err := os.ReadFile(f.Nkey)
		if err != nil {
			return loadtest.PeerAuth{}, fmt.Errorf("--nats-nkey: %w", err)
		}
		return loadtest.PeerAuth{NkeySeed: strings.TrimSpace(string(seed))}, nil
	case f.User != "":
		return loadtest.PeerAuth{User: f.User, Password: f.Password}, nil
	case f.Creds != "":
		return loadtest.PeerAuth{}, errors.New("--peer connections sign in with --nats-nkey or --nats-user; a --nats-creds file is not supported for them")
	}
	return loadtest.PeerAuth{}, nil
}

// rootAPIKey reads the root account's API key that `ccevents serve` wrote.
func rootAPIKey(dataDir string) (string, error) {
	path := filepath.Join(dataDir, "root.json")
	raw, err := os.ReadFile(path)
	if err != nil {
		return "", fmt.Errorf("no --api-key given and %s cannot be read (%v); give --api-key or the server's --data-dir", path, errors.Unwrap(err))
	}
	var root struct {
		APIKey string `json:"api_key"`
	}
	if err := json.Unmarshal(raw, &root); err != nil || root.APIKey == "" {
		return "", fmt.Errorf("%s has no api_key; give --api-key", path)
	}
	return root.APIKey, nil
}

func newBenchCommand(stdout, stderr io.Writer) *ffcli.Command {
	var cfg benchConfig
	fs := flag.NewFlagSet("ccevents bench", flag.ContinueOnError)
	cfg.register(fs)
	return &ffcli.Command{
		Name:       "bench",
		ShortUsage: "ccevents bench [flags]",
		ShortHelp:  "measure the gateway (and the raw NATS websocket peer) under load",
		LongHelp: "Opens --conns websocket connections to the gateway (and then to --peer), subscribes\n" +
			"them with the --bindings mix, publishes events on NATS at --rate (or --ramp) and\n" +
			"reports deliveries/s, latency p50..max, set-up rate, server RSS per idle connection,\n" +
			"CPU per million deliveries, drops and slow-consumer closes. Targets must be 127.0.0.x;\n" +
			"every run stops by itself. See docs/performance.md.\n\n" +
			"With --accounts N it runs many tenants instead: N accounts, each with --agents agent\n" +
			"connections and --wallboards wallboards, events in the demo's mix; it adds the cost\n" +
			"per account and per event, and the NATS server's consumers and memory.\n\n" +
			"Example: ccevents bench --conns 1000 --rate 1000 --peer ws://127.0.0.1:8080 --procs 2\n" +
			"         ccevents bench --accounts 10000 --agents 1 --wallboards 0 --rate 5000 --procs 2",
		FlagSet: fs,
		Options: []ff.Option{ff.WithEnvVarPrefix("CCEVENTS")},
		Exec: flagsOnly("bench", "flags go before, e.g. --conns 100", func(ctx context.Context) error {
			if os.Getenv(benchChildEnv) == "1" {
				return loadtest.ServeChild(ctx, os.Stdin, stdout, slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelWarn})))
			}
			fs.Visit(func(f *flag.Flag) {
				cfg.rateSet = cfg.rateSet || f.Name == "rate"
				cfg.queuesSet = cfg.queuesSet || f.Name == "queues"
			})
			sc, err := cfg.scenario(func(ctx context.Context) *exec.Cmd {
				exe, err := os.Executable()
				if err != nil {
					exe = os.Args[0]
				}
				cmd := exec.CommandContext(ctx, exe, "bench")
				cmd.Env = append(os.Environ(), benchChildEnv+"=1")
				cmd.Stderr = stderr
				return cmd
			})
			if err != nil {
				return err
			}
			sc.Logger = slog.New(slog.NewTextHandler(stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))
			rep, runErr := loadtest.Run(ctx, sc)
			if rep != nil {
				if err := writeBenchReport(stdout, rep, cfg.JSON); err != nil {
					return err
				}
			}
			return runErr
		}),
	}
}

func writeBenchReport(w io.Writer, rep *loadtest.Report, asJSON bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(rep)
	}
	return rep.WriteTable(w)
}
