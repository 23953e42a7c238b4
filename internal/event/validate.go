package event

import (
	"encoding/json"
	"slices"
	"strconv"
	"strings"
	"sync"
	"unicode/utf8"

	"github.com/ccevents/ccevents/internal/shorten"
)

// maxDepth bounds nesting in published payloads; the catalogue needs 3.
const maxDepth = 16

// validationTables are the catalogue and envelope Validate checks against,
// built once: Catalogue and EnvelopeFields build fresh values on every call,
// and Validate only reads them.
var validationTables = sync.OnceValues(func() ([]Spec, []Field) {
	return Catalogue(), EnvelopeFields()
})

// Validate checks an event published from outside the engine (REST, raw
// NATS) before it enters the bus: the subject must be a well-formed routing
// key of a catalogue event, and data a JSON object of at most
// MaxPayloadBytes that fits that event: required fields present with the
// right JSON type, values in their documented sets and ranges, account_id
// and the entity id equal to the subject's, event equal to
// "<family>.<name>", no "sequence" (the stream assigns it) and no top-level
// field outside the catalogue except "custom", an object reserved for
// producer extensions. It returns the event's family and name, or a
// *ValidationError naming the field at fault and what was expected, or a
// ValidationErrors when the payload has several mistakes.
func Validate(subject string, data []byte) (Family, string, error) {
	if len(data) > MaxPayloadBytes {
		return "", "", &ValidationError{Message: "payload is " + strconv.Itoa(len(data)) + " bytes; the limit is " + strconv.Itoa(MaxPayloadBytes)}
	}
	family, account, entity, name, err := ParseSubject(subject)
	if err != nil {
		return "", "", err
	}
	obj, err := decodeObject(data)
	if err != nil {
		return "", "", err
	}
	i, _ := lookupKind(family, name)
	specs, env := validationTables()
	spec := specs[i]
	if err := checkPayload(obj, spec, env, account, entity); err != nil {
		return "", "", err
	}
	// The structure fits; decode into the Go type and run the same checks
	// Marshal runs, so whatever Validate accepts the engine could have sent
	// (this covers rules across fields, like cause code and name agreeing).
	p := kinds[i].new()
	if err := json.Unmarshal(data, p); err != nil {
		return "", "", &ValidationError{Message: "payload does not fit " + spec.Event()}
	}
	if _, err := AppendJSON(nil, p); err != nil {
		return "", "", err
	}
	return family, name, nil
}

// maxProblems bounds how many mistakes of one payload are reported.
const maxProblems = 20

// problems collects the mistakes found in one payload, in the order found.
type problems []*ValidationError

func (p *problems) add(field, msg string) {
	if len(*p) < maxProblems {
		*p = append(*p, &ValidationError{Field: field, Message: msg})
	}
}

// err is nil without problems, the one *ValidationError, or a
// ValidationErrors listing all of them.
func (p problems) err() error {
	switch len(p) {
	case 0:
		return nil
	case 1:
		return p[0]
	}
	return ValidationErrors(p)
}

// checkPayload checks a decoded payload against a spec and the envelope
// fields, field by field in catalogue order, so the mistakes come in a
// stable order; it reports every one it finds.
func checkPayload(obj map[string]any, spec Spec, env []Field, account, entity string) error {
	var p problems
	if _, ok := obj["sequence"]; ok {
		p.add("sequence", errSequence)
	}
	known := map[string]bool{"custom": true, "sequence": true}
	carried := map[string]Field{}
	for _, f := range spec.IDs {
		carried[f.Name] = f
	}
	for _, f := range env {
		known[f.Name] = true
		switch f.Name {
		case "sequence":
			continue
		case "queue_id", "recipient_id", "session_id":
			id, ok := carried[f.Name]
			if !ok {
				if _, present := obj[f.Name]; present {
					p.add(f.Name, spec.Event()+" does not carry "+f.Name+"; leave it out")
				}
				continue
			}
			f.Required = id.Required
		}
		checkField(obj, f, f.Name, &p)
	}
	// The ids must agree with the routing key; a field already reported
	// above (missing, or not a string) is not reported twice.
	if got, ok := obj["account_id"].(string); ok && got != account && ValidAccountID(got) {
		p.add("account_id", "expected the routing key's account "+account+", got "+quoteShort(got))
	}
	// stats.account carries no entity id: ParseSubject checked its segment.
	if entField := spec.entityField(); entField != "" {
		if got, ok := obj[entField].(string); ok && got != entity && ValidEntityID(got) {
			p.add(entField, "expected the routing key's id "+quoteShort(entity)+", got "+quoteShort(got))
		}
	}
	if got, ok := obj["event"].(string); ok && got != spec.Event() && got != "" {
		p.add("event", "expected "+strconv.Quote(spec.Event())+" to match the routing key, got "+quoteShort(got))
	}
	for _, f := range spec.Fields {
		known[f.Name] = true
		checkField(obj, f, f.Name, &p)
	}
	var unknown []string
	for k := range obj {
		if !known[k] {
			unknown = append(unknown, k)
		}
	}
	slices.Sort(unknown)
	for _, k := range unknown {
		p.add(k, "not a field of "+spec.Event()+"; put producer extensions under \"custom\"")
	}
	return p.err()
}

