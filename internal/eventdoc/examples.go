package eventdoc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/ccevents/ccevents/internal/event"
)

// ReadExamples reads example payloads keyed by event ("queue.join": {…})
// from a JSON file, as captured from a real run. A missing file is not an
// error: it yields no examples, and the catalogue's own are used.
func ReadExamples(path string) (map[string]json.RawMessage, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read examples: %w", err)
	}
	var ex map[string]json.RawMessage
	if err := json.Unmarshal(data, &ex); err != nil {
		return nil, fmt.Errorf("read examples %s: %w", path, err)
	}
	for k := range ex {
		f, name, _ := strings.Cut(k, ".")
		if _, ok := event.Lookup(event.Family(f), name); !ok {
			return nil, fmt.Errorf("read examples %s: %q is not an event of the catalogue", path, k)
		}
	}
	return ex, nil
}

// decodeOrdered decodes JSON keeping the order of object keys (as omap)
// and integers as int64, so examples render as they were captured.
func decodeOrdered(raw []byte) (any, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var walk func() (any, error)
	walk = func() (any, error) {
		tok, err := dec.Token()
		if err != nil {
			return nil, err
		}
		switch t := tok.(type) {
		case json.Delim:
			if t == '{' {
				m := omap{}
				for dec.More() {
					k, err := dec.Token()
					if err != nil {
						return nil, err
					}
					v, err := walk()
					if err != nil {
						return nil, err
					}
					m = append(m, kv{k.(string), v})
				}
				_, err := dec.Token()
				return m, err
			}
			a := []any{}
			for dec.More() {
				v, err := walk()
				if err != nil {
					return nil, err
				}
				a = append(a, v)
			}
			_, err := dec.Token()
			return a, err
		case json.Number:
			if i, err := t.Int64(); err == nil {
				return i, nil
			}
			return t.Float64()
		}
		return tok, nil
	}
	return walk()
}

// examplePayloads returns one decoded example payload per spec, from
// examples when it has one for the event, else from Spec.Example.
func examplePayloads(specs []event.Spec, examples map[string]json.RawMessage) ([]any, error) {
	out := make([]any, len(specs))
	for i, s := range specs {
		raw, ok := examples[s.Event()]
		if !ok {
			_, data, err := event.Marshal(s.Example)
			if err != nil {
				return nil, fmt.Errorf("example of %s: %w", s.Event(), err)
			}
			raw = data
		} else {
			var env event.Envelope
			if err := json.Unmarshal(raw, &env); err != nil {
				return nil, fmt.Errorf("example of %s: %w", s.Event(), err)
			}
			subject := event.Subject(s.Family, env.AccountID, s.Family.EntityID(&env), s.Name)
			if _, _, err := event.Validate(subject, withoutSequence(raw)); err != nil {
				return nil, fmt.Errorf("example of %s: %w", s.Event(), err)
			}
		}
		v, err := decodeOrdered(raw)
		if err != nil {
			return nil, fmt.Errorf("example of %s: %w", s.Event(), err)
		}
		out[i] = v
	}
	return out, nil
}

// withoutSequence drops "sequence" from a captured payload, so examples
// taken from a real run (where the gateway added it) validate as published.
func withoutSequence(raw json.RawMessage) []byte {
	var m map[string]json.RawMessage
	if json.Unmarshal(raw, &m) != nil {
		return raw
	}
	if _, ok := m["sequence"]; !ok {
		return raw
	}
	delete(m, "sequence")
	out, err := json.Marshal(m)
	if err != nil {
		return raw
	}
	return out
}
