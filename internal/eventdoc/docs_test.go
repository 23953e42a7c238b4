package eventdoc

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/santhosh-tekuri/jsonschema/v6"
	"go.yaml.in/yaml/v3"
)

const regenerate = "run `go generate ./internal/event` and commit the result"

// generate builds both documents with the examples in the file at path.
func generate(t *testing.T, path string) (asyncapi, events []byte) {
	t.Helper()
	ex, err := ReadExamples(path)
	if err != nil {
		t.Fatal(err)
	}
	if asyncapi, err = AsyncAPIWithExamples(ex); err != nil {
		t.Fatal(err)
	}
	if events, err = EventsMarkdown(ex); err != nil {
		t.Fatal(err)
	}
	return asyncapi, events
}

func TestCheckedInDocsMatchTheCatalogue(t *testing.T) {
	asyncapi, events := generate(t, "testdata/examples.json")
	for path, want := range map[string][]byte{"../../docs/asyncapi.yaml": asyncapi, "../../docs/events.md": events} {
		testkit.MatchesGenerated(t, path, want, regenerate)
	}
}

// asyncAPISchemas compiles the generated document with a JSON Schema
// validator and returns a compile function for pointers into it.
func asyncAPISchemas(t *testing.T) (doc map[string]any, compile func(ptr string) *jsonschema.Schema) {
	t.Helper()
	raw, err := AsyncAPI()
	if err != nil {
		t.Fatal(err)
	}
	var y any
	if err := yaml.Unmarshal(raw, &y); err != nil {
		t.Fatalf("generated AsyncAPI is not YAML: %v", err)
	}
	js, err := json.Marshal(y)
	if err != nil {
		t.Fatal(err)
	}
	d, err := jsonschema.UnmarshalJSON(bytes.NewReader(js))
	if err != nil {
		t.Fatal(err)
	}
	c := jsonschema.NewCompiler()
	c.DefaultDraft(jsonschema.Draft7)
	const url = "file:///asyncapi.json"
	if err := c.AddResource(url, d); err != nil {
		t.Fatal(err)
	}
	return d.(map[string]any), func(ptr string) *jsonschema.Schema {
		t.Helper()
		s, err := c.Compile(url + "#" + ptr)
		if err != nil {
			t.Fatalf("compile %s: %v", ptr, err)
		}
		return s
	}
}

