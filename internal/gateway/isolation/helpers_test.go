package isolation

import (
	"cmp"
	"context"
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/auth/authtest"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/gateway"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/ccevents/ccevents/internal/wstest"
)

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
	as := authtest.Open(t, ctx, b, auth.Options{})
	root, _ := authtest.Root(t, ctx, as)
	srv, err := gateway.New(cfg, b, as)
	if err != nil {
		t.Fatalf("gateway: %v", err)
	}
	// Not the test's context: the gateway serves until the cleanup, after
	// that context has ended.
	addr := testkit.Serve(t, func(ln net.Listener) error { return srv.Serve(context.Background(), ln) }, srv.Shutdown)
	return &env{t: t, ctx: ctx, bus: b, auth: as, root: root, url: "ws://" + addr}
}

// account creates a child of parent (the root when empty).
func (e *env) account(parent string) string {
	e.t.Helper()
	return authtest.Account(e.t, e.ctx, e.auth, cmp.Or(parent, e.root.ID))
}

func (e *env) token(account string) string {
	e.t.Helper()
	return authtest.Token(e.t, e.ctx, e.auth, account)
}

// publish stores a queue or session event straight on the bus.
func (e *env) publish(subject string) {
	e.t.Helper()
	var parts [5]string
	copy(parts[:], strings.Split(subject, "."))
	payload := fmt.Appendf(nil, `{"account_id":%q,"event":"%s.%s","event_id":"%032x","%s_id":%q,"timestamp":"2026-11-25T11:32:43.123Z","timestamp_ms":1795606363123}`,
		parts[2], parts[1], parts[4], time.Now().UnixNano(), parts[1], parts[3])
	if _, err := e.bus.Publish(e.ctx, subject, payload, ""); err != nil {
		e.t.Fatalf("publish %s: %v", subject, err)
	}
}

func (e *env) dial() *wstest.Conn {
	e.t.Helper()
	return wstest.Dial(e.t, e.url)
}

func equalStrings(got []string, want ...string) bool { return slices.Equal(got, want) }
