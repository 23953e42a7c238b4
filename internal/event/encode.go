package event

import (
	"encoding/json"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/ccevents/ccevents/internal/shorten"
)

// MaxPayloadBytes is the largest event payload accepted or produced: 64 KiB.
const MaxPayloadBytes = 64 << 10

// Marshal checks p against the catalogue and returns its routing key and its
// JSON encoding. It refuses, with a *ValidationError, a payload missing a
// required field, with a value outside its documented set or range, with a
// Sequence (the stream assigns it), or with an Event that does not match its
// type. Call Stamp first.
func Marshal(p Payload) (subject string, data []byte, err error) {
	data, err = AppendJSON(make([]byte, 0, 512), p)
	if err != nil {
		return "", nil, err
	}
	var buf [160]byte
	return string(appendSubject(buf[:0], p)), data, nil
}

// AppendJSON is Marshal's encoding step: it appends p's JSON encoding to dst
// after the same checks, for callers that reuse buffers.
func AppendJSON(dst []byte, p Payload) ([]byte, error) {
	e := encoder{b: dst}
	e.envelope(p)
	e = p.appendFields(e)
	e.custom(p.Env().Custom)
	e.b = append(e.b, '}')
	if e.err != nil {
		return dst, e.err
	}
	if len(e.b)-len(dst) > MaxPayloadBytes {
		return dst, &ValidationError{Message: "payload is " + strconv.Itoa(len(e.b)-len(dst)) + " bytes; the limit is " + strconv.Itoa(MaxPayloadBytes)}
	}
	return e.b, nil
}

// New returns a pointer to a zero payload of the given event, ready to be
// decoded into, or false when the catalogue has no such event.
func New(f Family, name string) (Payload, bool) {
	i, ok := lookupKind(f, name)
	if !ok {
		return nil, false
	}
	return kinds[i].new(), true
}

// Known reports whether name is an event of family f. Unlike Lookup it
// builds nothing: subscribes check every named binding with it.
func Known(f Family, name string) bool {
	_, ok := lookupKind(f, name)
	return ok
}

func lookupKind(f Family, name string) (int, bool) {
	for i := range kinds {
		if kinds[i].family == f && kinds[i].name == name {
			return i, true
		}
	}
	return 0, false
}

// Names returns the event names of family f in catalogue order.
func Names(f Family) []string {
	var out []string
	for _, k := range kinds {
		if k.family == f {
			out = append(out, k.name)
		}
	}
	return out
}

// encoder appends one JSON object and records the first problem found.
// Errors are allocated only when something is wrong.
type encoder struct {
	b     []byte
	first bool // next key opens the object: no comma
	err   *ValidationError
}

func (e *encoder) fail(field, msg string) {
	if e.err == nil {
		e.err = &ValidationError{Field: field, Message: msg}
	}
}

func (e *encoder) key(name string) {
	if e.first {
		e.first = false
	} else {
		e.b = append(e.b, ',')
	}
	e.b = append(e.b, '"')
	e.b = append(e.b, name...)
	e.b = append(e.b, '"', ':')
}

func (e *encoder) envelope(p Payload) {
	env := p.Env()
	e.b = append(e.b, '{')
	e.first = true
	if !ValidAccountID(env.AccountID) {
		e.fail("account_id", "expected an account id of 32 lowercase hex digits, got "+quoteShort(env.AccountID))
	}
	e.key("account_id")
	e.b = appendString(e.b, env.AccountID)
	if env.Event != p.event() {
		e.fail("event", "expected "+strconv.Quote(p.event())+", got "+quoteShort(env.Event)+" (call Stamp first)")
	}
	e.key("event")
	e.b = appendString(e.b, env.Event)
	if !validEventID(env.EventID) {
		e.fail("event_id", "expected 32 lowercase hex digits, got "+quoteShort(env.EventID)+" (call Stamp first)")
	}
	e.key("event_id")
	e.b = appendString(e.b, env.EventID)
	if ms, ok := parseTimestamp(env.Timestamp); !ok {
		e.fail("timestamp", errTimestamp+", got "+quoteShort(env.Timestamp))
	} else if ms != env.TimestampMS {
		e.fail("timestamp_ms", "expected "+strconv.FormatInt(ms, 10)+", the same instant as timestamp, got "+strconv.FormatInt(env.TimestampMS, 10))
	}
	e.key("timestamp")
	e.b = appendString(e.b, env.Timestamp)
	e.key("timestamp_ms")
	e.b = strconv.AppendInt(e.b, env.TimestampMS, 10)
	if env.Sequence != 0 {
		e.fail("sequence", errSequence)
	}
	ids := p.ids()
	e.envID(ids, idQueue, "queue_id", env.QueueID, p)
	e.envID(ids, idRecipient, "recipient_id", env.RecipientID, p)
	e.envID(ids, idSession, "session_id", env.SessionID, p)
}

const errTimestamp = "expected an RFC 3339 UTC time with milliseconds like 2026-11-25T11:32:43.123Z"

const errSequence = "sequence is assigned by the stream; leave it out"

func (e *encoder) envID(ids idSet, bit uint8, name, v string, p Payload) {
	switch {
	case v == "" && ids.required&bit != 0:
		e.fail(name, "required for "+p.event()+"; expected an id of 1-64 characters A-Z a-z 0-9 _ -")
	case v == "":
		return
	case ids.allowed&bit == 0:
		e.fail(name, p.event()+" does not carry "+name+"; leave it out")
	default:
		e.entity(name, name, v, true)
	}
}

