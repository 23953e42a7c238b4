package main

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/client"
	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/ccevents/ccevents/internal/wstest"
)

// syncBuffer is what a running command writes while the test reads it,
// read as lines.
type syncBuffer struct{ testkit.Buffer }

func (b *syncBuffer) lines() []string {
	s := strings.TrimSpace(b.String())
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

// demoServer is `ccevents serve --demo` running in this process on fixed
// loopback ports, so that a restart comes back on the same ones.
type demoServer struct {
	args    []string
	dataDir string
	wsURL   string
	apiURL  string
	apiKey  string
	account string

	cancel context.CancelFunc
	done   chan error
}

func startDemoServer(t *testing.T) *demoServer {
	t.Helper()
	ws, api := testkit.FreeAddr(t), testkit.FreeAddr(t)
	d := &demoServer{dataDir: t.TempDir(), wsURL: "ws://" + ws, apiURL: "http://" + api}
	d.args = []string{"serve", "--demo", "--demo-rate", "60", "--data-dir", d.dataDir, "--ws-addr", ws,
		"--api-addr", api, "--nats-listen", "", "--log-level", "error"}
	d.start(t)
	t.Cleanup(d.stop)
	return d
}

func (d *demoServer) start(t *testing.T) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d.cancel, d.done = cancel, make(chan error, 1)
	var out, errs syncBuffer
	go func() { d.done <- newServeCommand(&out, &errs).ParseAndRun(ctx, d.args[1:]) }()
	var demo struct {
		AccountID string `json:"account_id"`
		APIKey    string `json:"api_key"`
	}
	waitReady(t, d.apiURL, filepath.Join(d.dataDir, "demo.json"), d.done, &errs, func(raw []byte) error {
		if err := json.Unmarshal(raw, &demo); err != nil || demo.APIKey == "" {
			return fmt.Errorf("no API key in demo.json yet (%v)", err)
		}
		return nil
	})
	d.apiKey, d.account = demo.APIKey, demo.AccountID
}

func (d *demoServer) stop() {
	if d.cancel == nil {
		return
	}
	d.cancel()
	<-d.done
	d.cancel = nil
}

func (d *demoServer) restart(t *testing.T) {
	t.Helper()
	d.stop()
	d.start(t)
}

