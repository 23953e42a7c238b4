package loadtest

import (
	"sync/atomic"
	"testing"
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
