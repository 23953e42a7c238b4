package netlimit

import (
	"errors"
	"log/slog"
	"net"
	"os"
	"strings"
	"syscall"
	"testing"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/testkit"
)

// TestRunningOutOfDescriptorsWarnsAndCounts really runs the process out of
// descriptors: it lowers this test process's own soft limit to what is open,
// so accepting a waiting connection fails with EMFILE.
func TestRunningOutOfDescriptorsWarnsAndCounts(t *testing.T) {
	var orig syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &orig); err != nil {
		t.Skipf("cannot read the open file limit: %v", err)
	}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var logs testkit.Buffer
	exhausted, err := ExhaustedCounter(prometheus.NewRegistry(), "ws")
	if err != nil {
		t.Fatal(err)
	}
	ln := Wrap(raw, Config{Name: "ws", Exhausted: exhausted, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	defer ln.Close()
	client, err := net.Dial("tcp", ln.Addr().String()) // waits in the accept queue
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()

	// Take every descriptor below the highest one open, then forbid more.
	entries, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Skipf("cannot list open descriptors: %v", err)
	}
	lowered := orig
	lowered.Cur = uint64(len(entries) + 8)
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &lowered); err != nil {
		t.Skipf("cannot lower the open file limit: %v", err)
	}
	var fillers []*os.File
	restore := func() {
		for _, f := range fillers {
			f.Close()
		}
		fillers = nil
		_ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &orig)
	}
	defer restore()
	for {
		f, err := os.Open(os.DevNull)
		if err != nil {
			if !errors.Is(err, syscall.EMFILE) {
				t.Fatalf("filling descriptors: %v", err)
			}
			break
		}
		fillers = append(fillers, f)
	}
	for range 3 {
		if _, err := ln.Accept(); !errors.Is(err, syscall.EMFILE) {
			restore()
			t.Fatalf("Accept with no descriptor left: %v, want EMFILE", err)
		}
	}
	restore()
	if got := counterValue(t, exhausted); got != 3 {
		t.Errorf("ccevents_too_many_open_files_total = %v, want 3", got)
	}
	out := logs.String()
	if strings.Count(out, "level=WARN") != 1 || !strings.Contains(out, "too many open files") || !strings.Contains(out, "listener=ws") {
		t.Errorf("want one warning (at most one a second) naming the listener, got:\n%s", out)
	}
	c, err := ln.Accept()
	if err != nil {
		t.Fatalf("Accept once descriptors are free: %v", err)
	}
	c.Close()
}
