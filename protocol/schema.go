package protocol

import (
	"bytes"
	"encoding/json"

	"github.com/ccevents/ccevents/internal/event"
)

// The protocol's schema: its messages as JSON Schema, beside the types
// that define them (a test holds the two together). The AsyncAPI document
// (docs/asyncapi.yaml) takes them from here.

// Schema is a JSON Schema object (draft 7 keywords only, as AsyncAPI
// schemas allow) with its keywords in the order written, so a document
// generated from it reads top-down and its diffs stay small. A value is a
// string, a number, a bool, a []string, a Schema or a []Schema.
type Schema []Keyword

// Keyword is one member of a Schema.
type Keyword struct {
	Key   string
	Value any
}

// Get returns the value of key, or nil.
func (s Schema) Get(key string) any {
	for _, k := range s {
		if k.Key == key {
			return k.Value
		}
	}
	return nil
}

// MarshalJSON writes the keywords in order.
func (s Schema) MarshalJSON() ([]byte, error) {
	var b bytes.Buffer
	b.WriteByte('{')
	for i, k := range s {
		if i > 0 {
			b.WriteByte(',')
		}
		key, _ := json.Marshal(k.Key)
		b.Write(key)
		b.WriteByte(':')
		v, err := json.Marshal(k.Value)
		if err != nil {
			return nil, err
		}
		b.Write(v)
	}
	b.WriteByte('}')
	return b.Bytes(), nil
}

// MessageSchema is one of the protocol's own messages as an AsyncAPI
// message: ID is its action, and Payload the schema of the whole message.
type MessageSchema struct {
	ID, Title, Summary string
	Payload            Schema
}

