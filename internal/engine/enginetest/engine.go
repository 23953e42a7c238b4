package enginetest

import (
	"context"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/engine"
)

// startTimeout bounds engine.New, which reads the account state stored in
// cfg.KV: generous, for a machine other tests keep busy.
const startTimeout = 30 * time.Second

// closeTimeout bounds the Close at the end of the test: a cleanup must not
// hang a test run on an engine that cannot flush.
const closeTimeout = 10 * time.Second

// Start runs an engine with cfg for the test: it fails the test when the
// engine does not start, and closes it in a cleanup when the test ends.
// Cleanups run last-in first-out, so one a test registers before Start
// runs after the engine has closed.
func Start(t testing.TB, cfg engine.Config) *engine.Engine {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), startTimeout)
	defer cancel()
	e, err := engine.New(ctx, cfg)
	if err != nil {
		t.Fatalf("start the engine: %v", err)
	}
	t.Cleanup(func() {
		// Not t.Context(): it has ended when cleanups run.
		ctx, cancel := context.WithTimeout(context.Background(), closeTimeout)
		defer cancel()
		_ = e.Close(ctx)
	})
	return e
}
