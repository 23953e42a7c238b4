package sipfront_test

import (
	"context"
	"os"
	"os/exec"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/diago"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/sipfront"
)

// sippCalls is how many calls SIPp places at once in the acceptance test.
const sippCalls = 50

// Debian's SIPp places 50 concurrent calls to a queue's number; 50
// registered phones answer whatever rings. Every call is queued, offered,
// delivered and ends with session.delete, and SIPp counts no failure.
func TestSIPpFiftyConcurrentCallsAreAllAnswered(t *testing.T) {
	sipp, err := exec.LookPath("sipp")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Fatal("sipp is missing: scripts/install-test-deps.sh installs Debian's sip-tester")
		}
		t.Skip("sipp is missing: apt-get install -y sip-tester")
	}
	if testing.Short() {
		t.Skip("places 50 real calls")
	}
	r := newRig(t, sipfront.Config{})
	r.queue(engine.QueueConfig{ID: "load", Name: "Load", OfferTimeoutS: 30, FinalizeTimeoutS: 1}, "2000")
	for i := range sippCalls {
		id := "agent" + strconv.Itoa(i)
		user, pw := r.agent(id, false, "load")
		p := newPhone(t, r.ctx, "udp")
		p.answer = func(d *diago.DialogServerSession) {
			med, err := d.Answer(diago.AnswerOptions{})
			if err != nil {
				return
			}
			ar, _ := med.AudioReader()
			aw, _ := med.AudioWriter()
			go (&audio{}).listen(ar, callerTone)
			talk(d.Context(), aw, agentTone)
		}
		r.ok(p.register(r.ctx, r.sip.Addr(), user, pw))
	}
	dir := t.TempDir()
	ctx, cancel := context.WithTimeout(r.ctx, 3*time.Minute)
	defer cancel()
	// Each call lasts 3 s after answer; all 50 start within a second.
	cmd := exec.CommandContext(ctx, sipp, "-sn", "uac", "-s", "2000", r.sip.Addr(),
		"-i", "127.0.0.1", "-p", strconv.Itoa(freePort(t, "udp")),
		"-m", strconv.Itoa(sippCalls), "-l", strconv.Itoa(sippCalls), "-r", strconv.Itoa(sippCalls),
		"-d", "3000", "-recv_timeout", "60000", "-timeout", "150s", "-timeout_error", "-nostdin",
		"-trace_stat", "-stf", dir+"/stat.csv", "-trace_err", "-error_file", dir+"/errors.log")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		errs, _ := os.ReadFile(dir + "/errors.log")
		t.Fatalf("sipp: %v\n%s\nerrors:\n%s", err, tail(out, 3000), tail(errs, 3000))
	}
	eventually(t, 30*time.Second, "every call ends with session.delete", func() bool {
		n := 0
		r.events.mu.Lock()
		for _, e := range r.events.evs {
			if e.Name == "session.delete" {
				n++
			}
		}
		r.events.mu.Unlock()
		return n == sippCalls
	})
	delivered := 0
	r.events.mu.Lock()
	for _, e := range r.events.evs {
		if e.Name == "recipient.delivered" {
			delivered++
		}
	}
	r.events.mu.Unlock()
	if delivered != sippCalls {
		t.Errorf("%d calls delivered to an agent, want %d", delivered, sippCalls)
	}
}

func tail(b []byte, n int) []byte {
	if len(b) > n {
		return b[len(b)-n:]
	}
	return b
}
