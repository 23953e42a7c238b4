// Command ccevents is the live event gateway of a contact center: `serve`
// runs the engine, the REST API and the websocket gateway on one bus; the
// other subcommands mint tokens, listen to events, simulate traffic and
// measure performance.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/peterbourgon/ff/v3/ffcli"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run executes one command line and returns the process exit code.
func run(args []string, stdout, stderr io.Writer) int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	root := &ffcli.Command{
		Name:       "ccevents",
		ShortUsage: "ccevents <subcommand> [flags]",
		ShortHelp:  "live event gateway of a contact center",
		LongHelp: "ccevents pushes queue, recipient and session events of a contact center to\n" +
			"websocket clients the moment they happen.\n\n" +
			"Start here:  ccevents serve --demo\n" +
			"Every flag can also be set with an environment variable CCEVENTS_<FLAG_NAME>\n" +
			"(e.g. CCEVENTS_WS_ADDR=:6000) or in a --config file of \"flag value\" lines.",
		FlagSet: flag.NewFlagSet("ccevents", flag.ContinueOnError),
		Subcommands: []*ffcli.Command{
			newServeCommand(stdout, stderr),
			newTokenCommand(stdout, stderr),
			newListenCommand(stdout, stderr),
			newSimulateCommand(stdout, stderr),
			newBenchCommand(stdout, stderr),
		},
		Exec: func(context.Context, []string) error { return flag.ErrHelp },
	}
	for _, c := range append([]*ffcli.Command{root}, root.Subcommands...) {
		c.FlagSet.SetOutput(stderr)
	}
	if err := root.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(stderr, "ccevents: %v\n", err)
		return 2
	}
	if err := root.Run(ctx); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			fmt.Fprintln(stderr, ffcli.DefaultUsageFunc(root))
			return 2
		}
		fmt.Fprintf(stderr, "ccevents: %v\n", err)
		return 1
	}
	return 0
}
