// Package jsonerr says what is wrong with a JSON document a person sent, in
// words for that person, from the error encoding/json returned decoding it.
// The websocket gateway and the REST API both describe malformed requests
// with it, so a client sees the same wording wherever it sends one.
//
// jsonerr only writes sentences: it decodes nothing itself and never
// repeats Go type names or internal error text to a client.
package jsonerr

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// Doc names the document that was decoded, for the sentences about it as a
// whole.
type Doc struct {
	// Name is how the person knows the document: "the message",
	// "request body".
	Name string
	// Like shows the shape the document must have, e.g. {"data": {…}}.
	// When set, a document that is not an object is told to look like it.
	Like string
}

// Describe returns what is wrong with doc, given the error decoding it:
//
//   - not JSON: `<Name> is not valid JSON (<what> at byte <N>)`;
//   - a field of the wrong type: `<field> must be <kind>, got <JSON type>`,
//     the field written as a path such as data.since.sequence;
//   - the document itself of the wrong type: `<Name> must be a JSON object
//     like <Like>`, or `<Name> must be <kind>, got <JSON type>`;
//   - a field the target does not have (json.Decoder.DisallowUnknownFields):
//     `unknown field "<field>" (not part of this request)`;
//   - anything else: `<Name> could not be read as JSON`.
func Describe(err error, doc Doc) string {
	var syntax *json.SyntaxError
	var typ *json.UnmarshalTypeError
	switch {
	case errors.As(err, &syntax):
		return fmt.Sprintf("%s is not valid JSON (%s at byte %d)", doc.Name, syntax.Error(), syntax.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF): // json.Decoder's word for a document cut short
		return doc.Name + " is not valid JSON (it ends too early)"
	case errors.As(err, &typ) && typ.Field != "":
		return fmt.Sprintf("%s must be %s, got %s", typ.Field, kind(typ.Type), typ.Value)
	case errors.As(err, &typ) && doc.Like != "" && kind(typ.Type) == object:
		return doc.Name + " must be a JSON object like " + doc.Like
	case errors.As(err, &typ):
		return fmt.Sprintf("%s must be %s, got %s", doc.Name, kind(typ.Type), typ.Value)
	}
	if field, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return "unknown field " + field + " (not part of this request)"
	}
	return doc.Name + " could not be read as JSON"
}

const object = "an object"

// kind names the JSON a Go type is decoded from, as a person writes it.
func kind(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return "an integer"
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "a whole number of 0 or more"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return object
	}
	return "another kind of value"
}
