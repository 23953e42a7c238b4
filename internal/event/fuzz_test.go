package event

import (
	"encoding/json"
	"errors"
	"testing"
	"unicode/utf8"
)

// FuzzValidate feeds arbitrary subjects and payloads to Validate. It must
// never panic, must explain every refusal with a *ValidationError in valid
// UTF-8, and whatever it accepts must decode into the event's Go type and
// encode back to a payload it accepts under the same subject.
func FuzzValidate(f *testing.F) {
	for _, s := range Catalogue() {
		subject, data := marshalled(f, s)
		f.Add(subject, data)
	}
	f.Fuzz(func(t *testing.T, subject string, data []byte) {
		family, name, err := Validate(subject, data)
		if err != nil {
			var ve *ValidationError
			if !errors.As(err, &ve) || ve.Message == "" {
				t.Fatalf("Validate error %#v is not a *ValidationError with a message", err)
			}
			if !utf8.ValidString(err.Error()) {
				t.Fatalf("error message is not valid UTF-8: %q", err.Error())
			}
			return
		}
		p, ok := New(family, name)
		if !ok {
			t.Fatalf("Validate accepted unknown event %s.%s", family, name)
		}
		if err := json.Unmarshal(data, p); err != nil {
			t.Fatalf("accepted payload does not decode into %T: %v", p, err)
		}
		subject2, data2, err := Marshal(p)
		if err != nil {
			t.Fatalf("accepted payload does not re-encode: %v\n%s", err, data)
		}
		if subject2 != subject {
			t.Fatalf("re-encoded subject %s, published under %s", subject2, subject)
		}
		if _, _, err := Validate(subject2, data2); err != nil {
			t.Fatalf("re-encoded payload refused: %v\n%s", err, data2)
		}
	})
}
