package event

import (
	"encoding/json"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"pgregory.net/rapid"
)

func TestCatalogueListsEveryEventInFamilyOrder(t *testing.T) {
	var got []string
	for _, s := range Catalogue() {
		got = append(got, s.Event())
	}
	want := []string{
		"queue.create", "queue.delete", "queue.join", "queue.leave", "queue.delivered",
		"recipient.create", "recipient.delete", "recipient.ready", "recipient.away", "recipient.pause",
		"recipient.resume", "recipient.wrapup_start", "recipient.wrapup_complete", "recipient.offer",
		"recipient.reject", "recipient.rescind", "recipient.delivered", "recipient.hangup",
		"recipient.external_call_start", "recipient.external_call_end", "recipient.sync",
		"recipient.wiretap_start", "recipient.wiretap_stop", "recipient.wiretap_failed",
		"recipient.interaction_finalize_start", "recipient.interaction_finalize_end",
		"session.create", "session.delete",
		"stats.queue", "stats.account",
	}
	if !slices.Equal(got, want) {
		t.Fatalf("catalogue order:\n got %v\nwant %v", got, want)
	}
}

func TestEverySpecIsCompleteAndMatchesItsType(t *testing.T) {
	for _, s := range Catalogue() {
		t.Run(s.Event(), func(t *testing.T) {
			if s.Description == "" || !strings.HasSuffix(s.Description, ".") {
				t.Errorf("description %q: want one sentence", s.Description)
			}
			if s.Example.Family() != s.Family || s.Example.Name() != s.Name {
				t.Errorf("example is %s.%s", s.Example.Family(), s.Example.Name())
			}
			switch {
			case s.entityField() == "": // stats.account: the account is the entity
				if len(s.IDs) != 0 {
					t.Errorf("stats.account carries no entity id, got %+v", s.IDs)
				}
			case len(s.IDs) == 0 || s.IDs[0].Name != s.Family.EntityField() || !s.IDs[0].Required:
				t.Errorf("first id must be the required %s, got %+v", s.Family.EntityField(), s.IDs)
			}
			ids := s.Example.ids()
			for _, id := range s.IDs {
				bit := map[string]uint8{"queue_id": idQueue, "recipient_id": idRecipient, "session_id": idSession}[id.Name]
				if ids.allowed&bit == 0 || (ids.required&bit != 0) != id.Required {
					t.Errorf("Spec.IDs %s (required %v) disagrees with the type's ids %+v", id.Name, id.Required, ids)
				}
				ids.allowed &^= bit
			}
			if ids.allowed != 0 {
				t.Errorf("the type carries ids missing from Spec.IDs: %b", ids.allowed)
			}
			p, ok := New(s.Family, s.Name)
			if !ok || reflect.TypeOf(p) != reflect.TypeOf(s.Example) {
				t.Errorf("New returned %T, want %T", p, s.Example)
			}
			for _, f := range s.Fields {
				checkFieldDoc(t, f)
			}
		})
	}
}

func checkFieldDoc(t *testing.T, f Field) {
	t.Helper()
	if f.Description == "" {
		t.Errorf("field %s has no description", f.Name)
	}
	if len(f.Enum) != len(f.EnumDocs) {
		t.Errorf("field %s: %d values but %d value docs", f.Name, len(f.Enum), len(f.EnumDocs))
	}
	for i, d := range f.EnumDocs {
		if d == "" {
			t.Errorf("field %s: value %s undocumented", f.Name, f.Enum[i])
		}
	}
	if f.Items != nil {
		for _, p := range f.Items.Properties {
			checkFieldDoc(t, p)
		}
	}
	for _, p := range f.Properties {
		checkFieldDoc(t, p)
	}
}

// TestStructTagsMatchCatalogue holds the Go types and the catalogue
// together: same fields, same order, same JSON types, and a field is
// optional (omitempty) exactly when the catalogue says so.
func TestStructTagsMatchCatalogue(t *testing.T) {
	envelope := map[string]bool{}
	for _, f := range EnvelopeFields() {
		envelope[f.Name] = true
	}
	for _, s := range Catalogue() {
		t.Run(s.Event(), func(t *testing.T) {
			got := ownFields(reflect.TypeOf(s.Example).Elem(), envelope)
			compareFields(t, s.Event(), got, s.Fields)
		})
	}
	env := ownFields(reflect.TypeOf(Envelope{}), nil)
	var names []string
	for _, f := range env {
		names = append(names, f.Name)
	}
	var want []string
	for _, f := range EnvelopeFields() {
		want = append(want, f.Name)
	}
	if !slices.Equal(names, want) {
		t.Errorf("Envelope json fields %v, EnvelopeFields %v", names, want)
	}
}

