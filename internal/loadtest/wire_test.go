package loadtest

import (
	"bytes"
	"io"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/gobwas/ws"
)

func TestNextStampReadsEveryEventInAMessage(t *testing.T) {
	ev := func(a, e, t string) string {
		return `{"action":"event","data":{"sequence":9,"custom":{"~bench":{"a":` + a + `,"e":` + e + `,"k":4,"n":7,"t":` + t + `,"z":"xx"}}}}`
	}
	tests := []struct {
		name string
		msg  string
		want []stamp
		bad  int
	}{
		{"one event", ev("1", "2", "1700000000000000000"), []stamp{{1, 2, 4, 7, 1700000000000000000}}, 0},
		{"two events in one frame", ev("1", "1", "5") + "\n" + ev("2", "1", "6"), []stamp{{1, 1, 4, 7, 5}, {2, 1, 4, 7, 6}}, 0},
		{"no stamp", `{"action":"notice","data":{"reason":"shutdown"}}`, nil, 0},
		{"broken stamp", `{"~bench":{"a":1,"e":x}}` + ev("3", "3", "7"), []stamp{{3, 3, 4, 7, 7}}, 1},
		{"stamp cut short", `{"~bench":{"a":`, nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var got []stamp
			bad := 0
			p := []byte(tt.msg)
			for {
				s, rest, ok, isBad := nextStamp(p)
				if !ok {
					break
				}
				if isBad {
					bad++
				} else {
					got = append(got, s)
				}
				p = rest
			}
			if len(got) != len(tt.want) || bad != tt.bad {
				t.Fatalf("got %v (%d bad), want %v (%d bad)", got, bad, tt.want, tt.bad)
			}
			for i := range got {
				if got[i] != tt.want[i] {
					t.Fatalf("stamp %d = %+v, want %+v", i, got[i], tt.want[i])
				}
			}
		})
	}
}

func TestNATSParseHandlesAnyFraming(t *testing.T) {
	stream := "INFO {\"server_id\":\"x\"}\r\n" +
		"MSG qubicle.queue.a.q.join 1 5\r\nhello\r\n" +
		"PING\r\n" +
		"HMSG qubicle.queue.a.q.join 1 _INBOX.x 12 17\r\nNATS/1.0\r\n\r\nworld\r\n" +
		"MSG s 1 0\r\n\r\n" +
		"PONG\r\n-ERR 'Slow Consumer Detected'\r\n"
	want := []string{"other:INFO", "msg:hello", "ping", "msg:world", "msg:", "pong", "err"}
	// Feed the stream in every possible split into chunks of n bytes.
	for n := 1; n <= len(stream); n++ {
		var got []string
		var tail []byte
		for off := 0; off < len(stream); off += n {
			chunk := []byte(stream[off:min(off+n, len(stream))])
			buf := append(tail, chunk...)
			rest, err := natsParse(buf, func(ev natsEvent, data []byte) {
				switch ev {
				case natsMsg:
					got = append(got, "msg:"+string(data))
				case natsPing:
					got = append(got, "ping")
				case natsPong:
					got = append(got, "pong")
				case natsErr:
					got = append(got, "err")
				default:
					got = append(got, "other:"+strings.Fields(string(data))[0])
				}
			})
			if err != nil {
				t.Fatalf("chunk size %d: %v", n, err)
			}
			tail = append([]byte(nil), rest...)
		}
		if strings.Join(got, "|") != strings.Join(want, "|") || len(tail) != 0 {
			t.Fatalf("chunk size %d: got %q (tail %q), want %q", n, got, tail, want)
		}
	}
}

func TestNATSParseRefusesMalformedLines(t *testing.T) {
	for _, in := range []string{
		"MSG subject\r\n",
		"MSG a 1 notanumber\r\n",
		"MSG a 1 2 3 4 5\r\n",
		"HMSG a 1 20 10\r\n",
		"MSG a 1 99999999999\r\n",
		strings.Repeat("x", 5000),
	} {
		if _, err := natsParse([]byte(in), func(natsEvent, []byte) {}); err == nil {
			t.Errorf("natsParse(%.40q) accepted it", in)
		}
	}
}

