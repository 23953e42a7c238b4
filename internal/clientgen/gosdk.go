package clientgen

import (
	"fmt"
	"go/format"
	"reflect"
	"strings"

	"github.com/ccevents/ccevents/internal/event"
)

// eventPkg is the import path of package event, whose types the Go SDK
// re-exports as aliases (client/payloads.go) instead of copying them.
var eventPkg = reflect.TypeFor[event.State]().PkgPath()

// goRenames are the snapshot types the Go SDK names differently from the
// other clients, on top of renames.
var goRenames = map[string]string{"AccountStats": "SnapshotStats"}

// goSDK writes the snapshot's types for the Go SDK (package client): each
// struct the engine reflects, with its Go field types and JSON tags, as the
// SDK names them. A field or embedded struct of a type of package event
// uses the SDK's alias of it, so those types are not written again.
func goSDK(m *model) ([]byte, error) {
	var w writer
	w.line("// %s", header)
	w.line("")
	w.line("package client")
	for _, s := range m.structs {
		if s.goType == nil || s.goType.PkgPath() == eventPkg {
			continue // a catalogue type: the SDK aliases it
		}
		name := goName(s.name)
		w.line("")
		goComment(&w, "", retitle(s.doc, s.name, name))
		w.line("type %s struct {", name)
		var embedded reflect.Type
		for _, f := range s.fields {
			if f.embedded != nil && f.embedded.PkgPath() == eventPkg {
				if f.embedded != embedded {
					w.line("\t%s", f.embedded.Name())
				}
				embedded = f.embedded
				continue
			}
			t, err := goTypeName(f.goField.Type)
			if err != nil {
				return nil, fmt.Errorf("%s.%s: %w", name, f.goField.Name, err)
			}
			goComment(&w, "\t", f.doc)
			tag := ""
			if j := f.goField.Tag.Get("json"); j != "" {
				tag = " `json:\"" + j + "\"`"
			}
			w.line("\t%s %s%s", f.goField.Name, t, tag)
		}
		w.line("}")
	}
	out, err := format.Source(w.Bytes())
	if err != nil {
		return nil, fmt.Errorf("gofmt the Go SDK's snapshot types: %w", err)
	}
	return out, nil
}

// goName is the Go SDK's name of the snapshot type the clients call name.
func goName(name string) string {
	if r, ok := goRenames[name]; ok {
		return r
	}
	return name
}

// goTypeName spells the Go type t as package client declares it.
func goTypeName(t reflect.Type) (string, error) {
	switch {
	case t.PkgPath() == eventPkg:
		return t.Name(), nil // the SDK's alias
	case t.Name() == "":
		switch t.Kind() {
		case reflect.Pointer:
			elem, err := goTypeName(t.Elem())
			return "*" + elem, err
		case reflect.Slice:
			elem, err := goTypeName(t.Elem())
			return "[]" + elem, err
		}
	case t.Kind() == reflect.Struct:
		return goName(clientName(t)), nil // written by goSDK
	case t.Kind() == reflect.Bool || t.Kind() == reflect.String ||
		t.Kind() >= reflect.Int && t.Kind() <= reflect.Float64 && t.Kind() != reflect.Uintptr:
		return t.Kind().String(), nil // predeclared, or a named one as the other clients see it
	}
	return "", fmt.Errorf("no Go SDK type for Go type %s", t)
}

// goComment writes doc as a Go comment.
func goComment(w *writer, indent, doc string) {
	for _, l := range docLines(doc) {
		w.line("%s// %s", indent, strings.TrimRight(l, " "))
	}
}