// MessageSchemas returns the schemas of the protocol's own messages: the
// requests (subscribe, unsubscribe, ping, refresh), the reply and the
// notice, in the order the AsyncAPI document lists them.
func MessageSchemas() []MessageSchema {
	str := func(desc string) Schema { return Schema{{"type", "string"}, {"description", desc}} }
	action := func(a string) Schema { return Schema{{"type", "string"}, {"const", a}} }
	since := Schema{
		{"type", "object"},
		{"description", "Resume point: replay every stored event after this sequence of this epoch, then continue live."},
		{"required", []string{"sequence"}},
		{"properties", Schema{
			{"sequence", Schema{{"type", "integer"}, {"minimum", 0}}},
			{"epoch", Schema{{"type", "string"}}},
		}},
	}
	bindingData := Schema{
		{"type", "object"},
		{"required", []string{"account_id"}},
		{"properties", Schema{
			{"account_id", Schema{{"type", "string"}, {"pattern", event.Field{Format: event.FormatAccountID}.Pattern()}, {"description", "The account whose events to receive; the token must be allowed to see it. On unsubscribe it says whose short bindings to remove (every account's without it)."}}},
			{"binding", str("One binding, e.g. qubicle.queue.{ACCOUNT_ID}.* ; '*' matches one segment, '#' zero or more, and a binding covers everything below it. The short form qubicle.<family> (2600Hz Qubicle's) means qubicle.<family>.{account_id}.*, and events carry it as written in subscribed_key.")},
			{"bindings", Schema{{"type", "array"}, {"items", Schema{{"type", "string"}}}, {"description", "Several bindings at once, instead of binding."}}},
			{"since", since},
			{"snapshot", Schema{{"type", "boolean"}, {"description", "subscribe only: return the account's current state in the reply and resume the new bindings from the sequence it is consistent with (not together with since)."}}},
		}},
	}
	req := func(a, desc string, data Schema, tokenRequired bool) MessageSchema {
		props := Schema{
			{"action", action(a)},
			{"request_id", str("Any string; echoed in the reply (a request without one gets a generated one).")},
		}
		req := []string{"action"}
		if tokenRequired {
			props = append(props, Keyword{"auth_token", str("The new token from PUT /v2/api_auth.")})
			req = append(req, "auth_token")
		} else {
			props = append(props, Keyword{"auth_token", str("A token from PUT /v2/api_auth. Needed by the first subscribe of a connection; later requests may leave it out and act with the last token that verified on the connection, while it has not expired. A token given is always checked.")})
		}
		if data != nil {
			props = append(props, Keyword{"data", data})
			req = append(req, "data")
		}
		return MessageSchema{ID: a, Title: a + " request", Summary: desc,
			Payload: Schema{{"type", "object"}, {"required", req}, {"properties", props}}}
	}
	return []MessageSchema{
		req("subscribe", "Subscribe to one or more bindings of an account.", bindingData, false),
		req("unsubscribe", "Remove bindings from the connection.", bindingData, false),
		req("ping", "Application-level liveness check; answered with a success reply.", nil, false),
		req("refresh", "Replace the connection's auth token with a fresh one.", nil, true),
		{ID: "reply", Title: "reply", Summary: "The one answer to each request.",
			Payload: Schema{
				{"type", "object"},
				{"required", []string{"action", "request_id", "status", "data"}},
				{"properties", Schema{
					{"action", action("reply")},
					{"request_id", Schema{{"description", "The request's request_id, or one generated for a request without (32 hex characters, as Kazoo's)."}}},
					{"status", Schema{{"type", "string"}, {"enum", []string{"success", "error"}}}},
					{"data", Schema{
						{"type", "object"},
						{"properties", Schema{
							{"unsubscribed", Schema{{"type", "array"}, {"items", Schema{{"type", "string"}}}, {"description", "On unsubscribe: the bindings it removed (none when they were not subscribed, which is no error)."}}},
							{"subscribed", Schema{{"type", "array"}, {"items", Schema{{"type", "string"}}}, {"description", "On subscribe or unsubscribe: the bindings now active on the connection, as the client wrote them."}}},
							{"epoch", str("On subscribe: the stream's epoch, which names its history.")},
							{"sequence", Schema{{"type", "integer"}, {"description", "On subscribe without since: the stream position the new bindings are live from."}}},
							{"recovered", Schema{{"type", "boolean"}, {"description", "With since or snapshot: true when every missed event is replayed; false when history no longer reaches back, the epoch changed or since lies beyond the end, so the client must re-sync (message says which)."}}},
							{"replay_until", Schema{{"type", "integer"}, {"description", "With since or snapshot: the replay ends at this sequence; live events follow."}}},
							{"snapshot", Schema{{"type", "object"}, {"description", "With snapshot: true: the account's queues and recipients and the sequence and epoch they are consistent with, as GET /v2/accounts/{ACCOUNT_ID}/qubicle_state returns them."}}},
							{"retry_after", Schema{{"type", "integer"}, {"description", "Seconds to wait before trying again: after repeated auth failures from this address, or when no turn to read history came free for a subscribe with since."}}},
							{"response", Schema{{"type", "string"}, {"const", "pong"}, {"description", "On ping: Kazoo's answer."}}},
							{"pong", Schema{{"type", "boolean"}, {"description", "On ping: true."}}},
							{"expires_at", Schema{{"type", "string"}, {"format", "date-time"}, {"description", "On refresh: when the connection's subscriptions now expire (the earliest of their tokens), RFC 3339."}}},
							{"accounts", Schema{{"type", "array"}, {"items", Schema{{"type", "string"}}}, {"description", "On refresh: the subscribed accounts the new token now covers."}}},
							{"errors", Schema{{"type", "array"}, {"items", Schema{{"type", "string"}}}, {"description", "On error: messages a person can act on. A token that was checked and refused begins \"failed to authenticate token\", on which Kazoo clients log in again."}}},
							{"message", str("On error: the first of errors; with recovered false: why.")},
						}},
					}},
				}},
			},
		},
		{ID: "notice", Title: "notice", Summary: "Sent before a planned close so the client reconnects on its own terms.",
			Payload: Schema{
				{"type", "object"},
				{"required", []string{"action", "data"}},
				{"properties", Schema{
					{"action", action("notice")},
					{"data", Schema{
						{"type", "object"},
						{"required", []string{"reason"}},
						{"properties", Schema{
							{"reason", str("Why the connection will close: shutdown (close 1001 follows) or token_expiring (send a refresh, or close 4001 follows at expires_at); a client ignores reasons it does not know.")},
							{"message", str("The same for people.")},
							{"account_id", str("With token_expiring: the account of the expiring token.")},
							{"expires_at", Schema{{"type", "string"}, {"format", "date-time"}, {"description", "With token_expiring: when the token expires, RFC 3339."}}},
						}},
					}},
				}},
			},
		},
	}
}

// EventSchema is the schema of the frame an event arrives in: one event
// named name, whose routing key matches routingKeyPattern (routingKey
// shows its form, e.g. qubicle.queue.{ACCOUNT_ID}.{QUEUE_ID}.join) and
// whose data is the schema at dataRef.
func EventSchema(name, routingKey, routingKeyPattern, dataRef string) Schema {
	return Schema{
		{"type", "object"},
		{"required", []string{"action", "subscribed_key", "subscription_key", "routing_key", "name", "data"}},
		{"properties", Schema{
			{"action", Schema{{"type", "string"}, {"const", "event"}}},
			{"subscribed_key", Schema{{"type", "string"}, {"description", "The client's binding this event matched."}}},
			{"subscription_key", Schema{{"type", "string"}, {"description", "The bus subject filter of that binding."}}},
			{"routing_key", Schema{{"type", "string"}, {"pattern", routingKeyPattern}, {"description", "The event's routing key: " + routingKey + "."}}},
			{"name", Schema{{"type", "string"}, {"const", name}}},
			{"sequence", Schema{{"type", "integer"}, {"minimum", 1}, {"description", "Stream position of the event; the same as data.sequence. Resume with since."}}},
			{"epoch", Schema{{"type", "string"}, {"description", "Id of the stream's history; it changes when history is reset, and sequences from another epoch do not resume."}}},
			{"data", Schema{{"$ref", dataRef}}},
		}},
	}
}
