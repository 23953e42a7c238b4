package eventdoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"slices"
	"strings"

	"github.com/ccevents/ccevents/internal/event"
)

// EventsMarkdown returns docs/events.md: the catalogue written for people,
// with examples taken from examples where present (see AsyncAPIWithExamples).
func EventsMarkdown(examples map[string]json.RawMessage) ([]byte, error) {
	specs := event.Catalogue()
	exs, err := examplePayloads(specs, examples)
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	w := func(format string, args ...any) { fmt.Fprintf(&b, format, args...) }
	w("<!-- Generated from internal/event by `go generate ./internal/event`; do not edit. -->\n\n")
	w("# Events\n\n")
	w("The contact-center engine publishes an event each time a queue, a recipient (agent) or a call session changes. ")
	w("Clients receive them over the websocket gateway (see [asyncapi.yaml](asyncapi.yaml) for the protocol) by subscribing to bindings. ")
	w("This page lists every event, when it fires and what its payload holds. It is generated from the catalogue in `internal/event`, ")
	w("which is also what every publishing path validates against, so it is exact.\n\n")
	w("## Routing keys\n\n")
	w("Every event has a routing key (also its NATS subject):\n\n")
	w("```\nqubicle.<family>.<account_id>.<entity_id>.<event>\n```\n\n")
	w("- `family` is `queue`, `recipient`, `session` or `stats`;\n")
	w("- `account_id` is the account, 32 lowercase hex digits;\n")
	w("- `entity_id` is the queue id, recipient id or session id respectively (1–64 characters of `A-Z a-z 0-9 _ -`); ")
	w("for `stats` it is the queue id, or `_total` for the whole account;\n")
	w("- `event` is the event's name within its family, e.g. `join`.\n\n")
	w("Bind to `qubicle.queue.{ACCOUNT_ID}.*` for every queue event of an account, `qubicle.queue.{ACCOUNT_ID}.{QUEUE_ID}` for one queue, ")
	w("`qubicle.session.{ACCOUNT_ID}.{SESSION_ID}` for one call. `*` matches one segment, `#` zero or more, and a binding covers everything below it.\n\n")
	w("## Envelope\n\n")
	w("Every payload starts with the same correlation fields. Each event lists which of the ids it carries.\n\n")
	w("| Field | Type | Required | Meaning |\n|---|---|---|---|\n")
	for _, f := range event.EnvelopeFields() {
		req := "yes"
		switch {
		case f.Name == "sequence":
			req = "on delivery"
		case f.Name == "queue_id" || f.Name == "recipient_id" || f.Name == "session_id":
			req = "per event"
		case !f.Required:
			req = "no"
		}
		w("| `%s` | %s | %s | %s |\n", f.Name, typeName(f), req, cell(f.Description))
	}
	w("\nPublishers (REST `POST /v2/accounts/{ACCOUNT_ID}/events`, raw NATS) must leave `sequence` out, match `account_id` and the entity id to the routing key, ")
	w("and put any extension under `custom`: other unknown fields are refused, with an error naming the field and what was expected.\n\n")

	w("## Recipient states\n\nA recipient is in exactly one state. Events that change it carry `state` (after) and `previous_state` (before).\n\n")
	w("| State | Meaning |\n|---|---|\n")
	for _, s := range event.States() {
		w("| `%s` | %s |\n", s, s.Description())
	}
	w("\n## Disconnection causes\n\n`session.delete` carries `disconnect_cause_code` and the matching `disconnect_cause`: Q.850 causes, and platform causes above 127 as FreeSWITCH and Kazoo name them.\n\n")
	w("| Code | Cause | Meaning |\n|---|---|---|\n")
	for _, c := range event.Causes() {
		w("| %d | `%s` | %s |\n", c.Code(), c, c.Description())
	}
	w("\n")

	titles := map[event.Family]string{event.Queue: "Queue events", event.Recipient: "Recipient events", event.Session: "Session events", event.Stats: "Statistics events"}
	for _, fam := range event.Families() {
		w("## %s\n\nBinding: `qubicle.%s.{ACCOUNT_ID}.*`\n\n", titles[fam], fam)
		if fam == event.Stats {
			w("The engine computes these from the account's queue and recipient events; they cannot be published from outside. ")
			w("Each carries the complete figures, so the latest one replaces any earlier. ")
			w("`qubicle.stats.{ACCOUNT_ID}.{QUEUE_ID}` follows one queue, `qubicle.stats.{ACCOUNT_ID}._total` the whole account. ")
			w("Definitions and formulas: [engine.md](engine.md#statistics).\n\n")
		}
		w("| Event | Routing key | Fires when | Own fields |\n|---|---|---|---|\n")
		for _, s := range specs {
			if s.Family != fam {
				continue
			}
			var own []string
			for _, f := range s.Fields {
				own = append(own, "`"+f.Name+"`")
			}
			w("| [`%s`](#%s) | `%s` | %s | %s |\n", s.Event(), anchor(s.Event()), s.RoutingKey(), cell(s.Description), strings.Join(own, ", "))
		}
		w("\n")
		for i, s := range specs {
			if s.Family != fam {
				continue
			}
			writeEvent(&b, s, exs[i])
		}
	}
	return b.Bytes(), nil
}

