package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/binding"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/gobwas/ws"
)

const benchAccount = "4f2a9c1e0b7d4e8fa1c2d3e4f5a6b7c8"

// benchPayload is a realistic ~300 byte queue.join payload.
var benchPayload = []byte(`{"account_id":"4f2a9c1e0b7d4e8fa1c2d3e4f5a6b7c8","event":"queue.join","event_id":"9b8c7d6e5f4a3b2c1d0e9f8a7b6c5d4e","timestamp":"2026-11-25T11:32:43.123Z","timestamp_ms":1795606363123,"queue_id":"a1b2c3d4e5f60718293a4b5c6d7e8f90","session_id":"0f1e2d3c4b5a69788796a5b4c3d2e1f0","position":3,"estimated_wait_s":42}`)

func TestEventFrameIsOneValidTextFrame(t *testing.T) {
	tests := []struct {
		name, payload, wantData string
	}{
		{"object", `{"a":1}`, `{"sequence":42,"a":1}`},
		{"empty object", `{}`, `{"sequence":42}`},
		{"spaces around", " \n{ \"a\" : [1, 2] }\n ", `{"sequence":42, "a" : [1, 2] }`},
		{"empty with spaces", `{ }`, `{"sequence":42 }`},
		{"large", `{"pad":"` + string(bytes.Repeat([]byte("x"), 70000)) + `"}`, `{"sequence":42,"pad":"` + string(bytes.Repeat([]byte("x"), 70000)) + `"}`},
	}
	b := &bindingKey{text: "qubicle.queue." + benchAccount + ".*", b: binding.MustParse("qubicle.queue." + benchAccount + ".*")}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, ok := newDelivery(bus.Message{Subject: "qubicle.queue." + benchAccount + ".Q1.join", Data: []byte(tt.payload), Sequence: 42})
			if !ok {
				t.Fatal("payload refused")
			}
			frame := encodeEventFrame(b, `"e1"`, &d)
			if cap(frame) != len(frame) {
				t.Errorf("frame allocation is %d bytes for %d used", cap(frame), len(frame))
			}
			f, err := ws.ReadFrame(bytes.NewReader(frame))
			if err != nil || !f.Header.Fin || f.Header.OpCode != ws.OpText || f.Header.Masked || int(f.Header.Length) != len(f.Payload) {
				t.Fatalf("not one final unmasked text frame: %+v %v", f.Header, err)
			}
			var got struct {
				Action, SubscribedKey, SubscriptionKey, RoutingKey, Name, Epoch string
				Sequence                                                        uint64
				Data                                                            json.RawMessage
			}
			if err := json.Unmarshal(f.Payload, &got); err != nil {
				t.Fatalf("payload %s: %v", f.Payload, err)
			}
			if string(got.Data) != tt.wantData || got.Sequence != 42 || got.Epoch != "e1" || got.Name != "join" {
				t.Fatalf("frame %s", f.Payload)
			}
		})
	}
}

func TestStoredEventsThatCannotBeFramedAreRefused(t *testing.T) {
	good := "qubicle.queue." + benchAccount + ".Q1.join"
	for _, m := range []bus.Message{
		{Subject: good, Data: []byte(`[1]`)},
		{Subject: good, Data: []byte(`{"a":`)},
		{Subject: good, Data: []byte(`{"a":1} {}`)},
		{Subject: good, Data: []byte(` `)},
		{Subject: good, Data: nil},
		{Subject: "qubicle.queue." + benchAccount + ".Q1", Data: []byte(`{}`)},
		{Subject: "qubicle.agent." + benchAccount + ".Q1.join", Data: []byte(`{}`)},
	} {
		if _, ok := newDelivery(m); ok {
			t.Errorf("accepted %s %q", m.Subject, m.Data)
		}
	}
}

func BenchmarkEncodeFrame(b *testing.B) {
	bd := &bindingKey{text: "qubicle.queue." + benchAccount + ".*", b: binding.MustParse("qubicle.queue." + benchAccount + ".*")}
	m := bus.Message{Subject: "qubicle.queue." + benchAccount + ".a1b2c3d4e5f60718293a4b5c6d7e8f90.join", Data: benchPayload, Sequence: 123456789}
	b.ReportAllocs()
	b.SetBytes(int64(len(benchPayload)))
	for b.Loop() {
		d, _ := newDelivery(m)
		_ = encodeEventFrame(bd, `"0123456789abcdef"`, &d)
	}
}

