package eventdoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/protocol"
	"go.yaml.in/yaml/v3"
)

// AsyncAPI returns the AsyncAPI 3 document of the websocket gateway as YAML,
// generated from the catalogue: the server, the client's subscribe,
// unsubscribe, ping and refresh requests with their reply, the notice
// message and every event with its payload's JSON Schema. The document
// describes the gateway: it receives requests and sends replies and events.
// docs/asyncapi.yaml is this output; `go generate ./internal/event` rewrites it.
func AsyncAPI() ([]byte, error) {
	return AsyncAPIWithExamples(nil)
}

// AsyncAPIWithExamples is AsyncAPI with example payloads taken from
// examples (keyed by event, e.g. "queue.join") where present instead of
// each Spec.Example. Each example must pass Validate.
func AsyncAPIWithExamples(examples map[string]json.RawMessage) ([]byte, error) {
	specs := event.Catalogue()
	exs, err := examplePayloads(specs, examples)
	if err != nil {
		return nil, err
	}

	chanMsgs := omap{}
	compMsgs := omap{}
	schemas := omap{}
	ref := func(path string) omap { return omap{{"$ref", path}} }
	// The protocol's own messages come with their schemas from package
	// protocol, which defines them.
	for _, m := range protocol.MessageSchemas() {
		chanMsgs = append(chanMsgs, kv{m.ID, ref("#/components/messages/" + m.ID)})
		compMsgs = append(compMsgs, kv{m.ID, omap{{"name", m.ID}, {"title", m.Title}, {"summary", m.Summary}, {"payload", fromSchema(m.Payload)}}})
	}
	for i, s := range specs {
		id := s.Event()
		schemas = append(schemas, kv{id, payloadSchema(s)})
		chanMsgs = append(chanMsgs, kv{id, ref("#/components/messages/" + id)})
		compMsgs = append(compMsgs, kv{id, omap{
			{"name", id},
			{"title", id},
			{"summary", s.Description},
			{"payload", eventFrameSchema(s)},
			{"examples", []omap{{{"name", id}, {"payload", exampleFrame(s, exs[i])}}}},
		}})
	}

	chanRef := ref("#/channels/gateway")
	msgRef := func(id string) omap { return ref("#/channels/gateway/messages/" + id) }
	request := func(id, summary string) kv {
		return kv{id, omap{
			{"action", "receive"},
			{"channel", chanRef},
			{"summary", summary},
			{"messages", []omap{msgRef(id)}},
			{"reply", omap{{"channel", chanRef}, {"messages", []omap{msgRef("reply")}}}},
		}}
	}
	ops := omap{
		request("subscribe", "A client subscribes to one or more bindings; the reply lists the bindings now active."),
		request("unsubscribe", "A client removes bindings; the reply lists the bindings still active."),
		request("ping", "A client checks the connection at the application level; the reply has status success."),
		request("refresh", "A client replaces the connection's auth token with a fresh one before the old one expires."),
		{"notice", omap{
			{"action", "send"},
			{"channel", chanRef},
			{"summary", "The gateway warns before a planned close (shutdown, upgrade, token expiry) so the client can reconnect on its own terms."},
			{"messages", []omap{msgRef("notice")}},
		}},
	}
	for _, f := range event.Families() {
		var msgs []omap
		for _, s := range specs {
			if s.Family == f {
				msgs = append(msgs, msgRef(s.Event()))
			}
		}
		ops = append(ops, kv{string(f) + "Events", omap{
			{"action", "send"},
			{"channel", chanRef},
			{"summary", "The gateway pushes " + string(f) + " events matching the connection's bindings (qubicle." + string(f) + ".{ACCOUNT_ID}.…)."},
			{"messages", msgs},
		}})
	}

	doc := omap{
		{"asyncapi", "3.0.0"},
		{"info", omap{
			{"title", "ccevents live events"},
			{"version", "1.0.0"},
			{"description", asyncAPIIntro},
		}},
		{"defaultContentType", "application/json"},
		{"servers", omap{{"local", omap{
			{"host", "localhost:5555"},
			{"protocol", "ws"},
			{"description", "The websocket gateway of `ccevents serve` (default --ws-addr :5555). In production use wss:// and your deployment's host."},
		}}}},
		{"channels", omap{{"gateway", omap{
			{"address", "/"},
			{"title", "Gateway connection"},
			{"description", "One websocket connection. Every frame either way is one JSON text message; each request gets exactly one reply with the same request_id, and events arrive between replies in stream order per account."},
			{"messages", chanMsgs},
		}}}},
		{"operations", ops},
		{"components", omap{
			{"schemas", schemas},
			{"messages", compMsgs},
		}},
	}
	var buf bytes.Buffer
	enc := yaml.NewEncoder(&buf)
	enc.SetIndent(2)
	if err := enc.Encode(doc); err != nil {
		return nil, fmt.Errorf("encode asyncapi: %w", err)
	}
	if err := enc.Close(); err != nil {
		return nil, fmt.Errorf("encode asyncapi: %w", err)
	}
	return buf.Bytes(), nil
}

