package clientgen

import (
	"bytes"
	"encoding/json"
	"fmt"
	"strconv"

	"github.com/ccevents/ccevents/internal/event"
)

// examples returns the catalogue's example payload of every event as the
// gateway delivers it (with a sequence), keyed by event type in catalogue
// order. The clients' tests check their generated types against them: the
// TypeScript compiler (object literals typed by PayloadMap, so a member the
// type lacks is an error too) and Python's decode and to_dict round trip.
func examples() ([]string, map[string]json.RawMessage, error) {
	var order []string
	out := map[string]json.RawMessage{}
	for i, sp := range event.Catalogue() {
		sp.Example.Env().Sequence = uint64(100 + i)
		raw, err := json.Marshal(sp.Example)
		if err != nil {
			return nil, nil, fmt.Errorf("encode the example of %s: %w", sp.Event(), err)
		}
		order = append(order, sp.Event())
		out[sp.Event()] = raw
	}
	return order, out, nil
}

func typeScriptExamples(order []string, ex map[string]json.RawMessage) []byte {
	var w writer
	w.line("// %s", header)
	w.line("// The catalogue's example payloads, typed: compiling this file checks the generated types against them.")
	w.line("")
	w.line(`import type { EventType, PayloadMap } from "../src/events.js";`)
	w.line("")
	w.line("export const examples: { [K in EventType]: PayloadMap[K] } = {")
	for _, name := range order {
		w.line("  %s: %s,", strconv.Quote(name), ex[name])
	}
	w.line("};")
	return w.Bytes()
}

func jsonExamples(order []string, ex map[string]json.RawMessage) []byte {
	var b bytes.Buffer
	b.WriteString("{\n")
	for i, name := range order {
		var ind bytes.Buffer
		_ = json.Indent(&ind, ex[name], "  ", "  ")
		fmt.Fprintf(&b, "  %s: %s", strconv.Quote(name), ind.Bytes())
		if i < len(order)-1 {
			b.WriteString(",")
		}
		b.WriteString("\n")
	}
	b.WriteString("}\n")
	return b.Bytes()
}