type goField struct {
	Name     string
	Type     string
	Optional bool
	Elem     reflect.Type
}

// ownFields lists the JSON fields of a struct, flattening embedded structs
// as encoding/json does and skipping names in skip.
func ownFields(t reflect.Type, skip map[string]bool) []goField {
	var out []goField
	for i := range t.NumField() {
		sf := t.Field(i)
		if sf.Anonymous {
			out = append(out, ownFields(sf.Type, skip)...)
			continue
		}
		name, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if skip[name] {
			continue
		}
		f := goField{Name: name, Optional: strings.Contains(opts, "omitempty")}
		typ := sf.Type
		if typ.Kind() == reflect.Pointer { // an optional number
			typ = typ.Elem()
		}
		switch typ.Kind() {
		case reflect.String:
			f.Type = TypeString
		case reflect.Int, reflect.Int64, reflect.Uint64:
			f.Type = TypeInteger
		case reflect.Float64:
			f.Type = TypeNumber
		case reflect.Struct:
			f.Type, f.Elem = TypeObject, typ
		case reflect.Bool:
			f.Type = TypeBoolean
		case reflect.Slice:
			f.Type, f.Elem = TypeArray, sf.Type.Elem()
			if sf.Type == reflect.TypeOf(json.RawMessage{}) {
				f.Type = TypeObject
			}
		default:
			f.Type = sf.Type.Kind().String()
		}
		out = append(out, f)
	}
	return out
}

func compareFields(t *testing.T, where string, got []goField, want []Field) {
	t.Helper()
	if len(got) != len(want) {
		t.Errorf("%s: Go type has %d fields %v, catalogue %d", where, len(got), got, len(want))
		return
	}
	for i, w := range want {
		g := got[i]
		if g.Name != w.Name || g.Type != w.Type {
			t.Errorf("%s field %d: Go %s (%s), catalogue %s (%s)", where, i, g.Name, g.Type, w.Name, w.Type)
		}
		if g.Optional == w.Required && !(g.Type == TypeArray) {
			t.Errorf("%s.%s: omitempty=%v but required=%v", where, w.Name, g.Optional, w.Required)
		}
		if g.Type == TypeArray && g.Optional {
			t.Errorf("%s.%s: arrays are always present; drop omitempty", where, w.Name)
		}
		if g.Elem != nil && g.Elem.Kind() == reflect.Struct && g.Type == TypeArray {
			compareFields(t, where+"."+w.Name+"[]", ownFields(g.Elem, nil), w.Items.Properties)
		}
		if g.Type == TypeObject && g.Elem != nil {
			compareFields(t, where+"."+w.Name, ownFields(g.Elem, nil), w.Properties)
		}
	}
}

// TestRoundTripEveryEvent: Marshal → Validate → json.Unmarshal into the
// type gives back the same event, and encoding/json agrees with the
// hand-written encoder on every value.
func TestRoundTripEveryEvent(t *testing.T) {
	for _, s := range Catalogue() {
		t.Run(s.Event(), func(t *testing.T) {
			subject, data := marshalled(t, s)
			if want := Subject(s.Family, s.Example.Env().AccountID, s.Family.EntityID(s.Example.Env()), s.Name); subject != want {
				t.Errorf("subject %s, want %s", subject, want)
			}
			f, name, err := Validate(subject, data)
			if err != nil {
				t.Fatalf("Validate refused Marshal's output: %v\n%s", err, data)
			}
			if f != s.Family || name != s.Name {
				t.Errorf("Validate = %s %s", f, name)
			}
			back, _ := New(s.Family, s.Name)
			if err := json.Unmarshal(data, back); err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(back, s.Example) {
				t.Errorf("round trip changed the event:\n got %+v\nwant %+v", back, s.Example)
			}
			std, err := json.Marshal(s.Example)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(asMap(t, std), asMap(t, data)) {
				t.Errorf("encoding/json and Marshal disagree:\nstd %s\nour %s", std, data)
			}
		})
	}
}

func TestRoundTripKeepsCustom(t *testing.T) {
	p := *mustLookup(t, Queue, "join").Example.(*QueueJoin)
	p.Custom = json.RawMessage(`{"crm_ticket":"T-1","tags":["vip"]}`)
	subject, data, err := Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := Validate(subject, data); err != nil {
		t.Fatal(err)
	}
	var back QueueJoin
	if err := json.Unmarshal(data, &back); err != nil {
		t.Fatal(err)
	}
	if string(back.Custom) != string(p.Custom) {
		t.Errorf("custom %s, want %s", back.Custom, p.Custom)
	}
}

