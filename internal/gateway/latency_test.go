package gateway

import (
	"fmt"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/ccevents/ccevents/internal/wstest"
)

// latencySamples is the sample count of the delivery latency histogram.
func (e *env) latencySamples() (uint64, float64) {
	e.t.Helper()
	mfs, err := e.reg.Gather()
	if err != nil {
		e.t.Fatalf("gather metrics: %v", err)
	}
	for _, mf := range mfs {
		if mf.GetName() == "ccevents_ws_delivery_latency_seconds" {
			h := mf.GetMetric()[0].GetHistogram()
			return h.GetSampleCount(), h.GetSampleSum()
		}
	}
	e.t.Fatal("no ccevents_ws_delivery_latency_seconds in /metrics")
	return 0, 0
}

func TestDeliveryLatencyCountsEachLiveDeliveryOnce(t *testing.T) {
	e := newEnv(t, Config{})
	acc := e.account("")
	tok := e.token(acc)
	binding := "qubicle.queue." + acc + ".*"
	for range 3 {
		e.publish("qubicle.queue." + acc + ".Q1.join")
	}
	live := e.dial()
	live.Subscribe(tok, acc, binding)
	resumed := e.dial()
	sinceSubscribe(resumed, tok, acc, 0, e.bus.Epoch(), binding)
	for range 3 {
		resumed.Event()
	}
	resumed.Ping() // the resume, replay included, is over
	if n, _ := e.latencySamples(); n != 0 {
		t.Fatalf("%d latency samples before any live event; replies, pongs and replayed events must not count", n)
	}
	for range 2 {
		e.publish("qubicle.queue." + acc + ".Q2.join")
	}
	for _, c := range []*wstest.Conn{live, resumed} {
		for range 2 {
			if ev := c.Event(); ev.RoutingKey != "qubicle.queue."+acc+".Q2.join" {
				t.Fatalf("unexpected event %s", ev.RoutingKey)
			}
		}
	}
	// Written before it was read, but counted just after the write returns.
	testkit.Eventually(t, waitLong, "4 latency samples (2 live events × 2 clients)", func() bool { n, _ := e.latencySamples(); return n >= 4 })
	live.Ping()
	resumed.Ping()
	if n, sum := e.latencySamples(); n != 4 || sum <= 0 {
		t.Errorf("latency histogram has %d samples summing to %gs; want 4 samples with a positive sum", n, sum)
	}
}

// BenchmarkWroteObservesLatency measures what counting the delivery
// latency adds per written frame: one clock read per write and one
// histogram sample per live frame, with no allocation. (A flusher round
// of many connections reads the clock once for all of them.)
func BenchmarkWroteObservesLatency(b *testing.B) {
	for _, frames := range []int{1, 32} {
		b.Run(fmt.Sprintf("frames=%d", frames), func(b *testing.B) {
			e := newEnv(b, Config{PingInterval: -1})
			c := e.loopbackConn()
			at := make([]int64, frames)
			for i := range at {
				at[i] = time.Now().UnixNano()
			}
			b.ReportAllocs()
			for b.Loop() {
				c.out.writingAt, c.out.reported = at, 0
				c.wrote(frames, &writeClock{})
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*frames), "ns/frame")
		})
	}
}
