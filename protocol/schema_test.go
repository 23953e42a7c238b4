package protocol

import (
	"encoding/json"
	"reflect"
	"slices"
	"strings"
	"testing"
)

// jsonNames returns the JSON member names of struct types, in order,
// without repeats.
func jsonNames(types ...any) []string {
	var names []string
	for _, v := range types {
		t := reflect.TypeOf(v)
		for i := range t.NumField() {
			f := t.Field(i)
			if f.Anonymous {
				names = append(names, jsonNames(reflect.New(f.Type).Elem().Interface())...)
				continue
			}
			name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
			if name != "" && name != "-" && !slices.Contains(names, name) {
				names = append(names, name)
			}
		}
	}
	return names
}

// properties returns the member names a schema's properties lists.
func properties(t *testing.T, s Schema, path ...string) []string {
	t.Helper()
	for _, p := range path {
		props, _ := s.Get("properties").(Schema)
		next, ok := props.Get(p).(Schema)
		if !ok {
			t.Fatalf("schema has no property %s", strings.Join(path, "."))
		}
		s = next
	}
	props, _ := s.Get("properties").(Schema)
	names := make([]string, len(props))
	for i, k := range props {
		names[i] = k.Key
	}
	return names
}

func sameSet(a, b []string) bool {
	a, b = slices.Sorted(slices.Values(a)), slices.Sorted(slices.Values(b))
	return slices.Equal(a, b)
}

// The schema describes every member the Go types have, and nothing else:
// it cannot drift from the definition beside it.
func TestSchemasDescribeEveryMemberOfTheirTypes(t *testing.T) {
	msgs := map[string]Schema{}
	for _, m := range MessageSchemas() {
		msgs[m.ID] = m.Payload
	}
	request := jsonNames(Request{})
	tests := []struct {
		message string
		path    []string
		want    []string
	}{
		{"subscribe", nil, request},
		{"subscribe", []string{"data"}, jsonNames(RequestData{})},
		{"unsubscribe", nil, request},
		{"unsubscribe", []string{"data"}, jsonNames(RequestData{})},
		{"ping", nil, []string{"action", "request_id", "auth_token"}},
		{"refresh", nil, []string{"action", "request_id", "auth_token"}},
		{"reply", nil, jsonNames(Reply{})},
		{"reply", []string{"data"}, jsonNames(SubscriptionData{}, ErrorData{}, RefreshData{}, PongData{})},
		{"notice", nil, jsonNames(Notice{})},
		{"notice", []string{"data"}, jsonNames(NoticeData{})},
	}
	for _, tt := range tests {
		s, ok := msgs[tt.message]
		if !ok {
			t.Fatalf("no schema for %s", tt.message)
		}
		if got := properties(t, s, tt.path...); !sameSet(got, tt.want) {
			t.Errorf("%s %v: schema lists %v, the type has %v", tt.message, tt.path, got, tt.want)
		}
	}
	ev := EventSchema("join", "qubicle.queue.{ACCOUNT_ID}.{QUEUE_ID}.join", "^x$", "#/components/schemas/queue.join")
	if got, want := properties(t, ev), append([]string{"action"}, jsonNames(Event{})...); !sameSet(got, want) {
		t.Errorf("event schema lists %v, the frame has %v", got, want)
	}
	for _, m := range MessageSchemas() {
		if _, err := json.Marshal(m.Payload); err != nil {
			t.Errorf("%s: %v", m.ID, err)
		}
	}
}
