package clientgen

import (
	"slices"
	"strconv"
	"strings"
)

// pyKeywords are the names a dataclass field cannot have; such a JSON
// member becomes the name with a trailing underscore.
var pyKeywords = []string{"False", "None", "True", "and", "as", "assert", "async", "await", "break", "class",
	"continue", "def", "del", "elif", "else", "except", "finally", "for", "from", "global", "if", "import", "in",
	"is", "lambda", "nonlocal", "not", "or", "pass", "raise", "return", "try", "while", "with", "yield"}

func pyName(json string) string {
	if slices.Contains(pyKeywords, json) {
		return json + "_"
	}
	return json
}

// python writes the payload, enum and snapshot types as a Python module of
// frozen dataclasses, each with from_dict, plus decode() and the table of
// payload types by event type.
func python(m *model) []byte {
	var w writer
	w.line("# %s", header)
	w.line(`"""Typed payloads of every ccevents event, and the snapshot's types.`)
	w.line("")
	w.line("decode(data) turns an event's data (a dict) into its dataclass, e.g. QueueJoin;")
	w.line("every dataclass has from_dict() and to_dict(). Enum types are Literal aliases")
	w.line(`whose values are listed in the matching *_VALUES tuple."""`)
	w.line("")
	w.line("from __future__ import annotations")
	w.line("")
	w.line("import dataclasses")
	w.line("import keyword")
	w.line("from typing import Any, Callable, Literal, Mapping, Optional, Union")
	w.line("")
	w.line("from .errors import DecodeError, UnknownEventError")
	w.line("")
	w.line("__all__ = [")
	names := []string{"Envelope", "Payload", "PAYLOAD_TYPES", "EVENT_TYPES", "decode"}
	for _, e := range m.enums {
		names = append(names, e.name, pyConst(e.name)+"_VALUES")
	}
	for _, s := range m.payloads {
		names = append(names, s.name)
	}
	for _, s := range m.structs {
		names = append(names, s.name)
	}
	for _, n := range names {
		w.line("    %s,", strconv.Quote(n))
	}
	w.line("]")
	w.line("")
	for _, e := range m.enums {
		vals := make([]string, len(e.values))
		for i, v := range e.values {
			vals[i] = strconv.Quote(v)
		}
		w.line("")
		w.line("%s = Literal[%s]", e.name, strings.Join(vals, ", "))
		pyDoc(&w, "", enumDocText(e, strconv.Quote))
		w.line("%s_VALUES: tuple[%s, ...] = (%s,)", pyConst(e.name), e.name, strings.Join(vals, ", "))
	}
	w.line("")
	w.line("")
	w.line("@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)")
	w.line("class Envelope:")
	pyDoc(&w, "    ", "The correlation fields every payload carries. Which of queue_id, recipient_id and session_id an event carries is in its own type.")
	for _, f := range m.envelope {
		pyField(&w, f)
	}
	w.line("")
	w.line("    def to_dict(self) -> dict[str, Any]:")
	w.line(`        """The payload as the gateway encodes it (members that are None left out)."""`)
	w.line("        return _to_dict(self)")
	for _, s := range m.payloads {
		pyStruct(&w, m, s, "Envelope")
	}
	for _, s := range m.structs {
		pyStruct(&w, m, s, "")
	}
	w.line("")
	w.line("")
	w.line("Payload = Union[")
	for _, s := range m.payloads {
		w.line("    %s,", s.name)
	}
	w.line("]")
	pyDoc(&w, "", "Any payload of the catalogue; use isinstance or match on the class.")
	w.line("")
	w.line("PAYLOAD_TYPES: dict[str, type] = {")
	for _, s := range m.payloads {
		w.line("    %s: %s,", strconv.Quote(s.event), s.name)
	}
	w.line("}")
	pyDoc(&w, "", `The payload class of each event type ("queue.join": QueueJoin, ...).`)
	w.line("")
	w.line("EVENT_TYPES: tuple[str, ...] = tuple(PAYLOAD_TYPES)")
	pyDoc(&w, "", "Every event type this client knows, in catalogue order.")
	w.write(pyRuntime)
	return w.Bytes()
}

// pyConst turns "LeaveReason" into "LEAVE_REASON".
func pyConst(name string) string {
	var b strings.Builder
	for i, r := range name {
		if i > 0 && r >= 'A' && r <= 'Z' {
			b.WriteByte('_')
		}
		b.WriteString(strings.ToUpper(string(r)))
	}
	return b.String()
}

