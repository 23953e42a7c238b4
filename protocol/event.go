package protocol

import (
	"encoding/json"
	"strconv"
)

// Event is an event frame without its "action":"event", as the gateway
// pushes it to a connection whose binding matches:
// {"action":"event","subscribed_key":…,"subscription_key":…,"routing_key":…,"name":…,"sequence":…,"epoch":…,"data":{…}}.
// The field names are Kazoo blackhole's own. The gateway writes the frame
// with AppendEvent, not encoding/json.
type Event struct {
	// SubscribedKey is the binding the event matched, as the client wrote
	// it (qubicle.queue for a short binding).
	SubscribedKey string `json:"subscribed_key"`
	// SubscriptionKey is the bus subject filter of that binding.
	SubscriptionKey string `json:"subscription_key"`
	// RoutingKey is the event's own subject:
	// qubicle.<family>.<account_id>.<entity_id>.<name>.
	RoutingKey string `json:"routing_key"`
	// Name is the event's name within its family: "join", "ready", …
	Name string `json:"name"`
	// Sequence is the event's position in the stream; with Epoch it is the
	// Position a client resumes from.
	Sequence uint64 `json:"sequence"`
	// Epoch names the stream history Sequence belongs to.
	Epoch string `json:"epoch"`
	// Data is the JSON payload, correlation envelope included, with
	// "sequence" first.
	Data json.RawMessage `json:"data"`
}

// Position returns the event's resume cursor.
func (e Event) Position() Position { return Position{Sequence: e.Sequence, Epoch: e.Epoch} }

// EventFrame is what AppendEvent writes: an Event's values as they are
// held before encoding. Keys and subjects hold only characters that need
// no JSON escaping (bindings and subjects are checked before they get
// here); EpochJSON is the epoch already quoted; Members is the stored
// payload after its opening brace, through its closing one, and
// EmptyPayload says the payload is {}.
type EventFrame struct {
	SubscribedKey, SubscriptionKey, RoutingKey, Name string
	Sequence                                         uint64
	EpochJSON                                        string
	Members                                          []byte
	EmptyPayload                                     bool
}

// The event frame's JSON around the values.
const (
	eventPart1 = `{"action":"event","subscribed_key":"`
	eventPart2 = `","subscription_key":"`
	eventPart3 = `","routing_key":"`
	eventPart4 = `","name":"`
	eventPart5 = `","sequence":`
	eventPart6 = `,"epoch":`
	eventPart7 = `,"data":{"sequence":`
)

// Len returns how many bytes AppendEvent writes for f, so the gateway can
// size the frame's one allocation exactly.
func (f *EventFrame) Len() int {
	seqLen := uintLen(f.Sequence)
	n := len(eventPart1) + len(f.SubscribedKey) + len(eventPart2) + len(f.SubscriptionKey) + len(eventPart3) + len(f.RoutingKey) +
		len(eventPart4) + len(f.Name) + len(eventPart5) + seqLen + len(eventPart6) + len(f.EpochJSON) +
		len(eventPart7) + seqLen + len(f.Members) + 1
	if !f.EmptyPayload {
		n++
	}
	return n
}

// AppendEvent appends the JSON of the event frame f to dst: the payload
// with "sequence" added first. It runs once per event and binding on the
// gateway's hot path, so it only copies.
func AppendEvent(dst []byte, f *EventFrame) []byte {
	dst = append(dst, eventPart1...)
	dst = append(dst, f.SubscribedKey...)
	dst = append(dst, eventPart2...)
	dst = append(dst, f.SubscriptionKey...)
	dst = append(dst, eventPart3...)
	dst = append(dst, f.RoutingKey...)
	dst = append(dst, eventPart4...)
	dst = append(dst, f.Name...)
	dst = append(dst, eventPart5...)
	dst = strconv.AppendUint(dst, f.Sequence, 10)
	dst = append(dst, eventPart6...)
	dst = append(dst, f.EpochJSON...)
	dst = append(dst, eventPart7...)
	dst = strconv.AppendUint(dst, f.Sequence, 10)
	if !f.EmptyPayload {
		dst = append(dst, ',')
	}
	dst = append(dst, f.Members...)
	return append(dst, '}')
}

func uintLen(v uint64) int {
	n := 1
	for v >= 10 {
		v /= 10
		n++
	}
	return n
}