// text writes a string field; an optional one is omitted when empty.
func (e *encoder) text(name, v string, required bool, max int) {
	if v == "" {
		if !required {
			return
		}
		e.fail(name, "required; expected a non-empty string")
	} else if len(v) > max && utf8.RuneCountInString(v) > max {
		e.fail(name, "expected at most "+strconv.Itoa(max)+" characters, got "+strconv.Itoa(utf8.RuneCountInString(v)))
	}
	e.key(name)
	e.b = appendString(e.b, v)
}

// entity writes an id field (field is the name used in errors).
func (e *encoder) entity(field, name, v string, required bool) {
	if v == "" && !required {
		return
	}
	if !ValidEntityID(v) {
		e.fail(field, "expected an id of 1-64 characters A-Z a-z 0-9 _ -, got "+quoteShort(v))
	}
	e.key(name)
	e.b = appendString(e.b, v)
}

func (e *encoder) idList(name string, ids []string) {
	e.key(name)
	e.b = append(e.b, '[')
	for i, id := range ids {
		if i > 0 {
			e.b = append(e.b, ',')
		}
		if !ValidEntityID(id) {
			e.fail(name, "expected ids of 1-64 characters A-Z a-z 0-9 _ -, got "+quoteShort(id))
		}
		e.b = appendString(e.b, id)
	}
	e.b = append(e.b, ']')
}

// enumValue is implemented by the typed string sets of this package.
type enumValue interface {
	~string
	Valid() bool
}

// enumField writes an enum field; all lists the documented values and is
// called only to word an error.
func enumField[T enumValue](e *encoder, field, name string, v T, all func() []T) {
	if !v.Valid() {
		e.fail(field, "expected one of "+joinValues(all())+", got "+quoteShort(string(v)))
	}
	e.key(name)
	e.b = appendString(e.b, string(v))
}

func joinValues[T ~string](vals []T) string {
	s := make([]string, len(vals))
	for i, v := range vals {
		s[i] = string(v)
	}
	return strings.Join(s, ", ")
}

func (e *encoder) transition(t Transition) {
	enumField(e, "state", "state", t.State, States)
	enumField(e, "previous_state", "previous_state", t.PreviousState, States)
}

func (e *encoder) int(name string, v, min int64) {
	if v < min {
		e.fail(name, "expected an integer ≥ "+strconv.FormatInt(min, 10)+", got "+strconv.FormatInt(v, 10))
	}
	e.key(name)
	e.b = strconv.AppendInt(e.b, v, 10)
}

func (e *encoder) bool(name string, v bool) {
	e.key(name)
	e.b = strconv.AppendBool(e.b, v)
}

func (e *encoder) timestamp(name, v string) { e.timestampAs(name, name, v) }

func (e *encoder) timestampAs(field, name, v string) {
	if _, ok := parseTimestamp(v); !ok {
		e.fail(field, errTimestamp+", got "+quoteShort(v))
	}
	e.key(name)
	e.b = appendString(e.b, v)
}

func (e *encoder) custom(raw json.RawMessage) {
	if len(raw) == 0 {
		return
	}
	if !isJSONObject(raw) {
		e.fail("custom", "expected a JSON object")
		return
	}
	e.key("custom")
	e.b = append(e.b, raw...)
}

// isJSONObject reports whether raw is one valid JSON object.
func isJSONObject(raw []byte) bool {
	for _, c := range raw {
		switch c {
		case ' ', '\t', '\r', '\n':
			continue
		case '{':
			return json.Valid(raw)
		}
		return false
	}
	return false
}

// parseTimestamp returns the Unix milliseconds of a timestamp in
// TimestampLayout, checking its exact shape and that it names a real
// instant, without allocating (time.Parse is most of the encoding cost).
func parseTimestamp(s string) (int64, bool) {
	if len(s) != len(TimestampLayout) {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		c, l := s[i], TimestampLayout[i]
		if l >= '0' && l <= '9' {
			if c < '0' || c > '9' {
				return 0, false
			}
		} else if c != l {
			return 0, false
		}
	}
	num := func(from, to int) int {
		n := 0
		for _, c := range []byte(s[from:to]) {
			n = n*10 + int(c-'0')
		}
		return n
	}
	year, month, day := num(0, 4), num(5, 7), num(8, 10)
	hour, minute, sec, ms := num(11, 13), num(14, 16), num(17, 19), num(20, 23)
	if month < 1 || month > 12 || day < 1 || hour > 23 || minute > 59 || sec > 59 {
		return 0, false
	}
	t := time.Date(year, time.Month(month), day, hour, minute, sec, ms*int(time.Millisecond), time.UTC)
	if t.Day() != day { // February 30th and the like roll over
		return 0, false
	}
	return t.UnixMilli(), true
}

func causeMismatch(code int, c Cause) string {
	want := c.Code()
	if name := CauseName(code); name != "" {
		return "expected " + strconv.Itoa(want) + " to match disconnect_cause " + string(c) + ", got " + strconv.Itoa(code) + " (" + name + ")"
	}
	return "expected " + strconv.Itoa(want) + " to match disconnect_cause " + string(c) + ", got " + strconv.Itoa(code)
}

// quoteShort quotes s for an error message, cut to 64 bytes so that error
// messages stay readable whatever a client sent.
func quoteShort(s string) string { return shorten.Quote(s, 64) }

const hexDigits = "0123456789abcdef"

// appendString appends s as a JSON string. Invalid UTF-8 becomes U+FFFD and
// U+2028/U+2029 are escaped so the output is safe inside JavaScript too.
func appendString(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
