package eventdoc

import (
	"encoding/json"
	"fmt"

	"go.yaml.in/yaml/v3"
)

// omap is a YAML mapping that keeps its keys in the order written, so the
// generated document reads top-down and diffs stay small.
type omap []kv

type kv struct {
	k string
	v any
}

// MarshalYAML implements yaml.Marshaler.
func (m omap) MarshalYAML() (any, error) {
	n := &yaml.Node{Kind: yaml.MappingNode}
	for _, e := range m {
		var v yaml.Node
		if err := v.Encode(e.v); err != nil {
			return nil, fmt.Errorf("key %s: %w", e.k, err)
		}
		n.Content = append(n.Content, &yaml.Node{Kind: yaml.ScalarNode, Value: e.k}, &v)
	}
	return n, nil
}

// MarshalJSON implements json.Marshaler, keeping key order.
func (m omap) MarshalJSON() ([]byte, error) {
	b := []byte{'{'}
	for i, e := range m {
		if i > 0 {
			b = append(b, ',')
		}
		k, _ := json.Marshal(e.k) // a string always encodes
		v, err := json.Marshal(e.v)
		if err != nil {
			return nil, err
		}
		b = append(append(append(b, k...), ':'), v...)
	}
	return append(b, '}'), nil
}
