package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/peterbourgon/ff/v3"

	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/ccevents/ccevents/internal/wstest"
	"github.com/ccevents/ccevents/protocol"
)

func TestServeWritesRootAndDemoFilesForTheOwnerOnly(t *testing.T) {
	d := startDemoServer(t)
	for _, name := range []string{"root.json", "demo.json"} {
		path := filepath.Join(d.dataDir, name)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", name, st.Mode().Perm())
		}
	}
	var root map[string]string
	raw, _ := os.ReadFile(filepath.Join(d.dataDir, "root.json"))
	if err := json.Unmarshal(raw, &root); err != nil || len(root["account_id"]) != 32 || len(root["api_key"]) == 0 {
		t.Errorf("root.json = %s", raw)
	}
	var demo demoInfo
	raw, _ = os.ReadFile(filepath.Join(d.dataDir, "demo.json"))
	if err := json.Unmarshal(raw, &demo); err != nil || demo.AuthToken == "" || demo.WSURL != d.wsURL || demo.APIURL != d.apiURL {
		t.Errorf("demo.json = %s", raw)
	}
}

func TestRunRefusesBadSettingsWithASentence(t *testing.T) {
	tests := []struct {
		name string
		args []string
		code int
		want string
	}{
		{"unknown role", []string{"serve", "--roles", "gateway,router"}, 1, `unknown role "router"`},
		{"demo without engine", []string{"serve", "--demo", "--roles", "gateway"}, 1, "--demo needs every role"},
		{"bad size", []string{"serve", "--history-max-bytes", "lots"}, 2, `"lots" is not a size`},
		{"nats not a url", []string{"serve", "--nats", "localhost"}, 1, "is not a URL"},
		{"unknown flag", []string{"serve", "--colour"}, 2, "unknown flag --colour"},
		{"unknown subcommand", []string{"serf"}, 2, `unknown subcommand "serf"`},
		{"token without account", []string{"token"}, 1, "--account is required"},
		{"token with a negative ttl", []string{"token", "--account", strings.Repeat("a", 32), "--ttl", "-1h"}, 1, "--ttl must be above 0 and at most 24h0m0s (e.g. 30m or 12h), got -1h0m0s"},
		{"token with a zero ttl", []string{"token", "--account", strings.Repeat("a", 32), "--ttl", "0s"}, 1, "--ttl must be above 0"},
		{"token ttl beyond the maximum", []string{"token", "--account", strings.Repeat("a", 32), "--ttl", "48h"}, 1, "at most 24h0m0s"},
		{"serve with a zero token ttl", []string{"serve", "--token-ttl", "0s"}, 1, "--token-ttl must be above 0"},
		{"bad log level", []string{"serve", "--log-level", "loud"}, 1, `"loud" is not one of debug`},
		{"no replay turns", []string{"serve", "--replay-concurrency", "0"}, 1, "--replay-concurrency must be at least 1, got 0"},
		{"not a boolean", []string{"serve", "--io-uring=maybe"}, 2, `invalid boolean value "maybe" for -io-uring`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var out, errs bytes.Buffer
			code := run(tc.args, &out, &errs)
			if code != tc.code || !strings.Contains(errs.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want exit %d and %q", code, errs.String(), tc.code, tc.want)
			}
		})
	}
}

func TestServeSettingsComeFromFlagsEnvironmentAndConfigFile(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "ccevents.conf")
	if err := os.WriteFile(conf, []byte("api-addr :9100\nhistory-max-age 48h\nws-addr :7000\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CCEVENTS_WS_ADDR", ":6000")
	t.Setenv("CCEVENTS_HISTORY_MAX_BYTES", "2GiB")
	t.Setenv("CCEVENTS_IO_URING", "false")
	cmd := newServeCommand(&bytes.Buffer{}, &bytes.Buffer{})
	if err := cmd.Parse([]string{"--config", conf, "--api-addr", ":9200"}); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"api-addr":          ":9200", // flag beats environment and file
		"ws-addr":           ":6000", // environment beats file
		"history-max-age":   "48h0m0s",
		"history-max-bytes": "2GiB",
		"data-dir":          "ccevents-data", // default
		"io-uring":          "false",
	}
	for name, v := range want {
		if got := cmd.FlagSet.Lookup(name).Value.String(); got != v {
			t.Errorf("%s = %q, want %q", name, got, v)
		}
	}
}

