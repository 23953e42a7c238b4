package bus_test

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/natstest"
)

func TestEmbeddedServerThatCannotStartSaysWhyAtOnce(t *testing.T) {
	dir := t.TempDir()
	// A file where the JetStream store directory must go.
	if err := os.WriteFile(filepath.Join(dir, "jetstream"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	b, err := bus.Open(ctx, bus.Config{DataDir: dir, Name: "test"})
	if err == nil {
		b.Close()
		t.Fatal("Open succeeded on a store path that is a file")
	}
	if !strings.Contains(err.Error(), "embedded nats cannot start: Can't start JetStream") || !strings.Contains(err.Error(), filepath.Join(dir, "jetstream")) {
		t.Errorf("Open error %q should say JetStream cannot start and name the store", err)
	}
}

// logWatch is a slog handler that passes each message with its attributes
// to a channel, so a test can wait for a log line instead of polling.
type logWatch struct {
	lines chan string
	attrs []slog.Attr
}

func newLogWatch() *logWatch { return &logWatch{lines: make(chan string, 1024)} }

func (w *logWatch) Enabled(context.Context, slog.Level) bool { return true }

func (w *logWatch) Handle(_ context.Context, r slog.Record) error {
	var b strings.Builder
	b.WriteString(r.Message)
	for _, a := range w.attrs {
		b.WriteString(" " + a.String())
	}
	r.Attrs(func(a slog.Attr) bool {
		b.WriteString(" " + a.String())
		return true
	})
	select {
	case w.lines <- b.String():
	default: // a test that stopped reading loses nothing it waits for
	}
	return nil
}

func (w *logWatch) WithAttrs(as []slog.Attr) slog.Handler {
	return &logWatch{lines: w.lines, attrs: append(slices.Clone(w.attrs), as...)}
}

func (w *logWatch) WithGroup(string) slog.Handler { return w }

// waitLine waits for a line containing every one of parts, or fails the
// test when the bus gave up first (done) or after limit.
func (w *logWatch) waitLine(t *testing.T, limit time.Duration, done <-chan error, parts ...string) string {
	t.Helper()
	timer := time.NewTimer(limit)
	defer timer.Stop()
	for {
		select {
		case line := <-w.lines:
			if containsAll(line, parts) {
				return line
			}
		case err := <-done:
			t.Fatalf("Open returned (%v) before logging %q", err, parts)
		case <-timer.C:
			t.Fatalf("no log line with %q within %s", parts, limit)
		}
	}
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

// openAsync opens a bus on urls in the background; the result arrives on
// the returned channels.
func openAsync(ctx context.Context, cfg bus.Config) (<-chan *bus.Bus, <-chan error) {
	bc, ec := make(chan *bus.Bus, 1), make(chan error, 1)
	go func() {
		b, err := bus.Open(ctx, cfg)
		if err != nil {
			ec <- err
			return
		}
		bc <- b
	}()
	return bc, ec
}

func freeAddr(t *testing.T) (string, int) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return "127.0.0.1", ln.Addr().(*net.TCPAddr).Port
}

func TestOpenWaitsForNATSToAnswerLoggingEachAttempt(t *testing.T) {
	host, port := freeAddr(t)
	url := fmt.Sprintf("nats://%s:%d", host, port)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	w := newLogWatch()
	bc, ec := openAsync(ctx, bus.Config{URLs: []string{url}, Name: "test", Logger: slog.New(w)})
	line := w.waitLine(t, time.Minute, ec, "waiting for NATS", "for=a connection", "attempt=1", url)
	t.Logf("logged: %s", line)

	natstest.Server(t, &server.Options{Host: host, Port: port, JetStream: true})
	select {
	case b := <-bc:
		defer b.Close()
		if !b.Connected() {
			t.Error("Open returned a bus that is not connected")
		}
	case err := <-ec:
		t.Fatalf("Open gave up although the server came up: %v", err)
	}
}

func TestOpenGivesUpOnUnreachableNATSWithASentence(t *testing.T) {
	host, port := freeAddr(t)
	url := fmt.Sprintf("nats://%s:%d", host, port)
	ctx, cancel := context.WithTimeout(t.Context(), time.Second)
	defer cancel()
	_, err := bus.Open(ctx, bus.Config{URLs: []string{url}, Name: "test"})
	want := "connect to nats " + url + ": no server answered in "
	if err == nil || !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "check that the servers run and the URLs") {
		t.Errorf("Open error %v, want one containing %q", err, want)
	}
}

func TestOpenWaitsWhileTheClusterHasNoQuorum(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster")
	}
	c := natstest.Start(t, 3)
	c.Kill(1)
	c.Kill(2)
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	w := newLogWatch()
	bc, ec := openAsync(ctx, bus.Config{URLs: c.URLs(), Name: "test", Replicas: 3, Logger: slog.New(w)})
	line := w.waitLine(t, 2*time.Minute, ec, "waiting for NATS", "open the event stream QUBICLE", "attempt=1")
	t.Logf("logged: %s", line)
	// Both come back: an R3 stream is placed only with three servers up.
	c.Restart(1)
	c.Restart(2)
	select {
	case b := <-bc:
		b.Close()
	case err := <-ec:
		t.Fatalf("Open gave up although quorum came back: %v", err)
	}
}

