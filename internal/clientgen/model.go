package clientgen

import (
	"cmp"
	"encoding/json"
	"fmt"
	"go/ast"
	"go/doc"
	"go/parser"
	"go/token"
	"path/filepath"
	"reflect"
	"slices"
	"strings"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
)

// kind is the shape of a typeRef.
type kind int

const (
	kString kind = iota
	kInteger
	kNumber
	kBoolean
	kArray   // elem is the element
	kObject  // name is a struct in model.structs
	kEnum    // name is an enum in model.enums
	kLiteral // one fixed string value (a payload's "event")
	kUnion   // an inline union of string values (an enum without a Go type)
	kAny     // free-form JSON object
)

// typeRef is the type of one field, in terms both languages can express.
type typeRef struct {
	kind   kind
	name   string   // kObject, kEnum
	value  string   // kLiteral
	values []string // kUnion
	elem   *typeRef // kArray
}

// field is one JSON member of a struct.
type field struct {
	json     string
	doc      string
	typ      typeRef
	required bool
	nullable bool // present but may be JSON null (a Go pointer without omitempty)
	// Snapshot fields come from Go struct fields by reflection: goField is
	// that field, and embedded the outermost embedded struct it is promoted
	// from (nil for the struct's own fields). The Go SDK's emitter writes
	// them as Go.
	goField  reflect.StructField
	embedded reflect.Type
}

// structDef is an object type: an event payload, a nested value of one, or
// a part of the snapshot.
type structDef struct {
	name   string
	doc    string
	fields []field
	// event is "<family>.<name>" for payloads, "" otherwise.
	event      string
	routingKey string
	// goType is the Go struct a snapshot type is reflected from, nil for
	// the catalogue's types.
	goType reflect.Type
}

// enumDef is a named string type of the catalogue with its values.
type enumDef struct {
	name   string
	doc    string
	values []string
	docs   []string // one per value, may be empty
}

// model is everything the emitters write, in a stable order.
type model struct {
	envelope []field     // the correlation fields every payload carries (ids excluded)
	payloads []structDef // in catalogue order
	structs  []structDef // nested payload values and snapshot types, in first-use order
	enums    []enumDef   // by name
	byName   map[string]bool
	godoc    map[string]goDoc
}

// goDoc holds the doc comments of one Go type and of its fields.
type goDoc struct {
	typ    string
	fields map[string]string // by Go field name
}

// renames gives the snapshot types the names the Go SDK gives them, which
// say what they are outside the engine.
var renames = map[string]string{"Queue": "QueueState", "Caller": "WaitingCaller", "Recipient": "RecipientState", "Offer": "RingingOffer"}

// buildModel reads the catalogue, the Go types behind it and, for doc
// comments, the Go sources of packages event, engine and stats under root.
func buildModel(root string) (*model, error) {
	m := &model{byName: map[string]bool{}, godoc: map[string]goDoc{}}
	for _, dir := range []string{"internal/event", "internal/engine", "internal/stats"} {
		if err := m.readDocs(filepath.Join(root, dir)); err != nil {
			return nil, err
		}
	}
	ids := map[string]bool{"queue_id": true, "recipient_id": true, "session_id": true}
	for _, f := range event.EnvelopeFields() {
		if ids[f.Name] {
			continue
		}
		fd, err := m.catalogueField(f, reflect.TypeFor[event.Envelope](), "Envelope")
		if err != nil {
			return nil, err
		}
		m.envelope = append(m.envelope, fd)
	}
	for _, sp := range event.Catalogue() {
		if sp.Example == nil {
			return nil, fmt.Errorf("catalogue entry %s has no example payload, so its Go type is unknown", sp.Event())
		}
		gt := reflect.TypeOf(sp.Example).Elem()
		s := structDef{name: gt.Name(), event: sp.Event(), routingKey: sp.RoutingKey(),
			doc: sp.Description}
		s.fields = append(s.fields, field{json: "event", typ: typeRef{kind: kLiteral, value: sp.Event()}, required: true,
			doc: `The event type, always "` + sp.Event() + `".`})
		for _, f := range append(slices.Clone(sp.IDs), sp.Fields...) {
			fd, err := m.catalogueField(f, gt, s.name)
			if err != nil {
				return nil, fmt.Errorf("%s: %w", sp.Event(), err)
			}
			s.fields = append(s.fields, fd)
		}
		if m.byName[s.name] {
			return nil, fmt.Errorf("%s: type name %s is used twice", sp.Event(), s.name)
		}
		m.byName[s.name] = true
		m.payloads = append(m.payloads, s)
	}
	if _, err := m.reflectStruct(reflect.TypeFor[engine.Snapshot](), "Snapshot"); err != nil {
		return nil, err
	}
	slices.SortFunc(m.enums, func(a, b enumDef) int { return cmp.Compare(a.name, b.name) })
	return m, nil
}