// BenchmarkFanOut measures the whole hot path, from the bus callback to the
// bytes arriving at 1,000 real loopback websocket clients subscribed with
// one account-wide binding: each op is one event, delivered 1,000 times.
func BenchmarkFanOut(b *testing.B) {
	const conns = 1000
	e := newEnv(b, Config{
		PingInterval:        -1,
		MaxConnsPerIP:       2 * conns,
		OutboundMaxMessages: 1 << 20,
		OutboundMaxBytes:    1 << 30,
	})
	acc := e.account("")
	tok := e.token(acc)
	counts := make([]atomic.Int64, conns)
	failed := make(chan error, conns)
	for i := range conns {
		c := e.dial()
		c.Subscribe(tok, acc, "qubicle.queue."+acc+".*")
		_ = c.NetConn().SetReadDeadline(time.Time{})
		buf := make([]byte, 64<<10)
		go func() { failed <- countFrames(c.Reader(), buf, &counts[i]) }()
	}
	l := e.srv.live
	subject := "qubicle.queue." + acc + ".a1b2c3d4e5f60718293a4b5c6d7e8f90.join"
	payload := bytes.ReplaceAll(benchPayload, []byte(benchAccount), []byte(acc))

	// behind waits until every client is at most window events behind n:
	// a steady stream, not a pile-up that only measures kernel buffers (and
	// exhausts the machine's TCP memory).
	behind := func(n, window int64) {
		for i := range counts {
			for counts[i].Load() < n-window {
				select {
				case err := <-failed:
					b.Fatalf("client %d stopped reading: %v", i, err)
				default:
					time.Sleep(50 * time.Microsecond)
				}
			}
		}
	}
	b.ReportAllocs()
	b.ResetTimer()
	start := time.Now()
	first := l.head.Load() + 1
	for i := range b.N {
		// The follower is idle (nothing is published), so this is the only
		// caller, as the bus guarantees.
		l.onMessage(bus.Message{Subject: subject, Data: payload, Sequence: first + uint64(i), Time: time.Now()})
		if i%64 == 63 {
			behind(int64(i+1), 256)
		}
	}
	behind(int64(b.N), 0)
	elapsed := time.Since(start)
	b.StopTimer()
	b.ReportMetric(float64(b.N)*conns/elapsed.Seconds(), "deliveries/s")
}

// countFrames counts the websocket frames arriving on r, without
// allocating, until r fails.
func countFrames(r io.Reader, buf []byte, n *atomic.Int64) error {
	var hdr [10]byte
	hn, want := 0, 2 // header bytes read and needed
	skip := 0        // payload bytes left in the current frame
	for {
		k, err := r.Read(buf)
		if err != nil {
			return err
		}
		p := buf[:k]
		for len(p) > 0 {
			if skip > 0 {
				s := min(skip, len(p))
				skip -= s
				p = p[s:]
				continue
			}
			hdr[hn] = p[0]
			hn++
			p = p[1:]
			if hn == 2 {
				switch hdr[1] & 0x7f {
				case 126:
					want = 4
				case 127:
					want = 10
				}
			}
			if hn < want {
				continue
			}
			switch want {
			case 2:
				skip = int(hdr[1] & 0x7f)
			case 4:
				skip = int(hdr[2])<<8 | int(hdr[3])
			default:
				skip = 0
				for _, c := range hdr[2:10] {
					skip = skip<<8 | int(c)
				}
			}
			hn, want = 0, 2
			n.Add(1)
		}
	}
}

// BenchmarkEnqueue measures queueing one frame for a connection whose
// writer is busy: the lock, the limit checks and the append.
func BenchmarkEnqueue(b *testing.B) {
	e := newEnv(b, Config{PingInterval: -1, OutboundMaxMessages: 1 << 20, OutboundMaxBytes: 1 << 30})
	c := e.loopbackConn()
	c.out.state = outWriting // a writer "runs": enqueue starts none
	frame := encodeBenchFrame()
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	i := 0
	stored := time.Now().UnixNano()
	for b.Loop() {
		c.enqueueLive(frame, stored)
		if i++; i%4096 == 0 {
			c.out.discard()
		}
	}
}

// BenchmarkWrite measures writing a batch of frames to a loopback TCP
// connection whose peer reads everything: one writev per batch.
func BenchmarkWrite(b *testing.B) {
	for _, frames := range []int{1, 16, 64} {
		b.Run(fmt.Sprintf("frames=%d", frames), func(b *testing.B) {
			e := newEnv(b, Config{PingInterval: -1})
			c := e.loopbackConn()
			frame := encodeBenchFrame()
			batch := make([][]byte, frames)
			b.ReportAllocs()
			b.SetBytes(int64(len(frame) * frames))
			for b.Loop() {
				// A write consumes its batch, as the writer's does.
				for i := range batch {
					batch[i] = frame
				}
				if err := c.write(batch); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N*frames)/b.Elapsed().Seconds(), "frames/s")
		})
	}
}

// encodeBenchFrame is the event frame of benchPayload for an account-wide
// binding.
func encodeBenchFrame() []byte {
	bd := &bindingKey{text: "qubicle.queue." + benchAccount + ".*", b: binding.MustParse("qubicle.queue." + benchAccount + ".*")}
	d, _ := newDelivery(bus.Message{Subject: "qubicle.queue." + benchAccount + ".a1b2c3d4e5f60718293a4b5c6d7e8f90.join", Data: benchPayload, Sequence: 123456789})
	return encodeEventFrame(bd, `"0123456789abcdef"`, &d)
}

// loopbackConn is a gateway connection on a loopback TCP connection whose
// client end is drained until the benchmark ends.
func (e *env) loopbackConn() *conn {
	t := e.t
	t.Helper()
	client, server := testkit.TCPPair(t)
	go func() { _, _ = io.Copy(io.Discard, client) }()
	return newConn(e.srv, server, "127.0.0.1", nil)
}
