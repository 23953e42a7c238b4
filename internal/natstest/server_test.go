package natstest_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/natstest"
)

// Server runs a server a client can use, with or without JetStream, and
// never on nats-server's default port.
func TestServerAcceptsClients(t *testing.T) {
	tests := []struct {
		name      string
		jetStream bool
	}{
		{"plain", false},
		{"with JetStream", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			srv := natstest.Server(t, &server.Options{JetStream: tt.jetStream})
			if addr := srv.Addr().String(); !strings.HasPrefix(addr, "127.0.0.1:") || strings.HasSuffix(addr, ":4222") {
				t.Errorf("the server listens on %s, want a random port on 127.0.0.1", addr)
			}
			nc, err := nats.Connect(srv.ClientURL())
			if err != nil {
				t.Fatalf("connect: %v", err)
			}
			defer nc.Close()
			js, err := jetstream.New(nc)
			if err != nil {
				t.Fatal(err)
			}
			_, err = js.AccountInfo(t.Context())
			if tt.jetStream && err != nil {
				t.Errorf("JetStream account info: %v", err)
			}
			if !tt.jetStream && !errors.Is(err, jetstream.ErrJetStreamNotEnabled) {
				t.Errorf("JetStream account info on a server without it: %v, want %v", err, jetstream.ErrJetStreamNotEnabled)
			}
		})
	}
}
