package isolation

import (
	"context"
	"fmt"
	"net"
	"slices"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/gateway"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/wstest"
)

// waitLong bounds every wait; it only matters when a test is about to fail.
const waitLong = wstest.Wait

// env is a real bus, auth service and gateway on loopback.
type env struct {
	t    *testing.T
	ctx  context.Context
	bus  *bus.Bus
	auth *auth.Service
	root auth.Account
	url  string
}

func newEnv(t *testing.T, cfg gateway.Config) *env {
	t.Helper()
	ctx := t.Context()
	b := natstest.Bus(t, bus.Config{Memory: true})
	kv, err := b.KeyValue(ctx, auth.DefaultBucket)
	if err != nil {
		t.Fatalf("auth bucket: %v", err)
	}
	as, err := auth.NewService(ctx, kv, auth.Options{})
	if err != nil {
		t.Fatalf("auth service: %v", err)
	}
	t.Cleanup(as.Close)
	root, _, _, err := as.EnsureRoot(ctx, "root")
	if err != nil {
		t.Fatalf("root account: %v", err)
	}
	srv, err := gateway.New(cfg, b, as)
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	// Serves until the cleanup below, after the test's context has ended.
	go func() { done <- srv.Serve(context.Background(), ln) }()
	t.Cleanup(func() {
		sctx, cancel := context.WithTimeout(context.Background(), waitLong)
		defer cancel()
		_ = srv.Shutdown(sctx)
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
	})
	return &env{t: t, ctx: ctx, bus: b, auth: as, root: root, url: "ws://" + ln.Addr().String()}
}

// account creates a child of parent (the root when empty).
func (e *env) account(parent string) string {
	e.t.Helper()
	if parent == "" {
		parent = e.root.ID
	}
	a, _, err := e.auth.CreateAccount(e.ctx, parent, "test")
	if err != nil {
		e.t.Fatalf("create account: %v", err)
	}
	return a.ID
}

func (e *env) token(account string) string {
	e.t.Helper()
	tok, _, err := e.auth.IssueToken(e.ctx, account, time.Hour)
	if err != nil {
		e.t.Fatalf("issue token: %v", err)
	}
	return tok
}

// publish stores a queue or session event straight on the bus.
func (e *env) publish(subject string) {
	e.t.Helper()
	var parts [5]string
	copy(parts[:], splitDots(subject))
	payload := fmt.Appendf(nil, `{"account_id":%q,"event":"%s.%s","event_id":"%032x","%s_id":%q,"timestamp":"2026-11-25T11:32:43.123Z","timestamp_ms":1795606363123}`,
		parts[2], parts[1], parts[4], time.Now().UnixNano(), parts[1], parts[3])
	if _, err := e.bus.Publish(e.ctx, subject, payload, ""); err != nil {
		e.t.Fatalf("publish %s: %v", subject, err)
	}
}

func splitDots(s string) []string {
	var out []string
	start := 0
	for i := 0; i < len(s); i++ {
		if s[i] == '.' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return append(out, s[start:])
}

func (e *env) dial() *wstest.Conn {
	e.t.Helper()
	return wstest.Dial(e.t, e.url)
}

func equalStrings(got []string, want ...string) bool { return slices.Equal(got, want) }
