package auth

import (
	"crypto/sha256"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/testkit"
)

// startJetStream runs a one-node NATS server with JetStream for the test
// and returns a JetStream context connected to it.
func startJetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(natstest.Start(t, 1).Connect())
	if err != nil {
		t.Fatalf("jetstream: %v", err)
	}
	return js
}

var bucketSeq atomic.Int64

// newKV creates a fresh bucket on js.
func newKV(t testing.TB, js jetstream.JetStream) jetstream.KeyValue {
	t.Helper()
	cfg := BucketConfig()
	cfg.Bucket = fmt.Sprintf("auth_test_%d", bucketSeq.Add(1))
	cfg.Storage = jetstream.MemoryStorage
	kv, err := js.CreateKeyValue(t.Context(), cfg)
	if err != nil {
		t.Fatalf("create bucket: %v", err)
	}
	return kv
}

// newService starts a Service on kv and closes it when the test ends.
// Services on one bucket share a seal key, as the nodes of one deployment
// do, unless opts names one.
func newService(t testing.TB, kv jetstream.KeyValue, opts Options) *Service {
	t.Helper()
	if opts.SealKey == nil && !opts.VerifyOnly {
		opts.SealKey = bucketSealKey(kv)
	}
	s, err := NewService(t.Context(), kv, opts)
	if err != nil {
		t.Fatalf("NewService: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// bucketSealKey is the seal key of the deployment owning kv in these tests.
func bucketSealKey(kv jetstream.KeyValue) []byte {
	sum := sha256.Sum256([]byte("test seal key " + kv.Bucket()))
	return sum[:]
}

// newClock is a settable clock for Options.Now, at a fixed time so that
// tests read the same on every run.
func newClock() *testkit.Clock {
	return testkit.NewClock(time.Date(2026, 11, 25, 11, 32, 43, 0, time.UTC))
}
