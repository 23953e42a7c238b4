package loadtest

import (
	"strings"
	"testing"
)

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