// oldNATSServer is the path of a nats-server binary older than
// bus.MinServerVersion (Debian's 2.9.10, which scripts/install-test-deps.sh
// installs), and its version.
func oldNATSServer(t *testing.T) (string, string) {
	t.Helper()
	for _, p := range []string{"nats-server", "/usr/sbin/nats-server", "/usr/bin/nats-server"} {
		path, err := exec.LookPath(p)
		if err != nil {
			continue
		}
		out, err := exec.Command(path, "--version").Output()
		if err != nil {
			continue
		}
		v := strings.TrimPrefix(strings.TrimSpace(strings.TrimPrefix(string(out), "nats-server:")), "v")
		if bus.VersionBelow(v, bus.MinServerVersion) {
			return path, v
		}
	}
	t.Skipf("no nats-server older than %s is installed: run scripts/install-test-deps.sh (it installs Debian's nats-server 2.9.10)", bus.MinServerVersion)
	return "", ""
}

func TestOpenRefusesATooOldNATSServerBeforeCreatingAnything(t *testing.T) {
	path, version := oldNATSServer(t)
	host, port := freeAddr(t)
	url := fmt.Sprintf("nats://%s:%d", host, port)
	srv := exec.Command(path, "-a", host, "-p", fmt.Sprint(port), "-js", "-sd", t.TempDir())
	var out strings.Builder
	srv.Stdout, srv.Stderr = &out, &out
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = srv.Process.Kill()
		_ = srv.Wait()
	})
	ctx, cancel := context.WithTimeout(t.Context(), time.Minute)
	defer cancel()
	// Open waits for the server to start listening, then refuses it.
	_, err := bus.Open(ctx, bus.Config{URLs: []string{url}, Name: "test"})
	want := fmt.Sprintf("nats-server %s at %s is too old: ccevents needs nats-server %s or later; upgrade the NATS servers (nothing was created on this one)", version, url, bus.MinServerVersion)
	if err == nil || err.Error() != want {
		t.Fatalf("Open error %v\nwant %s\nserver log:\n%s", err, want, out.String())
	}
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	names := js.StreamNames(ctx)
	var streams []string
	for n := range names.Name() {
		streams = append(streams, n)
	}
	if names.Err() != nil || len(streams) != 0 {
		t.Errorf("streams on the old server after the refusal: %v (err %v), want none", streams, names.Err())
	}
}

// A bucket KeyValue returns takes a write at once, even when a cluster
// has only just created it and its three copies are still electing a
// leader (a write then gets no response; the auth service's first start
// on a fresh cluster failed on it).
func TestABucketJustCreatedOnAClusterTakesAWriteAtOnce(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster")
	}
	c := natstest.Start(t, 3)
	b := natstest.Bus(t, bus.Config{URLs: []string{c.URL(0)}, Name: "test", Replicas: 3})
	ctx, cancel := context.WithTimeout(t.Context(), 3*time.Minute)
	defer cancel()
	for i := range 12 {
		name := fmt.Sprintf("fresh%d", i)
		kv, err := b.KeyValue(ctx, name)
		if err != nil {
			t.Fatalf("open bucket %s: %v", name, err)
		}
		if _, err := kv.Create(ctx, "first", []byte("x")); err != nil {
			t.Fatalf("first write to bucket %s: %v", name, err)
		}
	}
}
