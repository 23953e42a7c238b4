package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"runtime"

	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ccevents/ccevents/internal/buildinfo"
)

func newVersionCommand(stdout io.Writer) *ffcli.Command {
	fs := flag.NewFlagSet("ccevents version", flag.ContinueOnError)
	asJSON := fs.Bool("json", false, "print the build as JSON")
	return &ffcli.Command{
		Name:       "version",
		ShortUsage: "ccevents version [--json]",
		ShortHelp:  "print the version, commit, Go version and embedded NATS version",
		FlagSet:    fs,
		Exec: flagsOnly("version", "", func(context.Context) error {
			i := buildinfo.Read()
			if *asJSON {
				enc := json.NewEncoder(stdout)
				enc.SetIndent("", "  ")
				return enc.Encode(i)
			}
			commit := i.Commit
			if commit == "" {
				commit = "unknown"
			}
			if i.CommitTime != "" {
				commit += ", " + i.CommitTime
			}
			_, err := fmt.Fprintf(stdout, "ccevents %s (commit %s)\ngo       %s %s/%s\nnats     nats-server v%s (embedded)\n",
				i.Version, commit, i.GoVersion, runtime.GOOS, runtime.GOARCH, i.NATSVersion)
			return err
		}),
	}
}
