package natstest

import (
	"fmt"
	"os"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// Server runs one nats-server in the test process with opts and shuts it
// down when the test ends; a test may shut it down earlier itself. opts
// are the test's to choose (JetStream, accounts, TLS); Server fills in
// only what keeps it inside the test: 127.0.0.1 when opts names no host,
// a random port when it names none (nats-server's own default is 4222), a
// store under t.TempDir() for JetStream when opts names none, and no
// signal handlers. It fails the test when the server does not start.
func Server(t testing.TB, opts *server.Options) *server.Server {
	t.Helper()
	if opts.Host == "" {
		opts.Host = "127.0.0.1"
	}
	if opts.Port == 0 {
		opts.Port = server.RANDOM_PORT
	}
	if opts.JetStream && opts.StoreDir == "" {
		opts.StoreDir = t.TempDir()
	}
	opts.NoLog, opts.NoSigs = true, true
	srv, err := start(t, opts)
	if err != nil {
		t.Fatalf("natstest: %v", err)
	}
	t.Cleanup(func() {
		srv.Shutdown()
		srv.WaitForShutdown()
	})
	return srv
}

// start runs a server with opts and waits until it accepts clients. Its
// log goes to the test log when NATSTEST_LOG is set.
func start(t testing.TB, opts *server.Options) (*server.Server, error) {
	name := opts.ServerName
	if name == "" {
		name = "nats-server"
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return nil, fmt.Errorf("configure %s: %w", name, err)
	}
	if os.Getenv("NATSTEST_LOG") != "" {
		srv.SetLoggerV2(&testLogger{t: t, prefix: name}, false, false, false)
	}
	go srv.Start()
	if !srv.ReadyForConnections(startTimeout) {
		srv.Shutdown()
		if opts.Port == server.RANDOM_PORT {
			return nil, fmt.Errorf("%s did not accept clients on %s within %s", name, opts.Host, startTimeout)
		}
		return nil, fmt.Errorf("%s did not accept clients on %s:%d within %s (was the port taken meanwhile?)", name, opts.Host, opts.Port, startTimeout)
	}
	return srv, nil
}
