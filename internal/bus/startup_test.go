package bus_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/bus"
)

func TestEmbeddedServerThatCannotStartSaysWhyAtOnce(t *testing.T) {
	dir := t.TempDir()
	// A file where the JetStream store directory must go.
	if err := os.WriteFile(filepath.Join(dir, "jetstream"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{DataDir: dir, Name: "test"})
	if err == nil {
		b.Close()
		t.Fatal("Open succeeded on a store path that is a file")
	}
	if !strings.Contains(err.Error(), "embedded nats cannot start: Can't start JetStream") || !strings.Contains(err.Error(), filepath.Join(dir, "jetstream")) {
		t.Errorf("Open error %q should say JetStream cannot start and name the store", err)
	}
}
