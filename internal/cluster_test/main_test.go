// Package clustertest runs the real ccevents binary, several processes at a
// time, against a three-node NATS cluster started by the test, and breaks
// things (NATS nodes, gateways, engines) while events flow, to prove that a
// resuming client misses nothing.
//
// It holds tests only; they are skipped with -short.
package clustertest

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// binary is the ccevents executable built once by TestMain ("" with -short).
var binary string

func TestMain(m *testing.M) {
	flag.Parse()
	if testing.Short() {
		os.Exit(m.Run())
	}
	// CLUSTERTEST_BINARY runs a ccevents built elsewhere (a release
	// candidate, a race-enabled build) instead of building one.
	if binary = os.Getenv("CLUSTERTEST_BINARY"); binary != "" {
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "ccevents-clustertest-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "clustertest:", err)
		os.Exit(1)
	}
	binary = filepath.Join(dir, "ccevents")
	build := exec.Command("go", "build", "-o", binary, "github.com/ccevents/ccevents/cmd/ccevents")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "clustertest: build ccevents:", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