func TestStampFillsEnvelope(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 32, 43, 123456789, time.FixedZone("CET", 3600))
	p := &QueueJoin{}
	Stamp(p, now)
	if p.Event != "queue.join" {
		t.Errorf("event %q", p.Event)
	}
	if p.Timestamp != "2026-11-25T11:32:43.123Z" {
		t.Errorf("timestamp %q, want 2026-11-25T11:32:43.123Z", p.Timestamp)
	}
	if p.TimestampMS != 1795606363123 {
		t.Errorf("timestamp_ms %d", p.TimestampMS)
	}
	if !regexp.MustCompile(`^[0-9a-f]{32}$`).MatchString(p.EventID) {
		t.Errorf("event_id %q", p.EventID)
	}
	seen := map[string]bool{}
	for range 1000 {
		id := NewEventID()
		if seen[id] {
			t.Fatalf("event id %s repeated", id)
		}
		seen[id] = true
	}
}

func TestMarshalRefusesEventsThatDoNotFitTheCatalogue(t *testing.T) {
	join := func(edit func(*QueueJoin)) Payload {
		p := *mustLookup(t, Queue, "join").Example.(*QueueJoin)
		edit(&p)
		return &p
	}
	del := func(edit func(*SessionDelete)) Payload {
		p := *mustLookup(t, Session, "delete").Example.(*SessionDelete)
		edit(&p)
		return &p
	}
	sync := func(edit func(*RecipientSync)) Payload {
		p := *mustLookup(t, Recipient, "sync").Example.(*RecipientSync)
		p.ActiveSessions = slices.Clone(p.ActiveSessions)
		edit(&p)
		return &p
	}
	tests := []struct {
		name string
		p    Payload
		want string
	}{
		{"unstamped", &QueueJoin{Envelope: Envelope{AccountID: "0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10", QueueID: "q", SessionID: "s"}, CallerIDNumber: "1", Position: 1},
			`field "event": expected "queue.join", got "" (call Stamp first)`},
		{"bad account", join(func(p *QueueJoin) { p.AccountID = "ACC" }),
			`field "account_id": expected an account id of 32 lowercase hex digits, got "ACC"`},
		{"missing required id", join(func(p *QueueJoin) { p.SessionID = "" }),
			`field "session_id": required for queue.join; expected an id of 1-64 characters A-Z a-z 0-9 _ -`},
		{"id the event does not carry", join(func(p *QueueJoin) { p.RecipientID = "r1" }),
			`field "recipient_id": queue.join does not carry recipient_id; leave it out`},
		{"bad entity id", join(func(p *QueueJoin) { p.QueueID = "q.1" }),
			`field "queue_id": expected an id of 1-64 characters A-Z a-z 0-9 _ -, got "q.1"`},
		{"sequence set", join(func(p *QueueJoin) { p.Sequence = 7 }),
			`field "sequence": sequence is assigned by the stream; leave it out`},
		{"position below 1", join(func(p *QueueJoin) { p.Position = 0 }),
			`field "position": expected an integer ≥ 1, got 0`},
		{"required text empty", join(func(p *QueueJoin) { p.CallerIDNumber = "" }),
			`field "caller_id_number": required; expected a non-empty string`},
		{"text too long", join(func(p *QueueJoin) { p.CallerIDName = strings.Repeat("é", 257) }),
			`field "caller_id_name": expected at most 256 characters, got 257`},
		{"timestamp_ms disagrees", join(func(p *QueueJoin) { p.TimestampMS++ }),
			`field "timestamp_ms": expected 1795606364123, the same instant as timestamp, got 1795606364124`},
		{"timestamp not UTC ms", join(func(p *QueueJoin) { p.Timestamp = "2026-11-25T11:32:44Z" }),
			`field "timestamp": expected an RFC 3339 UTC time with milliseconds like 2026-11-25T11:32:43.123Z, got "2026-11-25T11:32:44Z"`},
		{"custom not an object", join(func(p *QueueJoin) { p.Custom = json.RawMessage(`[1]`) }),
			`field "custom": expected a JSON object`},
		{"unknown cause", del(func(p *SessionDelete) { p.DisconnectCause = "HUNG_UP" }),
			`field "disconnect_cause": expected one of UNALLOCATED_NUMBER, NORMAL_CLEARING, USER_BUSY, NO_USER_RESPONSE, NO_ANSWER, CALL_REJECTED, DESTINATION_OUT_OF_ORDER, INVALID_NUMBER_FORMAT, NORMAL_UNSPECIFIED, NORMAL_CIRCUIT_CONGESTION, NETWORK_OUT_OF_ORDER, NORMAL_TEMPORARY_FAILURE, RECOVERY_ON_TIMER_EXPIRE, INTERWORKING, ORIGINATOR_CANCEL, SYSTEM_SHUTDOWN, BLIND_TRANSFER, ALLOTTED_TIMEOUT, MEDIA_TIMEOUT, got "HUNG_UP"`},
		{"cause code and name disagree", del(func(p *SessionDelete) { p.DisconnectCauseCode = 17 }),
			`field "disconnect_cause_code": expected 16 to match disconnect_cause NORMAL_CLEARING, got 17 (USER_BUSY)`},
		{"bad nested enum", sync(func(p *RecipientSync) { p.ActiveSessions[0].Direction = "sideways" }),
			`field "active_sessions[].direction": expected one of inbound, outbound, got "sideways"`},
		{"bad id in list", sync(func(p *RecipientSync) { p.Queues = []string{"ok", "not ok"} }),
			`field "queues": expected ids of 1-64 characters A-Z a-z 0-9 _ -, got "not ok"`},
		{"bad state", &RecipientReady{Envelope: *mustLookup(t, Recipient, "ready").Example.Env(), Transition: Transition{"idle", StateAway}},
			`field "state": expected one of logged_out, ready, away, offered, busy, wrapup, external_call, got "idle"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := Marshal(tt.p)
			wantValidationError(t, "Marshal", err, tt.want)
		})
	}
}

func TestMarshalRefusesOversizePayload(t *testing.T) {
	p := *mustLookup(t, Recipient, "create").Example.(*RecipientCreate)
	for i := range 3000 {
		p.Queues = append(p.Queues, strings.Repeat("q", 20)+strings.Repeat("0", i%10))
	}
	_, _, err := Marshal(&p)
	if err == nil || !strings.Contains(err.Error(), "the limit is 65536") {
		t.Fatalf("err = %v, want the size limit", err)
	}
}

func TestCauseNamesAndCodesAgree(t *testing.T) {
	for _, c := range Causes() {
		if CauseName(c.Code()) != string(c) || !c.Valid() || c.Description() == "" {
			t.Errorf("%s: code %d, name back %q", c, c.Code(), CauseName(c.Code()))
		}
	}
	for code, name := range map[int]string{16: "NORMAL_CLEARING", 17: "USER_BUSY", 19: "NO_ANSWER", 487: "ORIGINATOR_CANCEL", 0: "", 999: ""} {
		if got := CauseName(code); got != name {
			t.Errorf("CauseName(%d) = %q, want %q", code, got, name)
		}
	}
}

// enumCheck is one enum type's table and Valid method, with the type
// parameter gone so that every enum fits one test table.
type enumCheck struct {
	name   string
	values []string
	docs   []string
	valid  func(string) bool
}

func enumCase[T interface {
	~string
	Valid() bool
}](name string, e enum[T]) enumCheck {
	c := enumCheck{name: name, valid: func(s string) bool { return T(s).Valid() }}
	for _, d := range e {
		c.values = append(c.values, string(d.value))
		c.docs = append(c.docs, d.doc)
	}
	return c
}

// TestEnumTablesAgreeWithValid: each enum's Valid switch accepts exactly
// the values of its table, tried with every documented value of every enum
// and near misses; each value has its sentence.
func TestEnumTablesAgreeWithValid(t *testing.T) {
	checks := []enumCheck{
		enumCase("State", states), enumCase("Strategy", strategies),
		enumCase("QueueDeleteReason", queueDeleteReasons), enumCase("LeaveReason", leaveReasons),
		enumCase("LogoutReason", logoutReasons), enumCase("RejectReason", rejectReasons),
		enumCase("RescindReason", rescindReasons), enumCase("Party", parties),
		enumCase("Direction", directions), enumCase("WiretapMode", wiretapModes),
		enumCase("WiretapFailReason", wiretapFailReasons),
	}
	candidates := []string{"", "READY", "ready ", "idle"}
	for _, c := range checks {
		candidates = append(candidates, c.values...)
	}
	for _, c := range checks {
		for _, v := range candidates {
			if got, want := c.valid(v), slices.Contains(c.values, v); got != want {
				t.Errorf("%s(%q).Valid() = %v, want %v (the table says)", c.name, v, got, want)
			}
		}
		for i, doc := range c.docs {
			if doc == "" {
				t.Errorf("%s %q has no sentence", c.name, c.values[i])
			}
		}
	}
}

func TestValidAccountIDAcceptsOnly32LowercaseHexDigits(t *testing.T) {
	for _, tc := range []struct {
		id   string
		want bool
	}{
		{"0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10", true},
		{NewEventID(), true}, // the same form, also random
		{"", false},
		{"*", false},
		{"#", false},
		{strings.Repeat("a", 31), false},
		{strings.Repeat("a", 33), false},
		{strings.Repeat("A", 32), false},
		{strings.Repeat("g", 32), false},
		{strings.Repeat("a", 31) + ".", false},
	} {
		if got := ValidAccountID(tc.id); got != tc.want {
			t.Errorf("ValidAccountID(%q) = %v, want %v", tc.id, got, tc.want)
		}
	}
}

func TestParseSubject(t *testing.T) {
	const acc = "0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10"
	f, a, e, n, err := ParseSubject("qubicle.recipient." + acc + ".agent-7.wrapup_start")
	if err != nil || f != Recipient || a != acc || e != "agent-7" || n != "wrapup_start" {
		t.Fatalf("ParseSubject = %s %s %s %s %v", f, a, e, n, err)
	}
	bad := map[string]string{
		"":                             `field "routing_key": expected qubicle.<queue|recipient|session|stats>.<account_id>.<entity_id>.<event>, got ""`,
		"qubicle.queue." + acc + ".q1": `field "routing_key": expected 5 dot-separated segments qubicle.<queue|recipient|session|stats>.<account_id>.<entity_id>.<event>, got "qubicle.queue.` + acc + `.q1"`,
		"qubicle.queue." + acc + ".q1.join.extra":           `field "routing_key": expected 5 dot-separated segments qubicle.<queue|recipient|session|stats>.<account_id>.<entity_id>.<event>, got "qubicle.queue.` + acc + `.q1.join.extra"`,
		"qubicle.agent." + acc + ".q1.join":                 `field "routing_key": expected family queue, recipient, session or stats, got "agent"`,
		"qubicle.queue.*.q1.join":                           `field "routing_key": expected an account id of 32 lowercase hex digits, got "*"`,
		"qubicle.session." + acc + ".s*.create":             `field "routing_key": expected a session id of 1-64 characters A-Z a-z 0-9 _ -, got "s*"`,
		"qubicle.session." + acc + ".s1.join":               `field "routing_key": unknown session event "join"; expected one of create, delete`,
		"qubicle.queue." + strings.ToUpper(acc) + ".q.join": `field "routing_key": expected an account id of 32 lowercase hex digits, got "` + strings.ToUpper(acc) + `"`,
		"qubicle.stats." + acc + "._total.queue":            `field "routing_key": stats.queue events name a queue; _total is reserved for stats.account`,
		"qubicle.stats." + acc + ".q1.account":              `field "routing_key": stats.account events have the entity _total, got "q1"`,
	}
	for subject, want := range bad {
		_, _, _, _, err := ParseSubject(subject)
		if err == nil || err.Error() != want {
			t.Errorf("ParseSubject(%q)\n got %v\nwant %s", subject, err, want)
		}
	}
}

// TestAppendStringMatchesEncodingJSON checks the hand-written string
// encoder against encoding/json on arbitrary strings, valid UTF-8 or not.
func TestAppendStringMatchesEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var s string
		if rapid.Bool().Draw(t, "raw bytes") {
			s = string(rapid.SliceOf(rapid.Byte()).Draw(t, "bytes"))
		} else {
			s = rapid.String().Draw(t, "s")
		}
		got := appendString(nil, s)
		if !json.Valid(got) || !utf8.Valid(got) {
			t.Fatalf("appendString(%q) = %s: not valid JSON", s, got)
		}
		var back, want string
		if err := json.Unmarshal(got, &back); err != nil {
			t.Fatal(err)
		}
		std, _ := json.Marshal(s)
		if err := json.Unmarshal(std, &want); err != nil {
			t.Fatal(err)
		}
		if back != want {
			t.Fatalf("appendString(%q) decodes to %q, encoding/json to %q", s, back, want)
		}
	})
}

func TestParseTimestampAgreesWithTimeParse(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		var s string
		if rapid.Bool().Draw(t, "from time") {
			ms := rapid.Int64Range(0, 1<<45).Draw(t, "ms")
			s = time.UnixMilli(ms).UTC().Format(TimestampLayout)
		} else {
			s = rapid.StringMatching(`[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{3}Z`).Draw(t, "s")
		}
		got, ok := parseTimestamp(s)
		want, err := time.Parse(TimestampLayout, s)
		if ok != (err == nil) || ok && got != want.UnixMilli() {
			t.Fatalf("parseTimestamp(%q) = %d %v; time.Parse gives %v %v", s, got, ok, want.UnixMilli(), err)
		}
	})
}