// encode returns v as JSON.
func encode(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func instance(t *testing.T, data []byte) any {
	t.Helper()
	v, err := jsonschema.UnmarshalJSON(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestAsyncAPIDocumentShape(t *testing.T) {
	doc, _ := asyncAPISchemas(t)
	if doc["asyncapi"] != "3.0.0" {
		t.Errorf("asyncapi version %v", doc["asyncapi"])
	}
	srv := doc["servers"].(map[string]any)["local"].(map[string]any)
	if srv["host"] != "localhost:5555" || srv["protocol"] != "ws" {
		t.Errorf("server %v", srv)
	}
	channel := doc["channels"].(map[string]any)["gateway"].(map[string]any)["messages"].(map[string]any)
	components := doc["components"].(map[string]any)["messages"].(map[string]any)
	want := []string{"subscribe", "unsubscribe", "ping", "refresh", "reply", "notice"}
	for _, s := range event.Catalogue() {
		want = append(want, s.Event())
	}
	for _, m := range want {
		ref, _ := channel[m].(map[string]any)["$ref"].(string)
		if ref != "#/components/messages/"+m || components[m] == nil {
			t.Errorf("message %s missing from channel or components", m)
		}
	}
	// Every operation must reference messages of its channel (AsyncAPI 3 rule).
	for name, op := range doc["operations"].(map[string]any) {
		o := op.(map[string]any)
		for _, m := range o["messages"].([]any) {
			ref := m.(map[string]any)["$ref"].(string)
			id, ok := strings.CutPrefix(ref, "#/channels/gateway/messages/")
			if !ok || channel[id] == nil {
				t.Errorf("operation %s references %s, not a message of its channel", name, ref)
			}
		}
		if a := o["action"]; a != "send" && a != "receive" {
			t.Errorf("operation %s action %v", name, a)
		}
	}
}

// TestSchemasAcceptExamplesAndRefuseBrokenPayloads validates every
// catalogue example against its generated schema, and checks that
// payloads broken in typical ways fail it.
func TestSchemasAcceptExamplesAndRefuseBrokenPayloads(t *testing.T) {
	_, compile := asyncAPISchemas(t)
	for _, s := range event.Catalogue() {
		t.Run(s.Event(), func(t *testing.T) {
			sch := compile("/components/schemas/" + s.Event())
			_, data, err := event.Marshal(s.Example)
			if err != nil {
				t.Fatal(err)
			}
			if err := sch.Validate(instance(t, data)); err != nil {
				t.Fatalf("example fails its schema: %v", err)
			}
			delivered := instance(t, data).(map[string]any)
			delivered["sequence"] = 42
			if err := sch.Validate(instance(t, encode(t, delivered))); err != nil {
				t.Errorf("delivered example (with sequence) fails its schema: %v", err)
			}
			broken := map[string]func(m map[string]any){
				"unknown field":       func(m map[string]any) { m["colour"] = "blue" },
				"wrong event":         func(m map[string]any) { m["event"] = "queue.nothing" },
				"bad account":         func(m map[string]any) { m["account_id"] = "ACC" },
				"timestamp as number": func(m map[string]any) { m["timestamp"] = 5 },
				"sequence zero":       func(m map[string]any) { m["sequence"] = 0 },
			}
			for _, f := range s.Fields {
				if f.Required {
					broken["missing "+f.Name] = func(m map[string]any) { delete(m, f.Name) }
				}
				if f.Enum != nil {
					broken["bad enum "+f.Name] = func(m map[string]any) { m[f.Name] = "not-a-value" }
				}
				if f.Minimum != nil {
					broken["below minimum "+f.Name] = func(m map[string]any) { m[f.Name] = *f.Minimum - 1 }
				}
			}
			for name, edit := range broken {
				m := instance(t, data).(map[string]any)
				edit(m)
				if err := sch.Validate(instance(t, encode(t, m))); err == nil {
					t.Errorf("%s: schema accepted %v", name, m)
				}
			}
		})
	}
}

// TestMessageExamplesFitTheirFrames validates the examples embedded in the
// document against their message payload schemas (frame and data).
func TestMessageExamplesFitTheirFrames(t *testing.T) {
	doc, compile := asyncAPISchemas(t)
	msgs := doc["components"].(map[string]any)["messages"].(map[string]any)
	for _, s := range event.Catalogue() {
		m := msgs[s.Event()].(map[string]any)
		sch := compile(fmt.Sprintf("/components/messages/%s/payload", s.Event()))
		for _, ex := range m["examples"].([]any) {
			payload := ex.(map[string]any)["payload"]
			if err := sch.Validate(payload); err != nil {
				t.Errorf("%s example frame: %v", s.Event(), err)
			}
		}
	}
	reply := compile("/components/messages/reply/payload")
	if err := reply.Validate(instance(t, []byte(`{"action":"reply","request_id":"1","status":"success","data":{"subscribed":["qubicle.queue.0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10.*"]}}`))); err != nil {
		t.Errorf("reply: %v", err)
	}
	if err := reply.Validate(instance(t, []byte(`{"action":"reply","status":"maybe","data":{}}`))); err == nil {
		t.Error("reply schema accepted status maybe")
	}
	sub := compile("/components/messages/subscribe/payload")
	if err := sub.Validate(instance(t, []byte(`{"action":"subscribe","auth_token":"t","data":{"account_id":"0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10","binding":"qubicle.queue.0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10.*"}}`))); err != nil {
		t.Errorf("subscribe: %v", err)
	}
}

func TestExamplesFromAFileReplaceTheCatalogues(t *testing.T) {
	s, ok := event.Lookup(event.Queue, "join")
	if !ok {
		t.Fatal("queue.join is not in the catalogue")
	}
	p := *s.Example.(*event.QueueJoin)
	p.CallerIDName = "Captured Caller"
	_, data, err := event.Marshal(&p)
	if err != nil {
		t.Fatal(err)
	}
	captured := instance(t, data).(map[string]any)
	captured["sequence"] = 1234 // as delivered by the gateway
	path := t.TempDir() + "/examples.json"
	if err := os.WriteFile(path, encode(t, map[string]any{"queue.join": captured}), 0o644); err != nil {
		t.Fatal(err)
	}
	doc, md := generate(t, path)
	if !bytes.Contains(md, []byte(`"caller_id_name": "Captured Caller"`)) || !bytes.Contains(md, []byte(`"sequence": 1234`)) {
		t.Error("events.md does not show the captured example")
	}
	if !bytes.Contains(doc, []byte("caller_id_name: Captured Caller")) {
		t.Error("asyncapi does not show the captured example")
	}

	captured["position"] = 0
	if err := os.WriteFile(path, encode(t, map[string]any{"queue.join": captured}), 0o644); err != nil {
		t.Fatal(err)
	}
	ex, _ := ReadExamples(path)
	if _, err := EventsMarkdown(ex); err == nil || !strings.Contains(err.Error(), `example of queue.join: field "position"`) {
		t.Errorf("an invalid captured example was accepted: %v", err)
	}
	if err := os.WriteFile(path, []byte(`{"queue.jump":{}}`), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := ReadExamples(path); err == nil {
		t.Error("an example of an unknown event was accepted")
	}
}
