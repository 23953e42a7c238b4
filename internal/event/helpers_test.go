package event

import (
	"encoding/json"
	"errors"
	"testing"
)

// marshalled returns the subject and payload of spec's example.
func marshalled(t testing.TB, s Spec) (string, []byte) {
	t.Helper()
	subject, data, err := Marshal(s.Example)
	if err != nil {
		t.Fatalf("Marshal(%s example): %v", s.Event(), err)
	}
	return subject, data
}

// asMap decodes a payload into a generic map for editing.
func asMap(t testing.TB, data []byte) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatalf("decode %s: %v", data, err)
	}
	return m
}

func mustJSON(t testing.TB, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func mustLookup(t testing.TB, f Family, name string) Spec {
	t.Helper()
	s, ok := Lookup(f, name)
	if !ok {
		t.Fatalf("Lookup(%s, %s) found nothing", f, name)
	}
	return s
}

// wantValidationError fails t unless err, returned by call, is a
// *ValidationError whose text is want.
func wantValidationError(t *testing.T, call string, err error, want string) {
	t.Helper()
	var ve *ValidationError
	if !errors.As(err, &ve) {
		t.Fatalf("%s err = %v, want a *ValidationError", call, err)
	}
	if err.Error() != want {
		t.Errorf("error\n got %s\nwant %s", err, want)
	}
}
