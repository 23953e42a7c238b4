package client

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"

	"github.com/ccevents/ccevents/internal/event"
)

// Event is one event frame as the gateway pushes it. Data is the payload
// exactly as received; Decode turns it into the catalogue's typed payload.
type Event struct {
	// SubscribedKey is the binding the event matched, as the client wrote it.
	SubscribedKey string `json:"subscribed_key"`
	// SubscriptionKey is the bus subject filter of that binding.
	SubscriptionKey string `json:"subscription_key"`
	// RoutingKey is qubicle.<family>.<account_id>.<entity_id>.<name>.
	RoutingKey string `json:"routing_key"`
	// Name is the event's name within its family: "join", "ready", …
	Name string `json:"name"`
	// Sequence is the event's position in the stream; with Epoch it is the
	// cursor a subscription resumes from.
	Sequence uint64 `json:"sequence"`
	// Epoch names the stream history Sequence belongs to.
	Epoch string `json:"epoch"`
	// Data is the JSON payload, correlation envelope included.
	Data json.RawMessage `json:"data"`
}

// Family returns the event's family, "queue", "recipient" or "session",
// read from its routing key.
func (e Event) Family() string { return routingSegment(e.RoutingKey, 1) }

// AccountID returns the account the event belongs to, read from its routing
// key.
func (e Event) AccountID() string { return routingSegment(e.RoutingKey, 2) }

// EntityID returns the id of the queue, recipient or session the event is
// about, read from its routing key.
func (e Event) EntityID() string { return routingSegment(e.RoutingKey, 3) }

// Position returns the event's resume cursor.
func (e Event) Position() Position { return Position{Sequence: e.Sequence, Epoch: e.Epoch} }

// Decode returns the event's typed payload, such as *QueueJoin or
// *RecipientReady; use a type switch on it. An event the catalogue does not
// know (from a newer gateway) returns an error wrapping ErrUnknownEvent, so
// older clients can skip it.
func (e Event) Decode() (Payload, error) {
	p, ok := event.New(event.Family(e.Family()), e.Name)
	if !ok {
		return nil, fmt.Errorf("decode %s: %w", e.RoutingKey, ErrUnknownEvent)
	}
	if err := json.Unmarshal(e.Data, p); err != nil {
		return nil, fmt.Errorf("decode %s: %w", e.RoutingKey, err)
	}
	return p, nil
}

// routingSegment returns the i-th dot-separated segment of key, or "".
func routingSegment(key string, i int) string {
	for ; i > 0; i-- {
		dot := strings.IndexByte(key, '.')
		if dot < 0 {
			return ""
		}
		key = key[dot+1:]
	}
	if dot := strings.IndexByte(key, '.'); dot >= 0 {
		return key[:dot]
	}
	return key
}

// Position is a resume cursor: the last stream sequence a subscription has
// seen and the epoch of the history it belongs to. The zero Position means
// "from now on".
type Position struct {
	Sequence uint64 `json:"sequence"`
	Epoch    string `json:"epoch,omitempty"`
}

// IsZero reports whether p names no position.
func (p Position) IsZero() bool { return p.Sequence == 0 && p.Epoch == "" }

// String returns "SEQUENCE@EPOCH", the form ParsePosition reads.
func (p Position) String() string {
	if p.Epoch == "" {
		return strconv.FormatUint(p.Sequence, 10)
	}
	return strconv.FormatUint(p.Sequence, 10) + "@" + p.Epoch
}

// ParsePosition reads "SEQUENCE" or "SEQUENCE@EPOCH", as printed by
// Position.String. A sequence without an epoch resumes in whatever history
// the gateway holds now.
func ParsePosition(s string) (Position, error) {
	seq, epoch, _ := strings.Cut(strings.TrimSpace(s), "@")
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != seq { // refuse "007"
		return Position{}, fmt.Errorf("position %q: want a sequence number, optionally followed by @EPOCH (e.g. 1234@8f2c…)", s)
	}
	return Position{Sequence: n, Epoch: epoch}, nil
}