// readDocs collects the doc comments of the types of the Go package in
// dir, keyed as reflect prints them ("event.State").
func (m *model) readDocs(dir string) error {
	names, err := filepath.Glob(filepath.Join(dir, "*.go"))
	if err != nil {
		return err
	}
	fset := token.NewFileSet()
	var files []*ast.File
	for _, n := range names {
		if strings.HasSuffix(n, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, n, nil, parser.ParseComments)
		if err != nil {
			return fmt.Errorf("read doc comments: %w", err)
		}
		files = append(files, f)
	}
	d, err := doc.NewFromFiles(fset, files, "ccevents/"+filepath.Base(dir), doc.AllDecls)
	if err != nil {
		return fmt.Errorf("read doc comments in %s: %w", dir, err)
	}
	for _, t := range d.Types {
		gd := goDoc{typ: t.Doc, fields: map[string]string{}}
		for _, spec := range t.Decl.Specs {
			ts, ok := spec.(*ast.TypeSpec)
			if !ok {
				continue
			}
			st, ok := ts.Type.(*ast.StructType)
			if !ok {
				continue
			}
			for _, f := range st.Fields.List {
				text := f.Doc.Text()
				if text == "" {
					text = f.Comment.Text()
				}
				for _, n := range f.Names {
					gd.fields[n.Name] = text
				}
			}
		}
		m.godoc[d.Name+"."+t.Name] = gd
	}
	return nil
}

// catalogueField turns a catalogue Field of the Go struct gt into a field;
// the Go type names the enum and nested object types.
func (m *model) catalogueField(f event.Field, gt reflect.Type, owner string) (field, error) {
	sf, _ := jsonField(gt, f.Name)
	var goType reflect.Type
	if sf != nil {
		goType = sf.Type
	}
	t, err := m.catalogueType(f, goType, owner)
	if err != nil {
		return field{}, fmt.Errorf("field %s: %w", f.Name, err)
	}
	return field{json: f.Name, doc: f.Description, typ: t, required: f.Required}, nil
}

func (m *model) catalogueType(f event.Field, goType reflect.Type, owner string) (typeRef, error) {
	for goType != nil && goType.Kind() == reflect.Pointer {
		goType = goType.Elem()
	}
	switch f.Type {
	case event.TypeString:
		if len(f.Enum) == 0 {
			return typeRef{kind: kString}, nil
		}
		if goType != nil && goType.Kind() == reflect.String && goType.Name() != "string" && goType.Name() != "" {
			m.addEnum(goType, f.Enum, f.EnumDocs)
			return typeRef{kind: kEnum, name: goType.Name()}, nil
		}
		return typeRef{kind: kUnion, values: f.Enum}, nil
	case event.TypeInteger:
		return typeRef{kind: kInteger}, nil
	case event.TypeNumber:
		return typeRef{kind: kNumber}, nil
	case event.TypeBoolean:
		return typeRef{kind: kBoolean}, nil
	case event.TypeArray:
		if f.Items == nil {
			return typeRef{}, fmt.Errorf("array without items")
		}
		var elem reflect.Type
		if goType != nil && goType.Kind() == reflect.Slice {
			elem = goType.Elem()
		}
		e, err := m.catalogueType(*f.Items, elem, owner+pascal(f.Name))
		if err != nil {
			return typeRef{}, err
		}
		return typeRef{kind: kArray, elem: &e}, nil
	case event.TypeObject:
		if len(f.Properties) == 0 {
			return typeRef{kind: kAny}, nil
		}
		name := owner + pascal(f.Name)
		if goType != nil && goType.Kind() == reflect.Struct && goType.Name() != "" {
			name = goType.Name()
		}
		if m.byName[name] {
			return typeRef{kind: kObject, name: name}, nil
		}
		m.byName[name] = true
		s := structDef{name: name}
		if goType != nil {
			s.doc = m.godoc[goType.String()].typ
		}
		for _, p := range f.Properties {
			fd, err := m.catalogueField(p, goType, name)
			if err != nil {
				return typeRef{}, err
			}
			s.fields = append(s.fields, fd)
		}
		m.structs = append(m.structs, s)
		return typeRef{kind: kObject, name: name}, nil
	}
	return typeRef{}, fmt.Errorf("unknown field type %q", f.Type)
}