func writeEvent(b *bytes.Buffer, s event.Spec, example any) {
	w := func(format string, args ...any) { fmt.Fprintf(b, format, args...) }
	w("### %s\n\n%s\n\nRouting key: `%s`\n\n", s.Event(), s.Description, s.RoutingKey())
	w("| Field | Type | Required | Meaning |\n|---|---|---|---|\n")
	for _, f := range s.IDs {
		w("| `%s` | %s | %s | %s |\n", f.Name, typeName(f), yesNo(f.Required), cell(f.Description))
	}
	var enums, objects []event.Field
	for _, f := range s.Fields {
		desc := f.Description
		if f.Enum != nil && f.Name != "state" && f.Name != "previous_state" && f.Name != "disconnect_cause_code" && f.Name != "disconnect_cause" {
			enums = append(enums, f)
		}
		like := ""
		if f.Properties != nil {
			like = sameProperties(objects, f)
			if like != "" {
				desc += " Same members as `" + like + "`."
			}
		}
		w("| `%s` | %s | %s | %s |\n", f.Name, typeName(f), yesNo(f.Required), cell(desc))
		if f.Properties != nil && like == "" {
			objects = append(objects, f)
			for _, p := range f.Properties {
				w("| `%s.%s` | %s | %s | %s |\n", f.Name, p.Name, typeName(p), yesNo(p.Required), cell(p.Description))
			}
		}
		if f.Items != nil {
			for _, p := range f.Items.Properties {
				w("| `%s[].%s` | %s | %s | %s |\n", f.Name, p.Name, typeName(p), yesNo(p.Required), cell(p.Description))
			}
		}
	}
	w("\n")
	for _, f := range enums {
		w("`%s` values:\n\n", f.Name)
		for j, v := range f.Enum {
			w("- `%s`: %s\n", v, f.EnumDocs[j])
		}
		w("\n")
	}
	ex, _ := json.MarshalIndent(example, "", "  ") // example holds only JSON values
	w("Example payload:\n\n```json\n%s\n```\n\n", ex)
}

// sameProperties returns the name of an object field already listed with
// the same members as f, or "", so a table lists those members once.
func sameProperties(listed []event.Field, f event.Field) string {
	for _, o := range listed {
		if slices.EqualFunc(o.Properties, f.Properties, func(a, b event.Field) bool { return a.Name == b.Name }) {
			return o.Name
		}
	}
	return ""
}

func typeName(f event.Field) string {
	switch {
	case f.Name == "state" || f.Name == "previous_state":
		return "string: a [recipient state](#recipient-states)"
	case f.Name == "disconnect_cause_code" || f.Name == "disconnect_cause":
		return f.Type + ": a [cause](#disconnection-causes)"
	case f.Enum != nil:
		return "string: " + strings.Join(wrap(f.Enum), " \\| ")
	case f.Format == event.FormatDateTime:
		return "string (RFC 3339 UTC, ms)"
	case f.Format == event.FormatEntityID:
		return "string (id)"
	case f.Format == event.FormatAccountID || f.Format == event.FormatEventID:
		return "string (32 hex)"
	case f.Type == event.TypeInteger && f.Minimum != nil:
		return fmt.Sprintf("integer ≥ %d", *f.Minimum)
	case f.Type == event.TypeArray && f.Items != nil && f.Items.Type == event.TypeObject:
		return "array of objects"
	case f.Type == event.TypeArray && f.Items != nil:
		return "array of ids"
	case f.Type == event.TypeString && f.MaxLength > 0:
		return fmt.Sprintf("string (≤ %d chars)", f.MaxLength)
	}
	return f.Type
}

func wrap(vals []string) []string {
	out := make([]string, len(vals))
	for i, v := range vals {
		out[i] = "`" + v + "`"
	}
	return out
}

func yesNo(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

// cell escapes text for a Markdown table cell.
func cell(s string) string {
	return strings.NewReplacer("|", "\\|", "<", "&lt;", ">", "&gt;").Replace(s)
}

// anchor is the GitHub heading anchor of an event's section.
func anchor(event string) string { return strings.ReplaceAll(event, ".", "") }