// dialWebsocket logs in to d's REST API with its API key and opens a
// websocket to its gateway, closed when the test ends; each read waits
// up to 30 s.
func (d *demoServer) dialWebsocket(t *testing.T) (*wstest.Conn, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	tok, err := client.Login(ctx, d.apiURL, d.apiKey, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := wstest.Dial(t, d.wsURL)
	c.ReadWait = 30 * time.Second
	return c, tok.Value
}

// listenArgs are the flags that point listen at d.
func (d *demoServer) listenArgs(extra ...string) []string {
	return append([]string{"listen", "--url", d.wsURL, "--api-url", d.apiURL, "--api-key", d.apiKey}, extra...)
}

type frameLine struct {
	SubscribedKey string          `json:"subscribed_key"`
	RoutingKey    string          `json:"routing_key"`
	Name          string          `json:"name"`
	Sequence      uint64          `json:"sequence"`
	Epoch         string          `json:"epoch"`
	Data          json.RawMessage `json:"data"`
}

func parseLines(t *testing.T, lines []string) []frameLine {
	t.Helper()
	out := make([]frameLine, len(lines))
	for i, l := range lines {
		if err := json.Unmarshal([]byte(l), &out[i]); err != nil {
			t.Fatalf("line %d is not one JSON event: %v\n%s", i+1, err, l)
		}
	}
	return out
}

var resumeHint = regexp.MustCompile(`resume with --since (\d+@\S+)`)

func TestListenPrintsOneJSONEventPerLineAndHowToResume(t *testing.T) {
	d := startDemoServer(t)
	var out, errs syncBuffer
	if code := run(d.listenArgs("--count", "5"), &out, &errs); code != 0 {
		t.Fatalf("listen exited %d:\n%s", code, errs.String())
	}
	frames := parseLines(t, out.lines())
	if len(frames) != 5 {
		t.Fatalf("printed %d lines, want 5:\n%s", len(frames), out.String())
	}
	for i, f := range frames {
		if !strings.HasPrefix(f.RoutingKey, "qubicle.") || !strings.Contains(f.RoutingKey, "."+d.account+".") ||
			f.Sequence == 0 || f.Epoch == "" || len(f.Data) == 0 || f.SubscribedKey == "" {
			t.Fatalf("line %d lacks the frame's fields: %+v", i+1, f)
		}
		if i > 0 && f.Sequence <= frames[i-1].Sequence {
			t.Fatalf("line %d has sequence %d after %d", i+1, f.Sequence, frames[i-1].Sequence)
		}
	}
	m := resumeHint.FindStringSubmatch(errs.String())
	if m == nil || m[1] != strconv.FormatUint(frames[4].Sequence, 10)+"@"+frames[4].Epoch {
		t.Fatalf("stderr %q: want the resume hint --since %d@%s", errs.String(), frames[4].Sequence, frames[4].Epoch)
	}
}

func TestListenSinceMissesNothingAcrossAServerRestart(t *testing.T) {
	d := startDemoServer(t)
	var out, errs syncBuffer
	// Enough events that the listener is still running after the restart:
	// shutting down and loading the demo account publish a few dozen.
	const n = 80
	done := make(chan int, 1)
	go func() { done <- run(d.listenArgs("--count", strconv.Itoa(n)), &out, &errs) }()
	waitLines(t, &out, 6)
	d.restart(t)
	if code := <-done; code != 0 {
		t.Fatalf("listen exited %d:\n%s", code, errs.String())
	}
	live := parseLines(t, out.lines())
	if !strings.Contains(errs.String(), "reconnecting") || !strings.Contains(errs.String(), "reconnected") {
		t.Errorf("stderr does not tell about the reconnect:\n%s", errs.String())
	}

	// Replaying from just before the first event must give exactly what
	// the live run printed: nothing was lost or repeated at the restart.
	var again, errs2 syncBuffer
	from := strconv.FormatUint(live[0].Sequence-1, 10) + "@" + live[0].Epoch
	if code := run(d.listenArgs("--since", from, "--count", strconv.Itoa(n)), &again, &errs2); code != 0 {
		t.Fatalf("listen --since exited %d:\n%s", code, errs2.String())
	}
	replayed := parseLines(t, again.lines())
	for i := range live {
		if live[i].Sequence != replayed[i].Sequence {
			t.Fatalf("event %d: the live run printed sequence %d, the replay %d", i+1, live[i].Sequence, replayed[i].Sequence)
		}
	}

	// A bare sequence resumes in the current history just the same.
	var bare, errs3 syncBuffer
	if code := run(d.listenArgs("--since", strconv.FormatUint(live[0].Sequence-1, 10), "--count", "3"), &bare, &errs3); code != 0 {
		t.Fatalf("listen --since N exited %d:\n%s", code, errs3.String())
	}
	for i, f := range parseLines(t, bare.lines()) {
		if f.Sequence != live[i].Sequence {
			t.Fatalf("--since %d: event %d has sequence %d, want %d", live[0].Sequence-1, i+1, f.Sequence, live[i].Sequence)
		}
	}
	if strings.Contains(errs3.String(), "warning") {
		t.Errorf("--since without an epoch warned: %s", errs3.String())
	}
}

func waitLines(t *testing.T, b *syncBuffer, n int) {
	t.Helper()
	testkit.EventuallyNoError(t, 30*time.Second, fmt.Sprintf("%d lines", n), func() error {
		if got := len(b.lines()); got < n {
			return fmt.Errorf("only %d lines", got)
		}
		return nil
	})
}

func TestListenPrettyLinesAreReadable(t *testing.T) {
	d := startDemoServer(t)
	line := regexp.MustCompile(`^\d\d:\d\d:\d\d\.\d{3} #\d+ (queue|recipient|session)\.[a-z_]+ +\S`)
	for _, tc := range []struct {
		color     string
		wantColor bool
	}{{"never", false}, {"always", true}} {
		var out, errs syncBuffer
		if code := run(d.listenArgs("--format", "pretty", "--color", tc.color, "--count", "3"), &out, &errs); code != 0 {
			t.Fatalf("listen exited %d:\n%s", code, errs.String())
		}
		text := out.String()
		if got := strings.Contains(text, "\x1b["); got != tc.wantColor {
			t.Errorf("--color %s: escape codes present = %v, want %v", tc.color, got, tc.wantColor)
		}
		for _, l := range out.lines() {
			plain := regexp.MustCompile("\x1b\\[[0-9;]*m").ReplaceAllString(l, "")
			if !line.MatchString(plain) || strings.Contains(plain, `"event_id"`) {
				t.Errorf("--color %s: line %q is not `time #sequence family.name fields…`", tc.color, plain)
			}
		}
	}
}

func TestListenExitsWithAClearSentence(t *testing.T) {
	d := startDemoServer(t)
	dead := "ws://" + testkit.FreeAddr(t)
	other := strings.Repeat("cd", 16)
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"refused API key", []string{"listen", "--url", d.wsURL, "--api-url", d.apiURL, "--api-key", "nope"}, "the API key was refused: api key is not valid"},
		{"binding of another account", d.listenArgs("--binding", "qubicle.queue."+other+".*"), "the gateway refused binding"},
		{"account the key may not see", d.listenArgs("--account", other), "may not see account " + other},
		{"no credentials", []string{"listen", "--url", d.wsURL}, "give --api-key"},
		{"bad format", d.listenArgs("--format", "xml"), "--format must be json or pretty"},
		{"bad since", d.listenArgs("--since", "yesterday"), "--since: position"},
		{"gateway not running", []string{"listen", "--url", dead, "--token", "a.b.c", "--account", other}, "is `ccevents serve` running?"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs syncBuffer
			code := run(tc.args, &out, &errs)
			if code == 0 {
				t.Fatalf("listen exited 0, want an error; stdout:\n%s", out.String())
			}
			if !strings.Contains(errs.String(), tc.want) {
				t.Fatalf("stderr %q, want it to say %q", errs.String(), tc.want)
			}
			if strings.Count(strings.TrimSpace(errs.String()), "\n") > 1 {
				t.Errorf("stderr has more than a sentence or two:\n%s", errs.String())
			}
		})
	}
}

func TestListenWithoutReconnectExitsWhenTheGatewayGoes(t *testing.T) {
	d := startDemoServer(t)
	var out, errs syncBuffer
	done := make(chan int, 1)
	go func() { done <- run(d.listenArgs("--reconnect=false"), &out, &errs) }()
	// Subscribed for sure: an event has arrived.
	testkit.EventuallyNoError(t, 30*time.Second, "listen to connect and receive an event", func() error {
		if !errs.Contains("connected to") || len(out.lines()) == 0 {
			return fmt.Errorf("stderr so far:\n%s", errs.String())
		}
		return nil
	})
	d.stop()
	select {
	case code := <-done:
		if code == 0 || !strings.Contains(errs.String(), "--reconnect=false") {
			t.Fatalf("listen exited %d with stderr:\n%s\nwant a non-zero exit that names --reconnect=false", code, errs.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatal("listen --reconnect=false kept running after the gateway went away")
	}
}
