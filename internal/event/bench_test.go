package event

import (
	"encoding/json"
	"testing"
	"time"
)

func BenchmarkMarshalQueueJoin(b *testing.B) {
	p := mustLookup(b, Queue, "join").Example
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Marshal(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendJSONQueueJoin is the encoding step alone into a reused
// buffer, as a producer that keeps its buffer would call it.
func BenchmarkAppendJSONQueueJoin(b *testing.B) {
	p := mustLookup(b, Queue, "join").Example
	buf := make([]byte, 0, 1024)
	b.ReportAllocs()
	for b.Loop() {
		var err error
		if buf, err = AppendJSON(buf[:0], p); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkStamp(b *testing.B) {
	p := &QueueJoin{}
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		Stamp(p, now)
	}
}

// BenchmarkValidateQueueJoin measures the external publishing path.
func BenchmarkValidateQueueJoin(b *testing.B) {
	subject, data := marshalled(b, mustLookup(b, Queue, "join"))
	b.ReportAllocs()
	for b.Loop() {
		if _, _, err := Validate(subject, data); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkStdlibMarshalQueueJoin is the encoding/json baseline Marshal is
// measured against (it does no validation).
func BenchmarkStdlibMarshalQueueJoin(b *testing.B) {
	p := mustLookup(b, Queue, "join").Example
	b.ReportAllocs()
	for b.Loop() {
		if _, err := json.Marshal(p); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkAppendJSONPerCallEvents encodes the example of every queue,
// recipient and session event once per op, so every enum check and field
// kind of the per-event path is measured, not only queue.join's. (The
// stats events are left out: they come once per interval, not per call.)
func BenchmarkAppendJSONPerCallEvents(b *testing.B) {
	var payloads []Payload
	for _, s := range Catalogue() {
		if s.Family != Stats {
			payloads = append(payloads, s.Example)
		}
	}
	buf := make([]byte, 0, 4096)
	b.ReportAllocs()
	for b.Loop() {
		for _, p := range payloads {
			var err error
			if buf, err = AppendJSON(buf[:0], p); err != nil {
				b.Fatal(err)
			}
		}
	}
}
