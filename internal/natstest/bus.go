package natstest

import (
	"context"
	"testing"

	"github.com/ccevents/ccevents/internal/bus"
)

// Bus opens a bus.Bus for a test and closes it when the test ends. With
// no cfg.URLs it runs its own embedded server with JetStream, storing
// under a temporary directory unless cfg.DataDir names one; with cfg.URLs
// (a Cluster's) it connects to them. A Name is filled in when cfg has
// none. Opening may take up to startTimeout on a busy machine (a
// cluster's stream placement), and fails the test after that.
func Bus(t testing.TB, cfg bus.Config) *bus.Bus {
	t.Helper()
	if len(cfg.URLs) == 0 && cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	if cfg.Name == "" {
		cfg.Name = "natstest"
	}
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	b, err := bus.Open(ctx, cfg)
	if err != nil {
		t.Fatalf("natstest: open the bus %q: %v", cfg.Name, err)
	}
	t.Cleanup(b.Close)
	return b
}