func pyStruct(w *writer, m *model, s structDef, base string) {
	w.line("")
	w.line("")
	w.line("@dataclasses.dataclass(frozen=True, kw_only=True, slots=True)")
	if base != "" {
		w.line("class %s(%s):", s.name, base)
	} else {
		w.line("class %s:", s.name)
	}
	doc := s.doc
	if s.routingKey != "" {
		doc += "\n\nRouting key: " + s.routingKey
	}
	if strings.TrimSpace(doc) == "" {
		doc = s.name + "."
	}
	pyDoc(w, "    ", doc)
	for _, f := range s.fields {
		pyField(w, f)
	}
	w.line("")
	w.line("    @classmethod")
	w.line("    def from_dict(cls, d: Mapping[str, Any]) -> %s:", s.name)
	w.line(`        """Builds the value from its JSON object; raises DecodeError if a required member is missing."""`)
	w.line("        try:")
	w.line("            return cls(")
	var all []field
	if base != "" {
		for _, f := range m.envelope {
			if !slices.ContainsFunc(s.fields, func(o field) bool { return o.json == f.json }) {
				all = append(all, f)
			}
		}
	}
	all = append(all, s.fields...)
	for _, f := range all {
		if f.typ.kind == kLiteral {
			continue // the class's default
		}
		w.line("                %s=%s,", pyName(f.json), pyDecode(f))
	}
	w.line("            )")
	w.line("        except (KeyError, TypeError, ValueError, AttributeError) as e:")
	w.line("            raise DecodeError(f\"%s: {_describe(e)}\") from e", s.name)
	if base == "" {
		w.line("")
		w.line("    def to_dict(self) -> dict[str, Any]:")
		w.line(`        """The value as the gateway encodes it (members that are None left out)."""`)
		w.line("        return _to_dict(self)")
	}
}

// pyDecode is the expression that reads f from the mapping d.
func pyDecode(f field) string {
	get := "d[" + strconv.Quote(f.json) + "]"
	if !f.required {
		get = "d.get(" + strconv.Quote(f.json) + ")"
	}
	conv := pyConv(f.typ)
	if conv == "" {
		return get
	}
	if !f.required {
		return "_opt(" + conv + ", " + get + ")"
	}
	return conv + "(" + get + ")"
}

// pyConv is the function that turns a JSON value into the field's Python
// value, or "" when the JSON value is already it.
func pyConv(t typeRef) string {
	switch t.kind {
	case kObject:
		return t.name + ".from_dict"
	case kArray:
		if e := pyConv(*t.elem); e != "" {
			return "_list_of(" + e + ")"
		}
		return "_list"
	case kNumber:
		return "float"
	}
	return ""
}

func pyType(t typeRef) string {
	switch t.kind {
	case kString:
		return "str"
	case kInteger:
		return "int"
	case kNumber:
		return "float"
	case kBoolean:
		return "bool"
	case kArray:
		return "list[" + pyType(*t.elem) + "]"
	case kObject, kEnum:
		return t.name
	case kLiteral:
		return "Literal[" + strconv.Quote(t.value) + "]"
	case kUnion:
		q := make([]string, len(t.values))
		for i, v := range t.values {
			q[i] = strconv.Quote(v)
		}
		return "Literal[" + strings.Join(q, ", ") + "]"
	}
	return "dict[str, Any]"
}

func pyField(w *writer, f field) {
	t := pyType(f.typ)
	switch {
	case f.typ.kind == kLiteral:
		w.line("    %s: %s = %s", pyName(f.json), t, strconv.Quote(f.typ.value))
	case f.required:
		w.line("    %s: %s", pyName(f.json), t)
	default:
		w.line("    %s: Optional[%s] = None", pyName(f.json), t)
	}
	pyDoc(w, "    ", f.doc)
}

func pyDoc(w *writer, indent, doc string) {
	lines := docLines(doc)
	if len(lines) == 0 {
		return
	}
	for i, l := range lines {
		lines[i] = strings.ReplaceAll(strings.ReplaceAll(strings.TrimRight(l, " "), `\`, `\\`), `"""`, `\"\"\"`)
	}
	if len(lines) == 1 {
		w.line(`%s"""%s"""`, indent, lines[0])
		return
	}
	w.line(`%s"""%s`, indent, lines[0])
	for _, l := range lines[1:] {
		if l == "" {
			w.line("")
		} else {
			w.line("%s%s", indent, l)
		}
	}
	w.line(`%s"""`, indent)
}

func (w *writer) write(s string) { w.WriteString(s) }

// pyRuntime is the fixed tail of events.py: decode and the helpers the
// generated from_dict and to_dict methods use.
const pyRuntime = `

def decode(data: Mapping[str, Any]) -> Payload:
    """Returns the typed payload of an event's data, e.g. a QueueJoin.

    Raises UnknownEventError for an event type this client does not know (a
    newer gateway's; skip it) and DecodeError when a required member is missing.
    """
    name = data.get("event") if isinstance(data, Mapping) else None
    cls = PAYLOAD_TYPES.get(name) if isinstance(name, str) else None
    if cls is None:
        raise UnknownEventError(f"event type {name!r} is not in this client's catalogue")
    return cls.from_dict(data)


def _opt(conv: Callable[[Any], Any], v: Any) -> Any:
    return None if v is None else conv(v)


def _list(v: Any) -> list[Any]:
    # The engine encodes an empty list as null in a few places.
    return [] if v is None else list(v)


def _list_of(conv: Callable[[Any], Any]) -> Callable[[Any], list[Any]]:
    return lambda v: [] if v is None else [conv(x) for x in v]


def _describe(e: BaseException) -> str:
    if isinstance(e, KeyError):
        return f"required member {e.args[0]!r} is missing"
    return str(e)


def _to_dict(obj: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for f in dataclasses.fields(obj):
        v = getattr(obj, f.name)
        if v is None:
            continue
        name = f.name
        if name.endswith("_") and keyword.iskeyword(name[:-1]):
            name = name[:-1]
        out[name] = _plain(v)
    return out


def _plain(v: Any) -> Any:
    if dataclasses.is_dataclass(v):
        return _to_dict(v)
    if isinstance(v, list):
        return [_plain(x) for x in v]
    return v
`
