//go:build unix

package gateway

import (
	"fmt"
	"runtime"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/uring"
	"github.com/ccevents/ccevents/internal/wstest"
	"github.com/gobwas/ws"
)

func TestCutWrittenDropsWhatTheSocketTook(t *testing.T) {
	tests := []struct {
		name    string
		frames  []string
		written int
		want    []string
	}{
		{"nothing", []string{"abc", "de"}, 0, []string{"abc", "de"}},
		{"inside the first", []string{"abc", "de"}, 2, []string{"c", "de"}},
		{"exactly the first", []string{"abc", "de"}, 3, []string{"de"}},
		{"inside the second", []string{"abc", "de"}, 4, []string{"e"}},
		{"over an empty frame", []string{"abc", "", "de"}, 3, []string{"", "de"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			frames := make([][]byte, len(tt.frames))
			for i, f := range tt.frames {
				frames[i] = []byte(f)
			}
			var got []string
			for _, f := range cutWritten(frames, tt.written) {
				got = append(got, string(f))
			}
			if !slices.Equal(got, tt.want) {
				t.Errorf("cutWritten(%q, %d) = %q, want %q", tt.frames, tt.written, got, tt.want)
			}
		})
	}
}

// A client that stops reading fills its socket: the flusher hands what is
// left to a writer that waits, and once the client reads again every event
// arrives whole, once and in order.
// Both write paths: io_uring rounds (the default where the kernel allows
// it) and one writev per connection.
func TestEventsStayWholeAndInOrderThroughAFullSocket(t *testing.T) {
	for _, path := range writePaths(t) {
		t.Run(path.name, func(t *testing.T) {
			testEventsThroughAFullSocket(t, path.noIOUring)
		})
	}
}

type writePath struct {
	name      string
	noIOUring bool
}

// writePaths lists the flushers' ways of writing that this machine has.
func writePaths(t testing.TB) []writePath {
	paths := []writePath{{"writev", true}}
	r, err := uring.New(1)
	if err != nil {
		t.Logf("not testing io_uring rounds: %v", err)
		return paths
	}
	r.Close()
	return append(paths, writePath{"io_uring", false})
}

func testEventsThroughAFullSocket(t *testing.T, noIOUring bool) {
	e := newEnv(t, Config{OutboundMaxMessages: 10000, OutboundMaxBytes: 64 << 20, NoIOUring: noIOUring})
	acc := e.account("")
	binding := "qubicle.queue." + acc + ".*"
	c := wstest.DialWith(t, e.url, ws.Dialer{NetDial: dialSmallReceiveBuffer}).Buffered()
	c.Subscribe(e.token(acc), acc, binding)

	// Not reading while the events go out.
	var published []uint64
	payload := fmt.Appendf(nil, `{"account_id":%q,"pad":%q}`, acc, strings.Repeat("x", 2000))
	for i := 0; e.metric("ccevents_ws_socket_full_total") == 0; i++ {
		if i == 2000 {
			t.Fatal("the socket never filled")
		}
		seq, err := e.bus.Publish(e.ctx, fmt.Sprintf("qubicle.queue.%s.Q%d.join", acc, i%3), payload, "")
		if err != nil {
			t.Fatal(err)
		}
		published = append(published, seq)
	}
	end := "qubicle.queue." + acc + ".end.leave"
	published = append(published, e.publish(end))

	var got []uint64
	for {
		m := c.Event()
		got = append(got, m.Sequence)
		if m.RoutingKey == end {
			break
		}
	}
	if !slices.Equal(got, published) {
		t.Fatalf("received %d of %d events (first difference at %d)", len(got), len(published), firstDiff(got, published))
	}
	c.Ping()
}

// BenchmarkFlush measures a flusher writing a connection's queue: taking
// it under the lock, one non-blocking writev, giving the array back. A
// loopback peer reads everything; when it falls behind and the socket
// fills, the connection's own writer finishes the batch (counted in
// full/op) and the benchmark waits for it.
func BenchmarkFlush(b *testing.B) {
	for _, frames := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("frames=%d", frames), func(b *testing.B) {
			e := newEnv(b, Config{PingInterval: -1})
			c := e.loopbackConn()
			f := newFlusher(make(chan *conn, 1), nil)
			frame := encodeBenchFrame()
			full := 0
			b.ReportAllocs()
			b.SetBytes(int64(len(frame) * frames))
			for b.Loop() {
				c.out.fill(frame, time.Now().UnixNano(), frames)
				f.flush(c)
				for first := true; ; first = false {
					if c.out.idle() {
						break
					}
					if first {
						full++
					}
					runtime.Gosched()
				}
			}
			b.ReportMetric(float64(b.N*frames)/b.Elapsed().Seconds(), "frames/s")
			b.ReportMetric(float64(full)/float64(b.N), "full/op")
		})
	}
}
