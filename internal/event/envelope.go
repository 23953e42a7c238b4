package event

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Family is the first segment after "qubicle" in a routing key: the kind of
// entity an event is about.
type Family string

// Event families. Stats carries the statistics the engine computes from
// the events of the other three.
const (
	Queue     Family = "queue"
	Recipient Family = "recipient"
	Session   Family = "session"
	Stats     Family = "stats"
)

// Valid reports whether f is one of the four families.
func (f Family) Valid() bool { return f == Queue || f == Recipient || f == Session || f == Stats }

// Families lists the four families in catalogue order.
func Families() []Family { return []Family{Queue, Recipient, Session, Stats} }

// EntityField is the envelope field holding the id of the entity the family
// is about, which is also the routing key's entity segment.
func (f Family) EntityField() string {
	switch f {
	case Queue, Stats:
		return "queue_id"
	case Recipient:
		return "recipient_id"
	case Session:
		return "session_id"
	}
	return ""
}

// EntityID returns the id of the entity an event of family f is about, from
// its envelope: the routing key's entity segment (StatsTotal for the
// statistics of a whole account).
func (f Family) EntityID(env *Envelope) string {
	switch f {
	case Queue:
		return env.QueueID
	case Recipient:
		return env.RecipientID
	case Session:
		return env.SessionID
	case Stats:
		if env.QueueID == "" {
			return StatsTotal // stats.account
		}
		return env.QueueID
	}
	return ""
}

// TimestampLayout is the layout of Envelope.Timestamp: RFC 3339, UTC,
// millisecond precision.
const TimestampLayout = "2006-01-02T15:04:05.000Z"

// Envelope holds the correlation fields every payload carries.
type Envelope struct {
	AccountID   string `json:"account_id"`
	Event       string `json:"event"`     // "<family>.<name>", e.g. "queue.join"
	EventID     string `json:"event_id"`  // 32 lowercase hex, unique
	Timestamp   string `json:"timestamp"` // RFC 3339 UTC, millisecond precision: 2026-11-25T11:32:43.123Z
	TimestampMS int64  `json:"timestamp_ms"`
	// Sequence is the event's stream position, set by the gateway at
	// delivery and never by producers: Marshal and Validate refuse it.
	Sequence    uint64 `json:"sequence,omitempty"`
	QueueID     string `json:"queue_id,omitempty"`
	RecipientID string `json:"recipient_id,omitempty"`
	SessionID   string `json:"session_id,omitempty"`
	// Custom is reserved for producer extensions: a JSON object carried
	// through untouched. Nothing in ccevents reads it.
	Custom json.RawMessage `json:"custom,omitempty"`
}

// Env returns e itself. Every payload embeds an Envelope, so this one
// method is every payload's Env.
func (e *Envelope) Env() *Envelope { return e }

// Payload is implemented by every event type of the catalogue, and only by
// them: the set is closed so that Marshal can encode each one by hand.
type Payload interface {
	// Family is the event's family.
	Family() Family
	// Name is the event's name within its family: "join", "wrapup_start", …
	Name() string
	// Env returns the payload's embedded Envelope for reading and setting.
	// (It cannot be called Envelope: Go forbids a method and an embedded
	// field of the same name on one type.)
	Env() *Envelope

	// event returns "<family>.<name>" without building it.
	event() string
	// ids says which envelope ids the event carries and requires.
	ids() idSet
	// appendFields encodes and checks the event's own fields. The encoder
	// goes by value so it stays on the caller's stack.
	appendFields(e encoder) encoder
}

// idSet is a bit set over the envelope ids an event carries.
type idSet struct{ allowed, required uint8 }

const (
	idQueue uint8 = 1 << iota
	idRecipient
	idSession
)

// Stamp fills p's Event, EventID (32 random lowercase hex digits),
// Timestamp and TimestampMS from now.
func Stamp(p Payload, now time.Time) {
	env := p.Env()
	env.Event = p.event()
	env.EventID = NewEventID()
	now = now.UTC().Truncate(time.Millisecond)
	var buf [len(TimestampLayout)]byte
	env.Timestamp = string(now.AppendFormat(buf[:0], TimestampLayout))
	env.TimestampMS = now.UnixMilli()
}

// NewEventID returns 32 lowercase hex digits from the system's secure random
// source: 128 bits, so ids never collide in practice.
func NewEventID() string {
	var raw [16]byte
	_, _ = rand.Read(raw[:]) // crypto/rand.Read never fails (Go ≥ 1.24)
	var out [32]byte
	hex.Encode(out[:], raw[:])
	return string(out[:])
}
