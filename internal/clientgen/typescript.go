package clientgen

import (
	"strconv"
	"strings"
)

// typeScript writes the payload, enum and snapshot types as a TypeScript
// module: interfaces and string-literal unions, plus the list of event
// types the client checks at run time.
func typeScript(m *model) []byte {
	var w writer
	w.line("// %s", header)
	w.line("")
	w.line("/* eslint-disable */")
	w.line("")
	for _, e := range m.enums {
		tsDoc(&w, "", enumDocText(e, strconv.Quote))
		vals := make([]string, len(e.values))
		for i, v := range e.values {
			vals[i] = strconv.Quote(v)
		}
		w.line("export type %s = %s;", e.name, strings.Join(vals, " | "))
		w.line("")
	}
	tsDoc(&w, "", "The correlation fields every payload carries. Which of queue_id, recipient_id and session_id an event carries is in its own type.")
	w.line("export interface Envelope {")
	for _, f := range m.envelope {
		tsField(&w, f)
	}
	w.line("}")
	w.line("")
	for _, s := range m.payloads {
		tsDoc(&w, "", s.doc+"\n\nRouting key: `"+s.routingKey+"`.")
		w.line("export interface %s extends Envelope {", s.name)
		for _, f := range s.fields {
			tsField(&w, f)
		}
		w.line("}")
		w.line("")
	}
	for _, s := range m.structs {
		tsDoc(&w, "", s.doc)
		w.line("export interface %s {", s.name)
		for _, f := range s.fields {
			tsField(&w, f)
		}
		w.line("}")
		w.line("")
	}
	tsDoc(&w, "", "Every payload of the catalogue; switch on its `event` member to narrow it to one type.")
	w.line("export type Payload =")
	for i, s := range m.payloads {
		end := ""
		if i == len(m.payloads)-1 {
			end = ";"
		}
		w.line("  | %s%s", s.name, end)
	}
	w.line("")
	tsDoc(&w, "", "The payload type of each event type.")
	w.line("export interface PayloadMap {")
	for _, s := range m.payloads {
		w.line("  %s: %s;", strconv.Quote(s.event), s.name)
	}
	w.line("}")
	w.line("")
	tsDoc(&w, "", `An event type, "<family>.<name>", e.g. "queue.join".`)
	w.line("export type EventType = keyof PayloadMap;")
	return w.Bytes()
}

func tsField(w *writer, f field) {
	tsDoc(w, "  ", f.doc)
	opt := ""
	if !f.required && !f.nullable {
		opt = "?"
	}
	t := tsType(f.typ)
	if f.nullable {
		t += " | null"
	}
	w.line("  %s%s: %s;", f.json, opt, t)
}

func tsType(t typeRef) string {
	switch t.kind {
	case kString:
		return "string"
	case kInteger, kNumber:
		return "number"
	case kBoolean:
		return "boolean"
	case kArray:
		e := tsType(*t.elem)
		if strings.Contains(e, " ") {
			return "Array<" + e + ">"
		}
		return e + "[]"
	case kObject, kEnum:
		return t.name
	case kLiteral:
		return strconv.Quote(t.value)
	case kUnion:
		q := make([]string, len(t.values))
		for i, v := range t.values {
			q[i] = strconv.Quote(v)
		}
		return strings.Join(q, " | ")
	}
	return "Record<string, unknown>"
}

func tsDoc(w *writer, indent, doc string) {
	lines := docLines(doc)
	if len(lines) == 0 {
		return
	}
	if len(lines) == 1 {
		w.line("%s/** %s */", indent, strings.ReplaceAll(lines[0], "*/", "* /"))
		return
	}
	w.line("%s/**", indent)
	for _, l := range lines {
		l = strings.ReplaceAll(strings.TrimRight(l, " "), "*/", "* /")
		if l == "" {
			w.line("%s *", indent)
		} else {
			w.line("%s * %s", indent, l)
		}
	}
	w.line("%s */", indent)
}
