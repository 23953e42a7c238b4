package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ccevents/ccevents/internal/sim"
)

func newSimulateCommand(stdout, stderr io.Writer) *ffcli.Command {
	fs := flag.NewFlagSet("ccevents simulate", flag.ContinueOnError)
	apiURL := fs.String("api-url", "http://127.0.0.1:8000", "REST API of the running ccevents")
	apiKey := fs.String("api-key", "", "API key of the account to fill with traffic (or --token)")
	token := fs.String("token", "", "auth token, instead of --api-key")
	account := fs.String("account", "", "account to simulate in (default: the API key's account)")
	rate := fs.Float64("rate", sim.DefaultRate, "call arrivals per minute (Poisson)")
	setup := fs.Bool("setup", true, "create the demo queues and recipients first (skips those that exist)")
	duration := fs.Duration("duration", 0, "stop after this long; 0 runs until interrupted")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn or error")
	return &ffcli.Command{
		Name:       "simulate",
		ShortUsage: "ccevents simulate --api-key KEY [--rate 6] [--duration 10m]",
		ShortHelp:  "drive simulated call traffic into a running ccevents over its REST API",
		LongHelp: "Creates the demo queues and recipients in an account (unless --setup=false) and\n" +
			"simulates Poisson call arrivals, agents answering, rejecting, going away,\n" +
			"external calls and wiretaps through the REST API, like a telephony adapter.",
		FlagSet: fs,
		Options: []ff.Option{ff.WithEnvVarPrefix("CCEVENTS")},
		Exec: flagsOnly("simulate", "", func(ctx context.Context) error {
			if *apiKey == "" && *token == "" {
				return errors.New("--api-key or --token is required (the root key is in DATA_DIR/root.json)")
			}
			if *rate <= 0 {
				return fmt.Errorf("--rate must be above 0 calls per minute, got %g", *rate)
			}
			log, err := newLogger(stderr, *logLevel, "text")
			if err != nil {
				return err
			}
			d, err := sim.NewRESTDriver(ctx, sim.RESTConfig{BaseURL: *apiURL, APIKey: *apiKey, Token: *token})
			if err != nil {
				return err
			}
			acc := *account
			if acc == "" {
				acc = d.AccountID()
			}
			if acc == "" {
				return errors.New("--account is required with --token")
			}
			if *setup {
				if err := sim.SetupDemo(ctx, d, acc); err != nil {
					return err
				}
			}
			fmt.Fprintf(stdout, "simulating %g calls/minute in account %s through %s; Ctrl-C stops\n", *rate, acc, *apiURL)
			err = sim.Run(ctx, d, sim.Config{AccountID: acc, Rate: *rate, Duration: *duration, Logger: log})
			if err != nil && ctx.Err() != nil {
				return nil
			}
			return err
		}),
	}
}