const asyncAPIIntro = `Live contact-center events over a websocket. Connect, send a subscribe
request with an auth token, an account id and bindings such as
qubicle.queue.{ACCOUNT_ID}.*, and receive every matching event as an
"event" frame. Generated from the event catalogue (internal/event); see
docs/events.md for the same catalogue written for people.
`

// payloadSchema returns the JSON Schema (draft 7 keywords only, as AsyncAPI
// schemas allow) of one event's payload as delivered to clients: the
// envelope, the ids the event carries and its own fields.
func payloadSchema(s event.Spec) omap {
	props := omap{}
	required := []string{}
	carried := map[string]event.Field{}
	for _, f := range s.IDs {
		carried[f.Name] = f
	}
	for _, f := range event.EnvelopeFields() {
		switch f.Name {
		case "queue_id", "recipient_id", "session_id":
			id, ok := carried[f.Name]
			if !ok {
				continue
			}
			f.Required, f.Description = id.Required, id.Description
		case "event":
			props = append(props, kv{f.Name, omap{{"type", "string"}, {"const", s.Event()}, {"description", f.Description}}})
			required = append(required, f.Name)
			continue
		}
		props = append(props, kv{f.Name, fieldSchema(f)})
		if f.Required {
			required = append(required, f.Name)
		}
	}
	for _, f := range s.Fields {
		props = append(props, kv{f.Name, fieldSchema(f)})
		if f.Required {
			required = append(required, f.Name)
		}
	}
	return omap{
		{"type", "object"},
		{"description", s.Description},
		{"required", required},
		{"properties", props},
		{"additionalProperties", false},
	}
}

func fieldSchema(f event.Field) omap {
	m := omap{{"type", f.Type}}
	if f.Description != "" {
		m = append(m, kv{"description", f.Description})
	}
	if f.Enum != nil {
		if f.Type == event.TypeInteger {
			ints := make([]int, len(f.Enum))
			for i, e := range f.Enum {
				ints[i], _ = strconv.Atoi(e)
			}
			m = append(m, kv{"enum", ints})
		} else {
			m = append(m, kv{"enum", f.Enum})
		}
	}
	if f.Format == event.FormatDateTime {
		m = append(m, kv{"format", "date-time"})
	}
	if p := f.Pattern(); p != "" {
		m = append(m, kv{"pattern", p})
	}
	if f.Minimum != nil {
		m = append(m, kv{"minimum", *f.Minimum})
	}
	if f.MaxLength > 0 {
		m = append(m, kv{"maxLength", f.MaxLength})
	}
	if f.Type == event.TypeString && f.Required && f.Enum == nil && f.Format == "" {
		m = append(m, kv{"minLength", 1})
	}
	if f.Items != nil {
		m = append(m, kv{"items", fieldSchema(*f.Items)})
	}
	if f.Properties != nil {
		props := omap{}
		var required []string
		for _, p := range f.Properties {
			props = append(props, kv{p.Name, fieldSchema(p)})
			if p.Required {
				required = append(required, p.Name)
			}
		}
		m = append(m, kv{"required", required}, kv{"properties", props}, kv{"additionalProperties", false})
	}
	return m
}

// eventFrameSchema is the websocket frame an event arrives in: package
// protocol's, for this event.
func eventFrameSchema(s event.Spec) any {
	key := "^" + regexp.QuoteMeta("qubicle."+string(s.Family)+".") + `[0-9a-f]{32}\.[A-Za-z0-9_-]{1,64}` + regexp.QuoteMeta("."+s.Name) + "$"
	return fromSchema(protocol.EventSchema(s.Name, s.RoutingKey(), key, "#/components/schemas/"+s.Event()))
}

// fromSchema turns a protocol.Schema, and the schemas in it, into omaps.
func fromSchema(v any) any {
	switch v := v.(type) {
	case protocol.Schema:
		m := make(omap, len(v))
		for i, k := range v {
			m[i] = kv{k.Key, fromSchema(k.Value)}
		}
		return m
	case []protocol.Schema:
		out := make([]any, len(v))
		for i, s := range v {
			out[i] = fromSchema(s)
		}
		return out
	}
	return v
}

func exampleFrame(s event.Spec, data any) omap {
	key := strings.NewReplacer("{ACCOUNT_ID}", accountOf(data), "{QUEUE_ID}", idOf(data, "queue_id"),
		"{RECIPIENT_ID}", idOf(data, "recipient_id"), "{SESSION_ID}", idOf(data, "session_id")).Replace(s.RoutingKey())
	acc := accountOf(data)
	return omap{
		{"action", "event"},
		{"subscribed_key", "qubicle." + string(s.Family) + "." + acc + ".*"},
		{"subscription_key", "qubicle." + string(s.Family) + "." + acc + ".>"},
		{"routing_key", key},
		{"name", s.Name},
		{"data", data},
	}
}

func accountOf(data any) string { return idOf(data, "account_id") }

func idOf(data any, field string) string {
	if m, ok := data.(omap); ok {
		for _, e := range m {
			if s, ok := e.v.(string); ok && e.k == field {
				return s
			}
		}
	}
	return ""
}
