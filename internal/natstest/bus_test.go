package natstest_test

import (
	"testing"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/natstest"
)

// Bus opens a bus that stores what is published to it, whether it runs
// its own server or joins a cluster.
func TestBusStoresWhatIsPublished(t *testing.T) {
	const acc = "0123456789abcdef0123456789abcdef"
	tests := []struct {
		name string
		cfg  func(t *testing.T) bus.Config
	}{
		{"embedded in memory", func(*testing.T) bus.Config { return bus.Config{Memory: true} }},
		{"embedded on files", func(*testing.T) bus.Config { return bus.Config{} }},
		{"embedded with a data dir of its own", func(t *testing.T) bus.Config { return bus.Config{DataDir: t.TempDir()} }},
		{"on a cluster", func(t *testing.T) bus.Config { return bus.Config{URLs: natstest.Start(t, 1).URLs()} }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := natstest.Bus(t, tt.cfg(t))
			seq, err := b.Publish(t.Context(), "qubicle.queue."+acc+".Q1.create", []byte(`{}`), "")
			if err != nil {
				t.Fatalf("publish: %v", err)
			}
			bounds, err := b.Bounds(t.Context())
			if err != nil {
				t.Fatalf("bounds: %v", err)
			}
			if bounds.Last != seq {
				t.Fatalf("the stream ends at %d, want the published %d", bounds.Last, seq)
			}
		})
	}
}
