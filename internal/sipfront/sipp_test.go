package sipfront_test

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/sipfront"
	"github.com/ccevents/ccevents/internal/testkit"
)

// sippCalls is how many calls SIPp places at once in the acceptance test.
const sippCalls = 50

// Debian's SIPp places 50 concurrent calls to a queue's number; 50
// registered phones answer whatever rings. Every call is queued, offered,
// delivered and ends with session.delete, and SIPp counts no failure.
func TestSIPpFiftyConcurrentCallsAreAllAnswered(t *testing.T) {
	if testing.Short() {
		t.Skip("places 50 real calls")
	}
	// SIPp and the 50 phones all send from 127.0.0.1: one address, which
	// the per-address rate limit would hold to 50 messages a second.
	r := newRig(t, sipfront.Config{RequestRate: -1})
	r.queue(engine.QueueConfig{ID: "load", Name: "Load", OfferTimeoutS: 30, FinalizeTimeoutS: 1}, "2000")
	for i := range sippCalls {
		id := "agent" + strconv.Itoa(i)
		user, pw := r.agent(id, false, "load")
		p := newPhone(t, r.ctx, "udp", answerAndTalk(listenFor(callerTone), agentTone))
		r.ok(p.register(r.ctx, r.sip.Addr(), user, pw))
	}
	ctx, cancel := context.WithTimeout(r.ctx, 3*time.Minute)
	defer cancel()
	// Each call lasts 3 s after answer; all 50 start within a second.
	sippCallers(t, ctx, r.sip.Addr(), "2000", false,
		"-m", strconv.Itoa(sippCalls), "-l", strconv.Itoa(sippCalls), "-r", strconv.Itoa(sippCalls), "-d", "3000", "-timeout", "150s")
	testkit.Eventually(t, 30*time.Second, "every call ends with session.delete", func() bool {
		return r.events.count("session.delete") == sippCalls
	})
	if n := r.events.count("recipient.delivered"); n != sippCalls {
		t.Errorf("%d calls delivered to an agent, want %d", n, sippCalls)
	}
}

// sippCallers runs Debian's SIPp placing calls to number at addr (its
// built-in uac scenario) with the extra arguments, and fails the test
// with SIPp's errors when a call failed. It returns SIPp's process state.
// SIPp picks its own SIP port. With echo it echoes RTP on a media port,
// which SIPp takes only as a number: another process may bind the port
// first, so SIPp, which stops before placing any call when it cannot bind
// it, runs again on another.
func sippCallers(t testing.TB, ctx context.Context, addr, number string, echo bool, extra ...string) *os.ProcessState {
	t.Helper()
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("sipp is missing: scripts/install-test-deps.sh installs Debian's sip-tester")
		}
		t.Skip("sipp is missing: apt-get install -y sip-tester")
	}
	for attempt := 1; ; attempt++ {
		dir := t.TempDir()
		args := append([]string{"-sn", "uac", "-s", number, addr, "-i", "127.0.0.1",
			"-recv_timeout", "60000", "-timeout_error", "-nostdin",
			"-trace_stat", "-stf", dir + "/stat.csv", "-trace_err", "-error_file", dir + "/errors.log"}, extra...)
		if echo {
			args = append(args, "-mi", "127.0.0.1", "-mp", strconv.Itoa(freePort(t)), "-rtp_echo")
		}
		cmd := exec.CommandContext(ctx, sipp, args...)
		cmd.Dir = dir
		out, err := cmd.CombinedOutput()
		if err == nil {
			return cmd.ProcessState
		}
		errs, _ := os.ReadFile(dir + "/errors.log")
		if echo && attempt < 5 && bytes.Contains(out, []byte("Unable to bind audio RTP socket")) {
			continue
		}
		t.Fatalf("sipp: %v\n%s\nerrors:\n%s", err, tail(out, 3000), tail(errs, 3000))
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
