package event_test

import (
	"encoding/json"
	"fmt"
	"time"

	"github.com/ccevents/ccevents/internal/event"
)

// A producer fills a payload, stamps it and marshals it into the routing key
// and bytes to publish.
func ExampleMarshal() {
	join := &event.QueueJoin{
		Envelope: event.Envelope{
			AccountID: "0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10",
			QueueID:   "support",
			SessionID: "call-1",
		},
		CallerIDNumber: "+14155550123",
		Position:       1,
		EstimatedWaitS: 45,
	}
	event.Stamp(join, time.Date(2026, 11, 25, 11, 32, 43, 123e6, time.UTC))
	subject, data, err := event.Marshal(join)
	if err != nil {
		fmt.Println(err)
		return
	}
	var m map[string]any
	_ = json.Unmarshal(data, &m)
	fmt.Println(subject)
	fmt.Println(m["event"], m["timestamp"], m["position"])
	// Output:
	// qubicle.queue.0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10.support.join
	// queue.join 2026-11-25T11:32:43.123Z 1
}

// Events published from outside the engine are checked before they enter
// the bus; the error names the field and what was expected.
func ExampleValidate() {
	_, _, err := event.Validate(
		"qubicle.queue.0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10.support.join",
		[]byte(`{"account_id":"0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10","event":"queue.join","event_id":"5f0c3a9e2d7b41c68e0f1a2b3c4d5e02",
		"timestamp":"2026-11-25T11:32:43.123Z","timestamp_ms":1795606363123,"queue_id":"support","session_id":"call-1",
		"caller_id_number":"+14155550123","position":"abc","estimated_wait_s":45}`))
	fmt.Println(err)
	// Output:
	// field "position": expected an integer ≥ 1, got "abc"
}
