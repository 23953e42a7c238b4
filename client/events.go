package client

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/protocol"
)

// Event is one event frame as the gateway pushes it: protocol.Event's
// fields (SubscribedKey, SubscriptionKey, RoutingKey, Name, Sequence,
// Epoch, Data). Data is the payload exactly as received; Decode turns it
// into the catalogue's typed payload.
type Event protocol.Event

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
// seen and the epoch of the history it belongs to (protocol.Position). The
// zero Position means "from now on".
type Position = protocol.Position

// ParsePosition reads "SEQUENCE" or "SEQUENCE@EPOCH", as printed by
// Position.String. A sequence without an epoch resumes in whatever history
// the gateway holds now.
func ParsePosition(s string) (Position, error) { return protocol.ParsePosition(s) }