// TestServeShutsDownGracefullyOnSIGTERM runs the real binary as an operator
// would and stops it with SIGTERM: clients get a notice and a 1001 close,
// and the process exits 0 within its shutdown timeout.
func TestServeShutsDownGracefullyOnSIGTERM(t *testing.T) {
	bin := ccevents(t)
	dataDir := t.TempDir()
	wsAddr, api := testkit.FreeAddr(t), testkit.FreeAddr(t)
	var stderr testkit.Buffer // the process writes it while the test reads it
	cmd := exec.Command(bin, "serve", "--demo", "--data-dir", dataDir, "--ws-addr", wsAddr, "--api-addr", api,
		"--nats-listen", "", "--shutdown-timeout", "5s")
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		_ = cmd.Process.Kill()
	}()

	var demo demoInfo
	testkit.EventuallyNoError(t, 60*time.Second, "demo.json", func() error {
		raw, err := os.ReadFile(filepath.Join(dataDir, "demo.json"))
		if err == nil {
			_ = json.Unmarshal(raw, &demo)
		}
		if demo.AuthToken == "" {
			return fmt.Errorf("no token in it yet (%v); serve printed:\n%s", err, stderr.String())
		}
		return nil
	})
	conn := wstest.Dial(t, "ws://"+wsAddr)
	conn.ReadWait = 20 * time.Second
	sub := `{"action":"subscribe","auth_token":"` + demo.AuthToken + `","request_id":"s","data":{"account_id":"` + demo.AccountID + `","binding":"qubicle.*.` + demo.AccountID + `.#"}}`
	conn.Send(sub)
	// An established, subscribed client: wait for the reply first.
	if reply, err := conn.Next(); err != nil || !bytes.Contains(reply, []byte(`"status":"success"`)) {
		t.Fatalf("subscribe reply %s, %v", reply, err)
	}
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	// Read until the close frame: a notice must come first.
	sawNotice := false
	var closeCode protocol.CloseCode
	for closeCode == 0 {
		msg, err := conn.Next()
		if err != nil {
			var closed wstest.Closed
			if errors.As(err, &closed) {
				closeCode = closed.Code
				break
			}
			t.Fatalf("read before close: %v (notice seen: %v)", err, sawNotice)
		}
		if bytes.Contains(msg, []byte(`"action":"notice"`)) {
			sawNotice = true
		}
	}
	if !sawNotice || closeCode != protocol.CloseGoingAway {
		t.Errorf("notice %v, close code %d; want a notice then 1001", sawNotice, closeCode)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("serve exited with %v after SIGTERM:\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Fatal("serve did not exit within 20s of SIGTERM")
	}
	// Nothing must still hold the ports.
	for _, addr := range []string{wsAddr, api} {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Errorf("%s still in use after exit: %v", addr, err)
			continue
		}
		ln.Close()
	}
}

func TestDemoListensOnLoopbackUnlessAddressesAreGiven(t *testing.T) {
	tests := []struct {
		name         string
		args         []string
		env          map[string]string
		wantWS, want string
	}{
		{"demo alone", []string{"--demo"}, nil, "127.0.0.1:5555", "127.0.0.1:8000"},
		{"demo with a websocket address", []string{"--demo", "--ws-addr", ":6000"}, nil, ":6000", "127.0.0.1:8000"},
		{"demo with the API address from the environment", []string{"--demo"}, map[string]string{"CCEVENTS_API_ADDR": "0.0.0.0:8000"}, "127.0.0.1:5555", "0.0.0.0:8000"},
		{"no demo", nil, nil, ":5555", ":8000"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			var cfg serveConfig
			fs := flag.NewFlagSet("serve", flag.ContinueOnError)
			cfg.register(fs)
			if err := ff.Parse(fs, tc.args, ff.WithEnvVarPrefix("CCEVENTS")); err != nil {
				t.Fatal(err)
			}
			cfg.keepDemoOnLoopback(fs)
			if cfg.WSAddr != tc.wantWS || cfg.APIAddr != tc.want {
				t.Errorf("ws-addr %q, api-addr %q; want %q, %q", cfg.WSAddr, cfg.APIAddr, tc.wantWS, tc.want)
			}
		})
	}
}

func TestConfigFileMistakeNamesTheFileAndLine(t *testing.T) {
	tests := []struct {
		name, content, want string
	}{
		{"typo", "ws-addr :7000\n# history\nhistroy-max-age 48h\n", `line 3: unknown setting "histroy-max-age"; did you mean history-max-age?`},
		{"no such setting", "api-addr :9000\ncolour blue\n", `line 2: unknown setting "colour"; ` + "`ccevents serve --help` lists every setting"},
		{"bad value", "history-max-bytes lots\n", `line 1: history-max-bytes: "lots" is not a size`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			conf := filepath.Join(t.TempDir(), "ccevents.conf")
			if err := os.WriteFile(conf, []byte(tc.content), 0o600); err != nil {
				t.Fatal(err)
			}
			var out, errs bytes.Buffer
			code := run([]string{"serve", "--config", conf}, &out, &errs)
			want := "ccevents: config file " + conf + ", " + tc.want
			if code != 2 || !strings.Contains(errs.String(), want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, errs.String(), want)
			}
		})
	}
}
