package main

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

func TestServeRefusesATakenAddressAtOnceAndCreatesNothing(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, tc := range []struct {
		flag, want string
	}{
		{"--api-addr", "listen for the REST API on " + taken.Addr().String() + ": the address is already in use; is another ccevents (or another program) running? stop it or choose another address with --api-addr"},
		{"--ws-addr", "listen for websockets on " + taken.Addr().String() + ": the address is already in use; is another ccevents (or another program) running? stop it or choose another address with --ws-addr"},
	} {
		t.Run(tc.flag, func(t *testing.T) {
			dataDir := filepath.Join(t.TempDir(), "data")
			args := []string{"serve", "--data-dir", dataDir, "--nats-listen", "", "--api-addr", "127.0.0.1:0", "--ws-addr", "127.0.0.1:0", tc.flag, taken.Addr().String()}
			var out, errs bytes.Buffer
			if code := run(args, &out, &errs); code != 1 || !strings.Contains(errs.String(), tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 1 and %q", code, errs.String(), tc.want)
			}
			if _, err := os.Stat(dataDir); !os.IsNotExist(err) {
				t.Errorf("the data dir was created before the address was checked (stat: %v)", err)
			}
		})
	}
}

// TestServeNamesAnUnwritableDataDir runs serve as a user that may not
// write the data dir (nobody, when the tests run as root).
func TestServeNamesAnUnwritableDataDir(t *testing.T) {
	base := t.TempDir()
	dataDir := filepath.Join(base, "data")
	if err := os.MkdirAll(dataDir, 0o755); err != nil {
		t.Fatal(err)
	}
	// Let the other user reach the data dir; only the dir itself is not theirs.
	for _, d := range []string{base, filepath.Dir(base)} {
		if err := os.Chmod(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	args := []string{"serve", "--data-dir", dataDir, "--nats-listen", "", "--api-addr", "127.0.0.1:0", "--ws-addr", "127.0.0.1:0"}
	uid := os.Getuid()
	var stderr string
	if uid != 0 {
		if err := os.Chmod(dataDir, 0o555); err != nil {
			t.Fatal(err)
		}
		var out, errs bytes.Buffer
		if code := run(args, &out, &errs); code != 1 {
			t.Fatalf("exit %d, want 1; stderr %q", code, errs.String())
		}
		stderr = errs.String()
	} else {
		const nobody = 65534
		uid = nobody
		cmd := exec.Command(ccevents(t), args...)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: nobody, Gid: nobody}}
		cmd.Env = append(os.Environ(), "HOME=/")
		out, err := cmd.CombinedOutput()
		if ee, ok := err.(*exec.ExitError); !ok || ee.ExitCode() != 1 {
			t.Fatalf("serve as nobody: %v, want exit 1\n%s", err, out)
		}
		stderr = string(out)
	}
	want := "the data dir " + dataDir + " is not writable by this user (uid " + strconv.Itoa(uid) + "): permission denied; give the user ownership (chown -R) or choose another directory with --data-dir"
	if !strings.Contains(stderr, want) {
		t.Errorf("stderr %q\nwant %q", stderr, want)
	}
	if entries, _ := os.ReadDir(dataDir); len(entries) != 0 {
		t.Errorf("serve left %d entries in the data dir", len(entries))
	}
}
