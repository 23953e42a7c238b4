package gateway

import (
	"runtime"
	"testing"
	"time"
)

// BenchmarkFlushRound measures what the flushers do when an event goes to
// many connections with empty queues: one frame to each of 32 loopback
// connections, written with a writev each or with one io_uring round.
// One op is the whole round; delivery-ns is the cost of one frame.
func BenchmarkFlushRound(b *testing.B) {
	for _, path := range writePaths(b) {
		b.Run(path.name, func(b *testing.B) {
			e := newEnv(b, Config{PingInterval: -1, NoIOUring: path.noIOUring})
			conns := make([]*conn, ringConns)
			for i := range conns {
				conns[i] = e.loopbackConn()
			}
			ready := make(chan *conn, len(conns))
			ring, err := e.srv.newRingWriter()
			if err != nil {
				b.Fatal(err)
			}
			f := newFlusher(ready, ring)
			if ring != nil {
				b.Cleanup(ring.close)
			}
			frame := encodeBenchFrame()
			b.ReportAllocs()
			for b.Loop() {
				stored := time.Now().UnixNano()
				for _, c := range conns {
					c.out.fill(frame, stored, 1)
				}
				if ring != nil {
					for _, c := range conns[1:] {
						ready <- c
					}
					f.flushRound(conns[0])
				} else {
					for _, c := range conns {
						f.flush(c)
					}
				}
				for _, c := range conns {
					for !c.out.idle() {
						runtime.Gosched() // a full socket: its writer finishes
					}
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*len(conns)), "delivery-ns")
		})
	}
}
