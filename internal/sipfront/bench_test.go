package sipfront_test

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/sipfront"
	"github.com/ccevents/ccevents/internal/testkit"
)

// BenchmarkQueueCalls measures what calls cost the SIP front end: SIPp
// places SIPBENCH_CALLS calls (default 200) at SIPBENCH_RATE per second
// (default 20) to a queue's number, each held SIPBENCH_HOLD_S seconds
// (default 10) after the answer, echoing the audio it hears; agents'
// phones in a helper process (this test binary again) answer and say a
// tone. So every bridged call relays RTP both ways, and at the plateau
// RATE × HOLD calls are bridged at once.
//
// It reports the calls set up per second, the most calls bridged at once,
// and CPU per call of ccevents alone (this process: front end, engine and
// embedded NATS), of the agents' phones and of SIPp. Run it once:
//
//	go test -run '^$' -bench QueueCalls -benchtime 1x ./internal/sipfront
func BenchmarkQueueCalls(b *testing.B) {
	calls, rate, hold := envInt("SIPBENCH_CALLS", 200), envInt("SIPBENCH_RATE", 20), envInt("SIPBENCH_HOLD_S", 10)
	agents := rate*(hold+3) + 10 // every call bridged at the plateau, and some ringing
	reg := prometheus.NewRegistry()
	r := newRig(b, sipfront.Config{Registerer: reg, RequestRate: -1, MaxCalls: 4 * agents})
	r.queue(engine.QueueConfig{ID: "bench", Name: "Bench", OfferTimeoutS: 30, FinalizeTimeoutS: 1}, "4000")
	var spec []string
	for i := range agents {
		user, pw := r.agent("agent"+strconv.Itoa(i), false, "bench")
		spec = append(spec, user+":"+pw)
	}
	phones := startAgentPhones(b, r.sip.Addr(), spec)

	for b.Loop() {
		ctx, cancel := context.WithTimeout(r.ctx, time.Duration(calls/rate+hold+120)*time.Second)
		before := cpuSelf()
		start := time.Now()
		peak := make(chan float64)
		stopSampling := make(chan struct{})
		go func() { // the most calls bridged at once
			most := 0.0
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for {
				select {
				case <-stopSampling:
					peak <- most
					return
				case <-t.C:
					most = max(most, metricValue(b, reg, "ccevents_sip_legs", "kind", "agent"))
				}
			}
		}()
		sipp := sippCallers(b, ctx, r.sip.Addr(), "4000", true,
			"-m", strconv.Itoa(calls), "-r", strconv.Itoa(rate), "-l", strconv.Itoa(agents), "-d", strconv.Itoa(hold*1000))
		elapsed := time.Since(start)
		close(stopSampling)
		most := <-peak
		cancel()
		testkit.Eventually(b, 60*time.Second, "every call is over", func() bool {
			return metricValue(b, reg, "ccevents_sip_legs", "kind", "caller") == 0 && metricValue(b, reg, "ccevents_sip_legs", "kind", "agent") == 0
		})
		own := cpuSelf() - before
		sippCPU := sipp.UserTime() + sipp.SystemTime()
		setup := elapsed - time.Duration(hold)*time.Second // the last call was placed this long after the first
		b.ReportMetric(float64(calls)/setup.Seconds(), "calls_set_up/s")
		b.ReportMetric(most, "bridged_at_once")
		b.ReportMetric(float64(own.Milliseconds())/float64(calls), "ccevents_cpu_ms/call")
		b.ReportMetric(float64(sippCPU.Milliseconds())/float64(calls), "sipp_cpu_ms/call")
		b.ReportMetric(float64(own.Milliseconds())/elapsed.Seconds()/10, "ccevents_cpu_%")
	}
	b.ReportMetric(float64(phones.cpu().Milliseconds())/float64(calls), "agents_cpu_ms/call")
	// Of the hold time's 50 frames a second, how many made the round trip
	// agent → ccevents → SIPp → ccevents → agent.
	b.ReportMetric(float64(phones.echoed)/float64(calls*hold*50), "echoed_share")
	b.ReportMetric(float64(phones.heard)/float64(calls), "frames_heard/call")
}

func envInt(name string, def int) int {
	if n, err := strconv.Atoi(os.Getenv(name)); err == nil && n > 0 {
		return n
	}
	return def
}

// cpuSelf is the CPU time this process has used.
func cpuSelf() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// agentPhones is the helper process running the agents' phones.
type agentPhones struct {
	cmd   *exec.Cmd
	stdin interface{ Close() error }
	done  chan struct{}
	// Audio frames the phones heard, and those carrying their own tone
	// back (relayed by ccevents to SIPp, echoed, relayed back).
	heard, echoed int
}

// startAgentPhones runs TestBenchAgentPhones in a child process, which
// registers a phone per "user:password" with ccevents at addr; it returns
// once they are all registered.
func startAgentPhones(b *testing.B, addr string, spec []string) *agentPhones {
	cmd := exec.Command(os.Args[0], "-test.run", "^TestBenchAgentPhones$", "-test.v", "-test.timeout", "0")
	cmd.Env = append(os.Environ(), "SIPBENCH_AGENTS="+addr+" "+strings.Join(spec, ","))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	p := &agentPhones{cmd: cmd, stdin: stdin, done: make(chan struct{})}
	b.Cleanup(func() { p.cpu() })
	ready := make(chan struct{})
	go func() {
		defer close(p.done)
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if s.Text() == "phones registered" {
				close(ready)
			}
			_, _ = fmt.Sscanf(s.Text(), "frames heard %d echoed %d", &p.heard, &p.echoed)
		}
	}()
	select {
	case <-ready:
	case <-p.done:
		b.Fatal("the agents' phones did not register")
	case <-time.After(2 * time.Minute):
		b.Fatal("the agents' phones did not register in 2 minutes")
	}
	return p
}

// cpu ends the helper process and returns the CPU time it used.
func (p *agentPhones) cpu() time.Duration {
	if p.cmd.ProcessState == nil {
		_ = p.stdin.Close()
		<-p.done
		_ = p.cmd.Wait()
	}
	return p.cmd.ProcessState.UserTime() + p.cmd.ProcessState.SystemTime()
}

// TestBenchAgentPhones is BenchmarkQueueCalls' helper process: agents'
// phones that answer every call and say a tone, until stdin closes.
func TestBenchAgentPhones(t *testing.T) {
	spec := os.Getenv("SIPBENCH_AGENTS")
	if spec == "" {
		t.Skip("the helper process of BenchmarkQueueCalls")
	}
	addr, users, _ := strings.Cut(spec, " ")
	heard := listenFor(agentTone) // all phones' together
	for _, up := range strings.Split(users, ",") {
		user, pw, _ := strings.Cut(up, ":")
		p := newPhone(t, t.Context(), "udp", answerAndTalk(heard, agentTone))
		if err := p.register(t.Context(), addr, user, pw); err != nil {
			t.Fatalf("register %s: %v", user, err)
		}
	}
	fmt.Println("phones registered")
	_, _ = bufio.NewReader(os.Stdin).ReadByte() // until the benchmark closes stdin
	fmt.Printf("frames heard %d echoed %d\n", heard.count(), heard.toneFrames(agentTone, alone))
}