func TestFrameReaderReadsEveryLengthFormInAnySplit(t *testing.T) {
	var stream bytes.Buffer
	lengths := []int{0, 5, 125, 126, 1000, 65535, 65536, 200000}
	for _, n := range lengths {
		if err := ws.WriteFrame(&stream, ws.MaskFrame(ws.NewTextFrame(bytes.Repeat([]byte{'a' + byte(n%26)}, n)))); err != nil {
			t.Fatal(err)
		}
	}
	for _, chunk := range []int{1, 7, 4096, 1 << 20} {
		fr := newFrameReader(&chunkReader{data: stream.Bytes(), n: chunk})
		for _, n := range lengths {
			h, p, err := fr.next()
			if err != nil {
				t.Fatalf("chunks of %d, frame of %d: %v", chunk, n, err)
			}
			ws.Cipher(p, h.mask, 0)
			if h.length != n || len(p) != n || !h.fin || h.op != ws.OpText || !h.masked || (n > 0 && p[n-1] != 'a'+byte(n%26)) {
				t.Fatalf("chunks of %d, frame of %d: header %+v, payload of %d", chunk, n, h, len(p))
			}
		}
		if _, _, err := fr.next(); err != io.EOF {
			t.Fatalf("after the last frame: %v, want EOF", err)
		}
	}
}

// chunkReader returns at most n bytes per Read, like a socket under load.
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[k:]
	return k, nil
}

func TestFrameReaderRefusesHugeFrames(t *testing.T) {
	var buf bytes.Buffer
	_ = ws.WriteHeader(&buf, ws.Header{Fin: true, OpCode: ws.OpBinary, Length: maxFrameBytes + 1})
	if _, _, err := newFrameReader(&buf).next(); err == nil || err == io.EOF {
		t.Fatalf("a frame above the limit: %v", err)
	}
}

func FuzzNATSParse(f *testing.F) {
	f.Add([]byte("MSG a 1 3\r\nabc\r\nPING\r\n"))
	f.Add([]byte("HMSG a 1 2 5\r\nxxabc\r\n"))
	f.Fuzz(func(t *testing.T, p []byte) {
		rest, err := natsParse(p, func(ev natsEvent, data []byte) {
			if ev == natsMsg && len(data) > len(p) {
				t.Fatalf("payload longer than the input")
			}
		})
		if err == nil && len(rest) > len(p) {
			t.Fatalf("rest longer than the input")
		}
	})
}

func FuzzNextStamp(f *testing.F) {
	f.Add([]byte(`{"~bench":{"a":1,"e":2,"k":0,"n":0,"t":3,"z":""}}`))
	f.Fuzz(func(t *testing.T, p []byte) {
		for range len(p) + 1 {
			_, rest, ok, _ := nextStamp(p)
			if !ok {
				return
			}
			if len(rest) >= len(p) {
				t.Fatalf("nextStamp made no progress")
			}
			p = rest
		}
		t.Fatalf("nextStamp did not finish")
	})
}

func BenchmarkScanGatewayEvent(b *testing.B) {
	msg := []byte(`{"action":"event","subscribed_key":"qubicle.*.0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10.*","subscription_key":"qubicle.*.0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10.>","routing_key":"qubicle.queue.0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10.bench-q0.join","name":"join","sequence":12345,"epoch":"0123456789abcdef","data":{"account_id":"0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10","event":"queue.join","event_id":"7a1c2e3f4b5d6a7c8e9f0a1b2c3d4e5f","timestamp":"2026-11-25T11:32:43.123Z","timestamp_ms":1795606363123,"sequence":12345,"queue_id":"bench-q0","caller_id_number":"+15555550100","position":3,"estimated_wait_s":30,"custom":{"~bench":{"a":12345,"e":617,"k":0,"n":0,"t":1795606363123456789,"z":"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"}}}}`)
	g := &group{}
	g.hist.Store(new(histogram))
	c := &conn{g: g, spec: connSpec{kind: KindAccount}, next: make([]atomic.Uint64, 1)}
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	for b.Loop() {
		c.next[0].Store(12345)
		c.scan(msg, 1795606363133456789)
	}
}