// addEnum records a named string type of the catalogue, once.
func (m *model) addEnum(t reflect.Type, values, docs []string) {
	for _, e := range m.enums {
		if e.name == t.Name() {
			return
		}
	}
	m.enums = append(m.enums, enumDef{name: t.Name(), doc: m.godoc[t.String()].typ, values: values, docs: docs})
}

// reflectStruct describes a Go struct of the snapshot by its JSON encoding;
// named string types of package event become the catalogue's enums.
func (m *model) reflectStruct(t reflect.Type, name string) (typeRef, error) {
	if m.byName[name] {
		return typeRef{kind: kObject, name: name}, nil
	}
	m.byName[name] = true
	s := structDef{name: name, doc: retitle(m.godoc[t.String()].typ, t.Name(), name), goType: t}
	var walk func(t, embedded reflect.Type) error
	walk = func(t, embedded reflect.Type) error {
		for i := range t.NumField() {
			sf := t.Field(i)
			tag := sf.Tag.Get("json")
			jname, opts, _ := strings.Cut(tag, ",")
			if jname == "-" || !sf.IsExported() {
				continue
			}
			if sf.Anonymous && jname == "" && sf.Type.Kind() == reflect.Struct {
				if err := walk(sf.Type, cmp.Or(embedded, sf.Type)); err != nil {
					return err
				}
				continue
			}
			if jname == "" {
				jname = sf.Name
			}
			ft := sf.Type
			nullable := false
			if ft.Kind() == reflect.Pointer {
				ft, nullable = ft.Elem(), true
			}
			ref, err := m.reflectType(ft)
			if err != nil {
				return fmt.Errorf("%s.%s: %w", t.Name(), sf.Name, err)
			}
			omit := strings.Contains(opts, "omitempty")
			s.fields = append(s.fields, field{json: jname, typ: ref, required: !omit && !nullable, nullable: nullable && !omit,
				doc: m.godoc[t.String()].fields[sf.Name], goField: sf, embedded: embedded})
		}
		return nil
	}
	if err := walk(t, nil); err != nil {
		return typeRef{}, err
	}
	m.structs = append(m.structs, s)
	return typeRef{kind: kObject, name: name}, nil
}

var rawJSON = reflect.TypeFor[json.RawMessage]()

func (m *model) reflectType(t reflect.Type) (typeRef, error) {
	if t == rawJSON {
		return typeRef{kind: kAny}, nil
	}
	switch t.Kind() {
	case reflect.String:
		if t.PkgPath() != "" {
			for _, e := range m.enums {
				if e.name == t.Name() {
					return typeRef{kind: kEnum, name: e.name}, nil
				}
			}
		}
		return typeRef{kind: kString}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return typeRef{kind: kInteger}, nil
	case reflect.Float32, reflect.Float64:
		return typeRef{kind: kNumber}, nil
	case reflect.Bool:
		return typeRef{kind: kBoolean}, nil
	case reflect.Slice, reflect.Array:
		e, err := m.reflectType(t.Elem())
		if err != nil {
			return typeRef{}, err
		}
		return typeRef{kind: kArray, elem: &e}, nil
	case reflect.Map:
		return typeRef{kind: kAny}, nil
	case reflect.Pointer:
		return m.reflectType(t.Elem())
	case reflect.Struct:
		return m.reflectStruct(t, clientName(t))
	}
	return typeRef{}, fmt.Errorf("no client type for Go type %s", t)
}

// clientName is the name the clients give the snapshot's struct t.
func clientName(t reflect.Type) string {
	if r, ok := renames[t.Name()]; ok {
		return r
	}
	return t.Name()
}

// retitle makes a doc comment that begins with a type's name, from, begin
// with the name a client gives it, to.
func retitle(doc, from, to string) string {
	if from != to && strings.HasPrefix(doc, from+" ") {
		return to + strings.TrimPrefix(doc, from)
	}
	return doc
}

// jsonField finds the struct field (embedded structs included) that
// encodes as the JSON member name.
func jsonField(t reflect.Type, name string) (*reflect.StructField, bool) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil, false
	}
	for i := range t.NumField() {
		sf := t.Field(i)
		jname, _, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if jname == name {
			return &sf, true
		}
		if sf.Anonymous && jname == "" {
			if f, ok := jsonField(sf.Type, name); ok {
				return f, true
			}
		}
	}
	return nil, false
}

// pascal turns "active_sessions" into "ActiveSessions".
func pascal(s string) string {
	var b strings.Builder
	for part := range strings.SplitSeq(s, "_") {
		if part != "" {
			b.WriteString(strings.ToUpper(part[:1]) + part[1:])
		}
	}
	return b.String()
}
