package jsonerr

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

type request struct {
	Action string `json:"action"`
	Data   *struct {
		Binding string   `json:"binding"`
		Count   int      `json:"count"`
		Rate    float64  `json:"rate"`
		Live    bool     `json:"live"`
		Tags    []string `json:"tags"`
		Since   *struct {
			Sequence uint64 `json:"sequence"`
		} `json:"since"`
	} `json:"data"`
}

func TestDescribeTellsThePersonWhatToFix(t *testing.T) {
	message := Doc{Name: "the message", Like: `{"action": "subscribe", "data": {…}}`}
	body := Doc{Name: "request body"}
	for _, tc := range []struct {
		name   string
		doc    Doc
		input  string
		strict bool // decode with json.Decoder, refusing unknown fields
		want   string
	}{
		{"cut short", message, `{"action":`, false, "the message is not valid JSON (unexpected end of JSON input at byte 10)"},
		{"bad token", body, `{"action":tru}`, false, "request body is not valid JSON (invalid character '}' in literal true (expecting 'e') at byte 14)"},
		{"an array where the object belongs, with an example", message, `[1,2]`, false, `the message must be a JSON object like {"action": "subscribe", "data": {…}}`},
		{"an array where the object belongs", body, `[1,2]`, false, "request body must be an object, got array"},
		{"a number for a string", message, `{"data":{"binding":5}}`, false, "data.binding must be a string, got number"},
		{"a string for an integer", body, `{"data":{"count":"3"}}`, false, "data.count must be an integer, got string"},
		{"a fraction for an integer", body, `{"data":{"count":1.5}}`, false, "data.count must be an integer, got number 1.5"},
		{"a negative number for a count", message, `{"data":{"since":{"sequence":-1}}}`, false, "data.since.sequence must be a whole number of 0 or more, got number -1"},
		{"a string for a number", body, `{"data":{"rate":"fast"}}`, false, "data.rate must be a number, got string"},
		{"a string for a boolean", body, `{"data":{"live":"yes"}}`, false, "data.live must be true or false, got string"},
		{"an object for an array", body, `{"data":{"tags":{}}}`, false, "data.tags must be an array, got object"},
		{"an array for an object", body, `{"data":[]}`, false, "data must be an object, got array"},
		{"an unknown field", body, `{"action":"x","colour":"red"}`, true, `unknown field "colour" (not part of this request)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var r request
			err := json.Unmarshal([]byte(tc.input), &r)
			if tc.strict {
				dec := json.NewDecoder(strings.NewReader(tc.input))
				dec.DisallowUnknownFields()
				err = dec.Decode(&r)
			}
			if err == nil {
				t.Fatalf("%s decoded without error", tc.input)
			}
			if got := Describe(err, tc.doc); got != tc.want {
				t.Errorf("Describe(%s)\n got %s\nwant %s", tc.input, got, tc.want)
			}
		})
	}
}

func TestDescribeNeverRepeatsInternalErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		err  error
		want string
	}{
		{"a document cut short, as json.Decoder says it", errors.Join(errors.New("decode"), errUnexpectedEOF()), "payload is not valid JSON (it ends too early)"},
		{"anything else", errors.New("read tcp 10.0.0.1:80: connection reset by peer"), "payload could not be read as JSON"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Describe(tc.err, Doc{Name: "payload"}); got != tc.want {
				t.Errorf("Describe(%v) = %q, want %q", tc.err, got, tc.want)
			}
		})
	}
}

func errUnexpectedEOF() error {
	var v any
	return json.NewDecoder(strings.NewReader(`{"a":`)).Decode(&v)
}
