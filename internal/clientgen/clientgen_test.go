package clientgen

import (
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/testkit"
)

const root = "../.."

func TestCheckedInClientTypesMatchTheCatalogue(t *testing.T) {
	files, err := Generate(root)
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range files {
		testkit.MatchesGenerated(t, filepath.Join(root, path), want, "run `go generate ./internal/clientgen` and commit the result")
	}
}

// Every event of the catalogue gets a type in both languages, with every
// field the catalogue documents, whatever the catalogue holds.
func TestEveryCatalogueEventAndFieldIsGenerated(t *testing.T) {
	files, err := Generate(root)
	if err != nil {
		t.Fatal(err)
	}
	ts := string(files["clients/typescript/src/events.ts"])
	py := string(files["clients/python/src/ccevents/events.py"])
	m, err := buildModel(root)
	if err != nil {
		t.Fatal(err)
	}
	cat := event.Catalogue()
	if len(m.payloads) != len(cat) {
		t.Fatalf("%d payload types for %d catalogue events", len(m.payloads), len(cat))
	}
	for i, sp := range cat {
		p := m.payloads[i]
		if p.event != sp.Event() {
			t.Errorf("payload %d is %s, catalogue has %s", i, p.event, sp.Event())
		}
		if !strings.Contains(ts, "export interface "+p.name+" extends Envelope {") || !strings.Contains(ts, `  "`+sp.Event()+`": `+p.name+";") {
			t.Errorf("TypeScript lacks %s (%s)", p.name, sp.Event())
		}
		if !strings.Contains(py, "class "+p.name+"(Envelope):") || !strings.Contains(py, `    "`+sp.Event()+`": `+p.name+",") {
			t.Errorf("Python lacks %s (%s)", p.name, sp.Event())
		}
		for _, f := range append(slices.Clone(sp.IDs), sp.Fields...) {
			if !slices.ContainsFunc(p.fields, func(g field) bool { return g.json == f.Name && g.required == f.Required }) {
				t.Errorf("%s: field %s (required %v) not generated as such", sp.Event(), f.Name, f.Required)
			}
		}
	}
}

func TestEnumTypesCarryTheCatalogueValues(t *testing.T) {
	m, err := buildModel(root)
	if err != nil {
		t.Fatal(err)
	}
	enums := map[string][]string{}
	for _, e := range m.enums {
		enums[e.name] = e.values
	}
	for i, sp := range event.Catalogue() {
		for _, f := range m.payloads[i].fields {
			if f.typ.kind != kEnum {
				continue
			}
			want, _ := jsonSpec(sp, f.json)
			if !slices.Equal(enums[f.typ.name], want.Enum) {
				t.Errorf("%s.%s is %s %v, the catalogue allows %v", sp.Event(), f.json, f.typ.name, enums[f.typ.name], want.Enum)
			}
		}
	}
	if !slices.Equal(enums["State"], []string{"logged_out", "ready", "away", "offered", "busy", "wrapup", "external_call"}) {
		t.Errorf("State is %v", enums["State"])
	}
}

func jsonSpec(sp event.Spec, name string) (event.Field, bool) {
	for _, f := range append(slices.Clone(sp.IDs), sp.Fields...) {
		if f.Name == name {
			return f, true
		}
	}
	return event.Field{}, false
}