// checkField checks member f.Name of obj; path names it in errors.
func checkField(obj map[string]any, f Field, path string, p *problems) {
	v, ok := obj[f.Name]
	if !ok {
		if f.Required {
			p.add(path, "required; "+expectation(f))
		}
		return
	}
	checkValue(v, f, path, p)
}

func checkValue(v any, f Field, path string, p *problems) {
	bad := func() {
		p.add(path, expectation(f)+", got "+describe(v))
	}
	switch f.Type {
	case TypeString:
		s, ok := v.(string)
		switch {
		case !ok:
			bad()
		case f.Required && s == "":
			p.add(path, expectation(f)+", got an empty string")
		case f.MaxLength > 0 && utf8.RuneCountInString(s) > f.MaxLength:
			p.add(path, "expected at most "+strconv.Itoa(f.MaxLength)+" characters, got "+strconv.Itoa(utf8.RuneCountInString(s)))
		case f.Enum != nil && !slices.Contains(f.Enum, s), !formatOK(f.Format, s):
			bad()
		}
	case TypeInteger:
		n, ok := v.(json.Number)
		if !ok {
			bad()
			return
		}
		i, err := strconv.ParseInt(string(n), 10, 64)
		if err != nil || (f.Minimum != nil && i < *f.Minimum) || (f.Enum != nil && !slices.Contains(f.Enum, strconv.FormatInt(i, 10))) {
			bad()
		}
	case TypeNumber:
		n, ok := v.(json.Number)
		if !ok {
			bad()
			return
		}
		if _, err := n.Float64(); err != nil {
			bad()
		}
	case TypeBoolean:
		if _, ok := v.(bool); !ok {
			bad()
		}
	case TypeObject:
		m, ok := v.(map[string]any)
		if !ok {
			bad()
			return
		}
		if f.Properties == nil { // free-form, like custom
			return
		}
		for _, prop := range f.Properties {
			checkField(m, prop, path+"."+prop.Name, p)
		}
		var unknown []string
		for k := range m {
			if !slices.ContainsFunc(f.Properties, func(prop Field) bool { return prop.Name == k }) {
				unknown = append(unknown, k)
			}
		}
		slices.Sort(unknown)
		for _, k := range unknown {
			p.add(path+"."+k, "not a documented field")
		}
	case TypeArray:
		a, ok := v.([]any)
		if !ok {
			bad()
			return
		}
		for i, el := range a {
			checkValue(el, *f.Items, path+"["+strconv.Itoa(i)+"]", p)
		}
	}
}

func formatOK(format, s string) bool {
	switch format {
	case FormatAccountID:
		return ValidAccountID(s)
	case FormatEventID:
		return validEventID(s)
	case FormatEntityID:
		return ValidEntityID(s)
	case FormatDateTime:
		_, ok := parseTimestamp(s)
		return ok
	}
	return true
}

// expectation words what a field must hold, for error messages.
func expectation(f Field) string {
	switch f.Type {
	case TypeString:
		switch {
		case f.Enum != nil:
			return "expected one of " + strings.Join(f.Enum, ", ")
		case f.Format == FormatAccountID:
			return "expected an account id of 32 lowercase hex digits"
		case f.Format == FormatEventID:
			return "expected 32 lowercase hex digits"
		case f.Format == FormatEntityID:
			return "expected an id of 1-64 characters A-Z a-z 0-9 _ -"
		case f.Format == FormatDateTime:
			return errTimestamp
		case f.Required:
			return "expected a non-empty string"
		}
		return "expected a string"
	case TypeInteger:
		switch {
		case f.Enum != nil:
			return "expected one of the integers " + strings.Join(f.Enum, ", ")
		case f.Minimum != nil:
			return "expected an integer ≥ " + strconv.FormatInt(*f.Minimum, 10)
		}
		return "expected an integer"
	case TypeNumber:
		return "expected a number"
	case TypeBoolean:
		return "expected true or false"
	case TypeObject:
		return "expected a JSON object"
	case TypeArray:
		if f.Items != nil && f.Items.Format == FormatEntityID {
			return "expected an array of ids (1-64 characters A-Z a-z 0-9 _ -)"
		}
		if f.Items != nil && f.Items.Type == TypeObject {
			return "expected an array of objects"
		}
		return "expected an array"
	}
	return "expected a " + f.Type
}

// describe renders a decoded JSON value briefly for error messages.
func describe(v any) string {
	switch v := v.(type) {
	case nil:
		return "null"
	case string:
		return quoteShort(v)
	case json.Number:
		return shorten.String(string(v), 32)
	case bool:
		return strconv.FormatBool(v)
	case map[string]any:
		return "an object"
	case []any:
		return "an array"
	}
	return "an unexpected value"
}

// decodeObject decodes data as one JSON object, strictly (see parser):
// valid UTF-8, no duplicate keys, no trailing data, bounded nesting.
func decodeObject(data []byte) (map[string]any, error) {
	if !utf8.Valid(data) {
		return nil, &ValidationError{Message: "payload must be valid UTF-8"}
	}
	p := parser{data: data}
	v, err := p.value()
	if err != nil {
		return nil, err
	}
	obj, ok := v.(map[string]any)
	if !ok {
		return nil, &ValidationError{Message: "payload must be a JSON object, got " + describe(v)}
	}
	p.ws()
	if p.pos != len(data) {
		return nil, &ValidationError{Message: "payload must be one JSON object with nothing after it"}
	}
	return obj, nil
}
