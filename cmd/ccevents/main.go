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
	"strings"
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
			newTopCommand(stdout, stderr),
			newSimulateCommand(stdout, stderr),
			newBenchCommand(stdout, stderr),
			newNkeyCommand(stdout),
			newDoctorCommand(stdout, stderr),
			newVersionCommand(stdout),
		},
		Exec: func(_ context.Context, args []string) error {
			if len(args) > 0 {
				return usageError(fmt.Sprintf("unknown subcommand %q: use serve, token, listen, top, simulate, bench, nkey, doctor or version (ccevents --help says what each does)", args[0]))
			}
			return flag.ErrHelp
		},
	}
	// The flag package prints the whole usage on any parse error; keep it
	// for --help and give a bad flag one sentence and a pointer instead.
	var usage strings.Builder
	for _, c := range append([]*ffcli.Command{root}, root.Subcommands...) {
		c.FlagSet.SetOutput(&usage)
	}
	if err := root.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			io.WriteString(stderr, usage.String())
			return 0
		}
		msg := strings.TrimPrefix(err.Error(), "error parsing commandline arguments: ")
		msg = strings.Replace(msg, " flag -", " flag --", 1)
		msg = strings.Replace(msg, "flag provided but not defined: -", "unknown flag --", 1)
		fmt.Fprintf(stderr, "ccevents: %s\n%s\n", msg, helpHint(root, args))
		return 2
	}
	for _, c := range append([]*ffcli.Command{root}, root.Subcommands...) {
		c.FlagSet.SetOutput(stderr)
	}
	if err := root.Run(ctx); err != nil {
		var ue usageError
		switch {
		case errors.Is(err, flag.ErrHelp):
			fmt.Fprintln(stderr, ffcli.DefaultUsageFunc(root))
			return 2
		case errors.As(err, &ue):
			fmt.Fprintf(stderr, "ccevents: %v\n", err)
			return 2
		}
		fmt.Fprintf(stderr, "ccevents: %v\n", err)
		return 1
	}
	return 0
}

// usageError is a command line ccevents cannot take (an unknown
// subcommand, arguments where only flags go): exit 2, like a bad flag.
type usageError string

func (e usageError) Error() string { return string(e) }

// flagsOnly is the Exec of a subcommand that takes flags and no
// arguments: a stray argument is a usage error naming the command and,
// when hint is given, where such a value belongs.
func flagsOnly(name, hint string, run func(context.Context) error) func(context.Context, []string) error {
	return func(ctx context.Context, args []string) error {
		if len(args) > 0 {
			msg := fmt.Sprintf("%s takes no arguments, got %q", name, args)
			if hint != "" {
				msg += " (" + hint + ")"
			}
			return usageError(msg)
		}
		return run(ctx)
	}
}

// helpHint points at the --help of the subcommand a bad flag was given to.
func helpHint(root *ffcli.Command, args []string) string {
	for _, c := range root.Subcommands {
		if len(args) > 0 && args[0] == c.Name {
			return fmt.Sprintf("run `ccevents %s --help` for its flags and what each takes (durations like 48h, sizes like 1GiB)", c.Name)
		}
	}
	return "run `ccevents --help` for the subcommands"
}
