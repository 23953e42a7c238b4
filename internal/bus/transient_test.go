package bus_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/natstest"
)

// TestTransientDecidesByJetStreamErrorCodes runs the requests that fail in
// each way against real servers and checks which failures retrying waits
// out: the errors are the ones nats.go builds from the servers' replies.
func TestTransientDecidesByJetStreamErrorCodes(t *testing.T) {
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()

	cluster := natstest.Start(t, 3)
	nc := cluster.Connect()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "T", Subjects: []string{"t.>"}, Replicas: 3}); err != nil {
		t.Fatalf("create stream: %v", err)
	}
	if _, err := js.Publish(ctx, "t.a", nil); err != nil {
		t.Fatalf("publish: %v", err)
	}
	silent, err := nc.SubscribeSync("silent")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Unsubscribe()

	standalone := natstest.Start(t, 1)
	standaloneJS, err := jetstream.New(standalone.Connect())
	if err != nil {
		t.Fatal(err)
	}
	plainJS, err := jetstream.New(withoutJetStream(t))
	if err != nil {
		t.Fatal(err)
	}

	noPeers := func() error {
		_, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: "R5", Subjects: []string{"r5.>"}, Replicas: 5})
		return err
	}
	for _, tc := range []struct {
		name      string
		err       func() error
		transient bool
	}{
		{"no responders: nothing listens on the subject yet", func() error {
			_, err := nc.Request("nobody.listens", nil, 5*time.Second)
			return err
		}, true},
		{"timeout: a request nobody answers in time", func() error {
			_, err := nc.Request("silent", nil, 20*time.Millisecond)
			return err
		}, true},
		{"deadline: an attempt's own deadline passed", func() error {
			ctx, cancel := context.WithTimeout(ctx, 20*time.Millisecond)
			defer cancel()
			_, err := nc.RequestWithContext(ctx, "silent", nil)
			return err
		}, true},
		{"JetStream not enabled on the server (yet)", func() error {
			_, err := plainJS.AccountInfo(ctx)
			return err
		}, true},
		{"no suitable peers for placement (10005)", noPeers, true},
		{"no suitable peers, wrapped as the bus wraps it", func() error {
			return fmt.Errorf("create stream R5: %w", noPeers())
		}, true},
		{"JetStream system temporarily unavailable (10008): no meta leader", func() error {
			return serverReply(t, server.NewJSClusterNotAvailError())
		}, true},
		{"insufficient resources (10023): an R1 asset's server restarts", func() error {
			return serverReply(t, server.NewJSInsufficientResourcesError())
		}, true},
		{"stream not found", func() error {
			_, err := js.Stream(ctx, "NOPE")
			return err
		}, false},
		{"wrong last sequence (10071): another writer came first", func() error {
			_, err := js.Publish(ctx, "t.a", nil, jetstream.WithExpectLastSequence(99))
			return err
		}, false},
		{"replicated stream on a standalone server (10074)", func() error {
			_, err := standaloneJS.CreateStream(ctx, jetstream.StreamConfig{Name: "R3", Subjects: []string{"r3.>"}, Replicas: 3})
			return err
		}, false},
		{"insufficient memory resources (10028) is not insufficient resources", func() error {
			_, err := standaloneJS.CreateStream(ctx, jetstream.StreamConfig{Name: "BIG", Subjects: []string{"big.>"}, Storage: jetstream.MemoryStorage, MaxBytes: 1 << 60})
			return err
		}, false},
		{"canceled: the caller gave up", func() error {
			ctx, cancel := context.WithCancel(ctx)
			cancel()
			_, err := nc.RequestWithContext(ctx, "silent", nil)
			return err
		}, false},
		{"the words alone decide nothing", func() error {
			return errors.New("JetStream system temporarily unavailable, no suitable peers")
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.err()
			if err == nil {
				t.Fatal("the request succeeded; it must fail for this case")
			}
			if got := bus.Transient(err); got != tc.transient {
				t.Fatalf("transient(%v) = %v, want %v", err, got, tc.transient)
			}
		})
	}
}

// withoutJetStream connects to a real NATS server that runs no JetStream.
func withoutJetStream(t *testing.T) *nats.Conn {
	t.Helper()
	nc, err := nats.Connect(natstest.Server(t, &server.Options{}).ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(nc.Close)
	return nc
}

// serverReply is the error nats.go returns for a JetStream API reply that
// carries e, nats-server's own error value, for the answers a test cannot
// provoke quickly (a leaderless cluster answers only after 10 s).
func serverReply(t *testing.T, e *server.ApiError) error {
	t.Helper()
	body, err := json.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	var api jetstream.APIError
	if err := json.Unmarshal(body, &api); err != nil {
		t.Fatal(err)
	}
	if api.ErrorCode == 0 || api.Description == "" {
		t.Fatalf("%s did not decode as a JetStream API error: %+v", body, api)
	}
	return &api
}
