package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ccevents/ccevents/internal/testkit"
)

// otherUserEnv makes this test binary act as another OS user's probe (see
// probeAsAnotherUser) instead of running tests.
const otherUserEnv = "CCEVENTS_TEST_OTHER_USER"

func TestMain(m *testing.M) {
	if os.Getenv(otherUserEnv) != "" {
		probeAsAnotherUser(os.Stdout, os.Getenv("CCEVENTS_TEST_NATS"), os.Getenv("CCEVENTS_TEST_DATA_DIR"))
		os.Exit(0)
	}
	code := m.Run()
	os.RemoveAll(binDir)
	os.Exit(code)
}

// attempt is one thing the other user tried; Got says what it obtained
// ("" when it was refused) and Refusal why not.
type attempt struct {
	What    string `json:"what"`
	Got     string `json:"got,omitempty"`
	Refusal string `json:"refusal,omitempty"`
}

// probeAsAnotherUser tries what a local user who is not ccevents' user can
// do against a running ccevents: read its credentials and keys from the
// data dir, and read the signing keys over NATS without credentials. It
// writes one JSON attempt per line.
func probeAsAnotherUser(w io.Writer, natsURL, dataDir string) {
	enc := json.NewEncoder(w)
	for _, name := range []string{"root.json", "signing.key", "nats/ccevents.nk", "nats/producer.nk"} {
		a := attempt{What: "read " + name}
		if raw, err := os.ReadFile(filepath.Join(dataDir, name)); err != nil {
			a.Refusal = err.Error()
		} else {
			a.Got = fmt.Sprintf("%d bytes", len(raw))
		}
		_ = enc.Encode(a)
	}
	a := attempt{What: "read the signing keys over NATS without credentials"}
	nc, err := nats.Connect(natsURL, nats.Timeout(5*time.Second))
	if err != nil {
		a.Refusal = err.Error()
		_ = enc.Encode(a)
		return
	}
	defer nc.Close()
	reply, err := nc.Request("$JS.API.STREAM.MSG.GET.KV_ccevents_auth", []byte(`{"last_by_subj":"$KV.ccevents_auth.signing.>"}`), 5*time.Second)
	if err != nil {
		a.Refusal = err.Error()
	} else {
		a.Got = string(reply.Data)
	}
	_ = enc.Encode(a)
}

// TestAnotherOSUserCannotReachTheSigningKeys runs a probe as uid 65534
// (nobody) against a running ccevents whose NATS listens on loopback: it
// must neither read the credentials and keys in the data dir, nor read the
// signing keys over NATS.
func TestAnotherOSUserCannotReachTheSigningKeys(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("running a process as another user (uid 65534) needs root; CI runs as root")
	}
	// The data dir sits where every user may look, as /var/lib does.
	open, err := os.MkdirTemp("", "ccevents-otheruser-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(open) })
	if err := os.Chmod(open, 0o755); err != nil {
		t.Fatal(err)
	}
	dataDir := filepath.Join(open, "data")
	natsAddr, _ := serveWithNATSListener(t, dataDir)

	// The probe is this test binary, copied where the other user may run it.
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	probe := filepath.Join(open, "probe")
	raw, err := os.ReadFile(self)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(probe, raw, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(probe, "-test.run=^$")
	cmd.Dir = open
	cmd.Env = []string{otherUserEnv + "=1", "CCEVENTS_TEST_NATS=nats://" + natsAddr, "CCEVENTS_TEST_DATA_DIR=" + dataDir, "HOME=/nonexistent"}
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 65534, Gid: 65534}}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("the probe as uid 65534 failed: %v\n%s", err, stderr.String())
	}
	var n int
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		var a attempt
		if err := json.Unmarshal(sc.Bytes(), &a); err != nil {
			t.Fatalf("probe output %q: %v", sc.Text(), err)
		}
		n++
		if a.Got != "" {
			t.Errorf("another user could %s: got %.200s", a.What, a.Got)
		} else {
			t.Logf("%s: refused (%s)", a.What, a.Refusal)
		}
	}
	if n != 5 {
		t.Fatalf("the probe reported %d attempts, want 5:\n%s", n, out)
	}
}

// serveWithNATSListener runs `ccevents serve` in this process with its
// NATS listening on loopback, until the test ends, and returns the NATS and
// REST API addresses once it is ready.
func serveWithNATSListener(t *testing.T, dataDir string) (natsAddr, apiAddr string) {
	t.Helper()
	natsAddr, apiAddr = testkit.FreeAddr(t), testkit.FreeAddr(t)
	args := []string{"--data-dir", dataDir, "--ws-addr", testkit.FreeAddr(t), "--api-addr", apiAddr, "--nats-listen", natsAddr, "--log-level", "error"}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	var errs syncBuffer
	go func() { done <- newServeCommand(io.Discard, &errs).ParseAndRun(ctx, args) }()
	t.Cleanup(func() { cancel(); <-done })
	waitReady(t, "http://"+apiAddr, filepath.Join(dataDir, "root.json"), done, &errs, nil)
	return natsAddr, apiAddr
}

// waitReady waits until the REST API answers /readyz and file exists (and
// read, unless nil, accepts what it holds), or fails the test when serve
// exits first.
func waitReady(t *testing.T, apiURL, file string, done <-chan error, errs *syncBuffer, read func([]byte) error) {
	t.Helper()
	testkit.EventuallyNoError(t, 60*time.Second, "serve to be ready", func() error {
		select {
		case err := <-done:
			t.Fatalf("serve exited early: %v\n%s", err, errs.String())
		default:
		}
		raw, err := os.ReadFile(file)
		if err == nil && read != nil {
			err = read(raw)
		}
		if err != nil {
			return fmt.Errorf("%w; serve printed:\n%s", err, strings.TrimSpace(errs.String()))
		}
		resp, err := http.Get(apiURL + "/readyz")
		if err != nil {
			return err
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("/readyz answered %d; serve printed:\n%s", resp.StatusCode, strings.TrimSpace(errs.String()))
		}
		return nil
	})
}
