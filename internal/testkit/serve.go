package testkit

import (
	"context"
	"errors"
	"net"
	"net/http"
	"testing"
	"time"
)

// ShutdownWait bounds a server's graceful shutdown at the end of a test; it
// only matters when the shutdown hangs.
const ShutdownWait = 10 * time.Second

// Serve runs serve on a fresh loopback listener until the test ends, then
// calls shutdown and checks that serve returned nil (or
// http.ErrServerClosed, an http.Server's answer to Shutdown). It returns
// the listener's address. serve is a server's Serve method, wrapped in a
// closure for servers whose Serve also takes a context.
func Serve(t testing.TB, serve func(net.Listener) error, shutdown func(context.Context) error) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("listen on loopback: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- serve(ln) }()
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), ShutdownWait)
		defer cancel()
		_ = shutdown(ctx)
		if err := <-done; err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("serve on %s returned %v after shutdown", ln.Addr(), err)
		}
	})
	return ln.Addr().String()
}

// ServeConns accepts connections on ln until the test ends, when it closes
// ln, and runs handle on each in a goroutine of its own, closing the
// connection when handle returns.
func ServeConns(t testing.TB, ln net.Listener, handle func(net.Conn)) {
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				handle(c)
			}()
		}
	}()
}
