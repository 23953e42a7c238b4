package event

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
	"unicode/utf8"

	"pgregory.net/rapid"
)

// jsonText generates JSON-like text: mostly valid documents built from the
// grammar, sometimes with a byte changed, so both acceptance and refusal
// are exercised.
func jsonText() *rapid.Generator[string] {
	var value func(depth int) *rapid.Generator[string]
	str := rapid.OneOf(
		rapid.Just(`"a"`), rapid.Just(`""`), rapid.Just(`"\u00e9\n\"\\\/"`), rapid.Just(`"\ud83d\ude00"`),
		rapid.Just(`"\ud800x"`), rapid.Just(`"\udc00\ud800"`), rapid.Just(`"tab\there"`),
		rapid.Map(rapid.String(), func(s string) string { b, _ := json.Marshal(s); return string(b) }),
	)
	num := rapid.SampledFrom([]string{"0", "-0", "1", "-12", "1.5", "1e3", "1E+3", "2e-2", "0.0", "123456789012345678901234567890", "-0.5e10"})
	value = func(depth int) *rapid.Generator[string] {
		leaves := []*rapid.Generator[string]{str, num, rapid.SampledFrom([]string{"true", "false", "null"})}
		if depth >= 4 {
			return rapid.OneOf(leaves...)
		}
		arr := rapid.Custom(func(t *rapid.T) string {
			items := rapid.SliceOfN(value(depth+1), 0, 4).Draw(t, "items")
			return "[" + strings.Join(items, ",") + "]"
		})
		obj := rapid.Custom(func(t *rapid.T) string {
			keys := rapid.SliceOfNDistinct(rapid.SampledFrom([]string{"a", "b", "position", "é", "x y", ""}), 0, 4, rapid.ID).Draw(t, "keys")
			var parts []string
			for _, k := range keys {
				kj, _ := json.Marshal(k)
				parts = append(parts, " "+string(kj)+" :\t"+value(depth+1).Draw(t, "v"))
			}
			return "{" + strings.Join(parts, ",") + "}\n"
		})
		return rapid.OneOf(append(leaves, arr, obj)...)
	}
	return rapid.Custom(func(t *rapid.T) string {
		s := value(0).Draw(t, "doc")
		if len(s) > 0 && rapid.IntRange(0, 3).Draw(t, "mutate") == 0 {
			i := rapid.IntRange(0, len(s)-1).Draw(t, "at")
			c := rapid.SampledFrom([]byte(`{}[],:"\ 0a-.eE+tfn`)).Draw(t, "byte")
			s = s[:i] + string(c) + s[i+1:]
		}
		return s
	})
}

// TestParserAgreesWithEncodingJSON: on any input, the strict parser accepts
// exactly what encoding/json accepts (leaving aside what it refuses on
// purpose: duplicate keys) and decodes to the same values.
func TestParserAgreesWithEncodingJSON(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		text := jsonText().Draw(t, "json")
		if !utf8.ValidString(text) {
			return // Validate refuses invalid UTF-8 before parsing
		}
		p := parser{data: []byte(text)}
		got, err := p.value()
		if err == nil {
			p.ws()
			if p.pos != len(text) {
				err = &ValidationError{Message: "trailing"}
			}
		}
		dec := json.NewDecoder(bytes.NewReader([]byte(text)))
		dec.UseNumber()
		var want any
		stdErr := dec.Decode(&want)
		if stdErr == nil && dec.More() {
			stdErr = &ValidationError{Message: "trailing"}
		}
		if !json.Valid([]byte(text)) {
			stdErr = &ValidationError{Message: "invalid"}
		}
		if err != nil && stdErr == nil && strings.Contains(err.Error(), "appears twice") {
			return
		}
		if (err == nil) != (stdErr == nil) {
			t.Fatalf("%q: parser error %v, encoding/json error %v", text, err, stdErr)
		}
		if err == nil && !reflect.DeepEqual(got, want) {
			t.Fatalf("%q: parser %#v, encoding/json %#v", text, got, want)
		}
	})
}
