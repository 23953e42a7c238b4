package gateway

import (
	"cmp"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/auth/authtest"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/promutil"
	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/ccevents/ccevents/internal/wstest"
	"github.com/prometheus/client_golang/prometheus"
)

// waitLong bounds every wait for something the test expects to happen; it
// only matters when a test is about to fail.
const waitLong = wstest.Wait

// env is a real bus, auth service and gateway listening on loopback.
type env struct {
	t      testing.TB
	ctx    context.Context
	dir    string
	bus    *bus.Bus
	auth   *auth.Service
	clock  *atomic.Int64  // offset added to the auth service's clock
	fake   *testkit.Clock // when set, the clock of auth and gateway instead
	bcfg   bus.Config
	srv    *Server
	served chan error // Serve's result
	reg    *prometheus.Registry
	url    string
	root   auth.Account
}

type envOption func(*bus.Config)

func newEnv(t testing.TB, cfg Config, opts ...envOption) *env {
	t.Helper()
	return newEnvOn(t, nil, cfg, opts...)
}

// newClockEnv is newEnv on a settable clock that the auth service and the
// gateway both read, so a test moves it past a token's expiry (and the
// gateway's token timers fire) instead of waiting in real time.
func newClockEnv(t testing.TB, cfg Config) (*env, *testkit.Clock) {
	t.Helper()
	clock := testkit.NewClock(time.Now())
	return newEnvOn(t, clock, cfg), clock
}

// newEnvOn starts an env on clock, or on the real clock when nil.
func newEnvOn(t testing.TB, clock *testkit.Clock, cfg Config, opts ...envOption) *env {
	t.Helper()
	e := &env{t: t, ctx: t.Context(), dir: t.TempDir(), clock: new(atomic.Int64), fake: clock}
	e.bcfg = bus.Config{DataDir: e.dir, Memory: true}
	for _, o := range opts {
		o(&e.bcfg)
	}
	e.openBus()
	e.start(cfg)
	return e
}

// openBus opens the bus and the auth service on it. The bus closes
// itself when the test ends, and so does the auth service; e.stop,
// registered after both and so run before, stops the gateway and auth
// first (and closes the bus early for a restart).
func (e *env) openBus() {
	e.bus = natstest.Bus(e.t, e.bcfg)
	now := func() time.Time { return time.Now().Add(time.Duration(e.clock.Load())) }
	if e.fake != nil {
		now = e.fake.Now
	}
	e.auth = authtest.Open(e.t, e.ctx, e.bus, auth.Options{Now: now})
	e.t.Cleanup(e.stop)
	e.root, _ = authtest.Root(e.t, e.ctx, e.auth)
}

// start runs a gateway on the env's bus.
func (e *env) start(cfg Config) { e.startOn(cfg, e.bus, "127.0.0.1:0") }

// startAt runs a gateway on the env's bus, listening on addr.
func (e *env) startAt(cfg Config, addr string) { e.startOn(cfg, e.bus, addr) }

// startOn runs a gateway reading events from src, listening on addr.
func (e *env) startOn(cfg Config, src Source, addr string) {
	t := e.t
	e.reg = prometheus.NewRegistry()
	cfg.Registerer = e.reg
	if e.fake != nil && cfg.Now == nil {
		cfg.Now = e.fake.Now
		cfg.AfterFunc = func(d time.Duration, f func()) Timer { return e.fake.AfterFunc(d, f) }
	}
	srv, err := New(cfg, src, e.auth)
	if err != nil {
		t.Fatalf("new gateway: %v", err)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	done := make(chan error, 1)
	// Not e.ctx: the gateway serves until stopGateway, which may run at
	// cleanup, after the test's context has ended.
	go func() { done <- srv.Serve(context.Background(), ln) }()
	e.srv, e.served = srv, done
	e.url = "ws://" + ln.Addr().String()
}

// stopGateway shuts the gateway down and checks Serve returned nil.
func (e *env) stopGateway() {
	if e.srv == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), waitLong)
	defer cancel()
	_ = e.srv.Shutdown(ctx)
	if err := <-e.served; err != nil {
		e.t.Errorf("Serve returned %v after Shutdown", err)
	}
	e.srv = nil
}

// stop shuts everything down; it runs at cleanup.
func (e *env) stop() {
	e.stopGateway()
	if e.bus != nil {
		e.auth.Close()
		e.bus.Close()
		e.bus = nil
	}
}

// restartGateway stops the gateway and starts a new one on the same
// address, as a rolling restart does; the bus stays up.
func (e *env) restartGateway(cfg Config) {
	addr := strings.TrimPrefix(e.url, "ws://")
	e.stopGateway()
	e.startAt(cfg, addr)
}

// restart stops the gateway and the bus and starts both again on the same
// data directory.
func (e *env) restart(cfg Config) {
	e.stop()
	e.openBus()
	e.start(cfg)
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

// expectSequences reads the next events on c and checks that they carry
// the stream sequences want, in order.
func expectSequences(c *wstest.Conn, want ...uint64) {
	c.T().Helper()
	for _, w := range want {
		if ev := c.Event(); ev.Sequence != w {
			c.T().Fatalf("got sequence %d, want %d", ev.Sequence, w)
		}
	}
}

// stallHandshake connects to the gateway, sends the start of a handshake
// that never ends and waits for the gateway to end the connection.
func (e *env) stallHandshake(start string) {
	e.t.Helper()
	nc, err := net.Dial("tcp", strings.TrimPrefix(e.url, "ws://"))
	if err != nil {
		e.t.Fatal(err)
	}
	defer nc.Close()
	io.WriteString(nc, start)
	_ = nc.SetReadDeadline(time.Now().Add(waitLong))
	if _, err := io.ReadAll(nc); err != nil {
		e.t.Fatalf("the gateway did not end the stalled handshake: %v", err)
	}
}

// publish stores one event with a small realistic payload and returns its
// sequence.
func (e *env) publish(subject string) uint64 {
	e.t.Helper()
	seq, err := e.bus.Publish(e.ctx, subject, payloadFor(subject), "")
	if err != nil {
		e.t.Fatalf("publish %s: %v", subject, err)
	}
	return seq
}

func payloadFor(subject string) []byte {
	parts := strings.Split(subject, ".")
	var id [16]byte
	_, _ = rand.Read(id[:])
	return fmt.Appendf(nil, `{"account_id":%q,"event":"%s.%s","event_id":%q,"%s_id":%q,"timestamp":"2026-11-25T11:32:43.123Z","timestamp_ms":1795606363123}`,
		parts[2], parts[1], parts[4], hex.EncodeToString(id[:]), parts[1], parts[3])
}

// metric returns the value of a counter or gauge, or the sample count of a
// histogram, with the given labels; 0 when there is none.
func (e *env) metric(name string, labels ...string) float64 {
	e.t.Helper()
	v, _, err := promutil.Sample(e.reg, name, labels...)
	if err != nil {
		e.t.Fatalf("gather metrics: %v", err)
	}
	return v
}

func (e *env) dial() *wstest.Conn {
	e.t.Helper()
	return wstest.Dial(e.t, e.url)
}

// dialSmallReceiveBuffer dials with a 4 KiB socket receive buffer, for a
// client whose socket fills as soon as it stops reading.
func dialSmallReceiveBuffer(ctx context.Context, network, addr string) (net.Conn, error) {
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) {
			serr = setReceiveBuffer(fd, 4096)
		})
		return errors.Join(err, serr)
	}}
	return d.DialContext(ctx, network, addr)
}
