package event

import (
	"encoding/json"
	"strings"
	"testing"
)

// TestValidateRefusesEventsThatDoNotFit covers each way a published event
// can be wrong, and checks the whole message a publisher would read.
func TestValidateRefusesEventsThatDoNotFit(t *testing.T) {
	joinSubject, joinData := marshalled(t, mustLookup(t, Queue, "join"))
	syncSubject, syncData := marshalled(t, mustLookup(t, Recipient, "sync"))
	delSubject, delData := marshalled(t, mustLookup(t, Session, "delete"))
	edit := func(data []byte, f func(m map[string]any)) []byte {
		m := asMap(t, data)
		f(m)
		return mustJSON(t, m)
	}
	join := func(f func(m map[string]any)) []byte { return edit(joinData, f) }
	const otherAccount = "ffffffffffffffffffffffffffffffff"
	tests := []struct {
		name    string
		subject string
		data    []byte
		want    string
	}{
		{"missing field", joinSubject, join(func(m map[string]any) { delete(m, "position") }),
			`field "position": required; expected an integer ≥ 1`},
		{"wrong type", joinSubject, join(func(m map[string]any) { m["position"] = "abc" }),
			`field "position": expected an integer ≥ 1, got "abc"`},
		{"below minimum", joinSubject, join(func(m map[string]any) { m["position"] = 0 }),
			`field "position": expected an integer ≥ 1, got 0`},
		{"fraction for integer", joinSubject, join(func(m map[string]any) { m["position"] = 1.5 }),
			`field "position": expected an integer ≥ 1, got 1.5`},
		{"null", joinSubject, join(func(m map[string]any) { m["estimated_wait_s"] = nil }),
			`field "estimated_wait_s": expected an integer ≥ 0, got null`},
		{"empty required string", joinSubject, join(func(m map[string]any) { m["caller_id_number"] = "" }),
			`field "caller_id_number": expected a non-empty string, got an empty string`},
		{"bad enum", delSubject, edit(delData, func(m map[string]any) { m["hangup_by"] = "nobody" }),
			`field "hangup_by": expected one of caller, recipient, system, got "nobody"`},
		{"unknown cause code", delSubject, edit(delData, func(m map[string]any) { m["disconnect_cause_code"] = 99 }),
			`field "disconnect_cause_code": expected one of the integers 1, 16, 17, 18, 19, 21, 27, 28, 31, 34, 38, 41, 102, 127, 487, 501, 600, 602, 604, got 99`},
		{"cause code and name disagree", delSubject, edit(delData, func(m map[string]any) { m["disconnect_cause_code"] = 19 }),
			`field "disconnect_cause_code": expected 16 to match disconnect_cause NORMAL_CLEARING, got 19 (NO_ANSWER)`},
		{"foreign account", joinSubject, join(func(m map[string]any) { m["account_id"] = otherAccount }),
			`field "account_id": expected the routing key's account 0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10, got "` + otherAccount + `"`},
		{"entity differs from subject", joinSubject, join(func(m map[string]any) { m["queue_id"] = "other" }),
			`field "queue_id": expected the routing key's id "7a1c2e3f4b5d6a7c8e9f0a1b2c3d4e5f", got "other"`},
		{"event differs from subject", joinSubject, join(func(m map[string]any) { m["event"] = "queue.leave" }),
			`field "event": expected "queue.join" to match the routing key, got "queue.leave"`},
		{"wrong subject", strings.Replace(joinSubject, ".join", ".joined", 1), joinData,
			`field "routing_key": unknown queue event "joined"; expected one of create, delete, join, leave, delivered`},
		{"wildcard subject", "qubicle.queue.*.q1.join", joinData,
			`field "routing_key": expected an account id of 32 lowercase hex digits, got "*"`},
		{"sequence present", joinSubject, join(func(m map[string]any) { m["sequence"] = 12 }),
			`field "sequence": sequence is assigned by the stream; leave it out`},
		{"unknown field", joinSubject, join(func(m map[string]any) { m["colour"] = "blue" }),
			`field "colour": not a field of queue.join; put producer extensions under "custom"`},
		{"id the event does not carry", joinSubject, join(func(m map[string]any) { m["recipient_id"] = "r1" }),
			`field "recipient_id": queue.join does not carry recipient_id; leave it out`},
		{"missing required id", joinSubject, join(func(m map[string]any) { delete(m, "session_id") }),
			`field "session_id": required; expected an id of 1-64 characters A-Z a-z 0-9 _ -`},
		{"custom not an object", joinSubject, join(func(m map[string]any) { m["custom"] = []any{1} }),
			`field "custom": expected a JSON object, got an array`},
		{"event id uppercase", joinSubject, join(func(m map[string]any) { m["event_id"] = strings.ToUpper(m["event_id"].(string)) }),
			`field "event_id": expected 32 lowercase hex digits, got "5F0C3A9E2D7B41C68E0F1A2B3C4D5E02"`},
		{"timestamp with offset", joinSubject, join(func(m map[string]any) { m["timestamp"] = "2026-11-25T12:32:44.123+01:00" }),
			`field "timestamp": expected an RFC 3339 UTC time with milliseconds like 2026-11-25T11:32:43.123Z, got "2026-11-25T12:32:44.123+01:00"`},
		{"timestamp_ms disagrees", joinSubject, join(func(m map[string]any) { m["timestamp_ms"] = 1 }),
			`field "timestamp_ms": expected 1795606364123, the same instant as timestamp, got 1`},
		{"nested field", syncSubject, edit(syncData, func(m map[string]any) {
			m["active_sessions"].([]any)[0].(map[string]any)["direction"] = "up"
		}), `field "active_sessions[0].direction": expected one of inbound, outbound, got "up"`},
		{"nested unknown field", syncSubject, edit(syncData, func(m map[string]any) {
			m["active_sessions"].([]any)[0].(map[string]any)["mood"] = "calm"
		}), `field "active_sessions[0].mood": not a documented field`},
		{"bad id in list", syncSubject, edit(syncData, func(m map[string]any) { m["queues"] = []any{"a b"} }),
			`field "queues[0]": expected an id of 1-64 characters A-Z a-z 0-9 _ -, got "a b"`},
		{"text too long", joinSubject, join(func(m map[string]any) { m["caller_id_name"] = strings.Repeat("x", 257) }),
			`field "caller_id_name": expected at most 256 characters, got 257`},
		{"non-object array", joinSubject, []byte(`[1,2]`), `payload must be a JSON object, got an array`},
		{"non-object string", joinSubject, []byte(`"join"`), `payload must be a JSON object, got "join"`},
		{"non-object null", joinSubject, []byte(`null`), `payload must be a JSON object, got null`},
		{"empty body", joinSubject, []byte(``), `payload is not valid JSON: it ends too early`},
		{"malformed JSON", joinSubject, []byte(`{"account_id":`), `payload is not valid JSON: it ends too early`},
		{"bad token", joinSubject, []byte(`{"a":tru}`), `payload is not valid JSON: expected a value, got 't' at byte 5`},
		{"no comma between fields", joinSubject, []byte(`{"a":1 "b":2}`), `payload is not valid JSON: expected ',' or '}', got '"' at byte 7`},
		{"no comma between elements", joinSubject, []byte(`{"a":[1 2]}`), `payload is not valid JSON: expected ',' or ']', got '2' at byte 8`},
		{"trailing data", joinSubject, append(joinData, []byte(` {}`)...), `payload must be one JSON object with nothing after it`},
		{"duplicate key", joinSubject, []byte(`{"position":1,"position":2}`), `field "position": appears twice; each field may appear once`},
		{"invalid UTF-8", joinSubject, []byte("{\"caller_id_name\":\"\xff\"}"), `payload must be valid UTF-8`},
		{"too deep", joinSubject, []byte(`{"custom":` + strings.Repeat(`{"a":`, 20) + `1` + strings.Repeat(`}`, 21)), `payload is nested more than 16 levels deep`},
		{"oversize", joinSubject, join(func(m map[string]any) { m["custom"] = map[string]any{"pad": strings.Repeat("x", MaxPayloadBytes)} }),
			`payload is 65935 bytes; the limit is 65536`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Validate(tt.subject, tt.data)
			wantValidationError(t, "Validate", err, tt.want)
		})
	}
}

func TestValidateAcceptsCustomAndOptionalFieldsLeftOut(t *testing.T) {
	subject, data := marshalled(t, mustLookup(t, Queue, "join"))
	m := asMap(t, data)
	delete(m, "caller_id_name")
	m["custom"] = map[string]any{"crm": map[string]any{"ticket": 42}}
	f, name, err := Validate(subject, mustJSON(t, m))
	if err != nil || f != Queue || name != "join" {
		t.Fatalf("Validate = %s %s %v", f, name, err)
	}
}

// TestValidateAgreesWithMarshal: what Validate accepts decodes into the Go
// type and encodes again to a payload Validate accepts.
func TestValidateAgreesWithMarshal(t *testing.T) {
	for _, s := range Catalogue() {
		subject, data := marshalled(t, s)
		p, _ := New(s.Family, s.Name)
		if err := json.Unmarshal(data, p); err != nil {
			t.Fatal(err)
		}
		subject2, data2, err := Marshal(p)
		if err != nil || subject2 != subject || string(data2) != string(data) {
			t.Errorf("%s: re-encoding differs: %v\n%s\n%s", s.Event(), err, data, data2)
		}
	}
}
