package auth

import (
	"context"
	"crypto/sha256"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// startJetStream runs an in-process NATS server with JetStream on a random
// loopback port and returns a JetStream context connected to it.
func startJetStream(t testing.TB) jetstream.JetStream {
	t.Helper()
	srv, err := server.NewServer(&server.Options{
		Host:      "127.0.0.1",
		Port:      -1,
		JetStream: true,
		StoreDir:  t.TempDir(),
		NoLog:     true,
		NoSigs:    true,
	})
	if err != nil {
		t.Fatalf("nats server: %v", err)
	}
	srv.Start()
	t.Cleanup(srv.Shutdown)
	if !srv.ReadyForConnections(10 * time.Second) {
		t.Fatal("nats server not ready")
	}
	nc, err := nats.Connect(srv.ClientURL())
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	t.Cleanup(nc.Close)
	js, err := jetstream.New(nc)
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
	kv, err := js.CreateKeyValue(context.Background(), cfg)
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
	s, err := NewService(context.Background(), kv, opts)
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

// testClock is a settable clock for Options.Now.
type testClock struct {
	mu  sync.Mutex
	now time.Time
}

func newClock() *testClock {
	return &testClock{now: time.Date(2026, 11, 25, 11, 32, 43, 0, time.UTC)}
}

func (c *testClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *testClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
}

// eventually waits until cond holds, for changes that travel through a
// watch; it fails only if cond never holds.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never happened: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
