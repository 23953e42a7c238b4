package protocol

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

// FuzzParseRequest feeds arbitrary client messages to the request parser:
// it must never panic, must refuse exactly the messages nested deeper than
// MaxDepth before decoding them, and must explain every refusal in
// a short message for people that names no Go internals.
// Seeds are in testdata/fuzz/FuzzParseRequest; run with
// go test -run '^$' -fuzz FuzzParseRequest -fuzztime 30s ./protocol
func FuzzParseRequest(f *testing.F) {
	f.Add([]byte(`{"action":"subscribe","auth_token":"t","request_id":"1","data":{"account_id":"0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10","binding":"qubicle.queue.0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10.*"}}`))
	f.Fuzz(func(t *testing.T, msg []byte) {
		req, err := ParseRequest(msg)
		if json.Valid(msg) {
			if deep := depth(t, msg) > MaxDepth; deep != errors.Is(err, ErrTooDeep) {
				t.Fatalf("depth %d, parse error %v", depth(t, msg), err)
			}
		}
		if err != nil {
			var perr *Error
			if !errors.As(err, &perr) || perr.Kind != ErrBadRequest {
				t.Fatalf("ParseRequest returned %T %v, want an *Error of kind bad_request", err, err)
			}
			text := perr.Message
			if text == "" || len(text) > 300 || !utf8.ValidString(text) {
				t.Fatalf("error message %q", text)
			}
			for _, internal := range []string{"protocol.", "gateway.", "struct", "json:", "reflect", "Go value", "interface"} {
				if strings.Contains(text, internal) {
					t.Fatalf("error message %q shows %q", text, internal)
				}
			}
			return
		}
		n := len(req.Data.Bindings)
		if req.Data.Binding != "" {
			n++
		}
		if got := len(req.Data.Specs()); got != n {
			t.Fatalf("Specs() returned %d bindings, want %d", got, n)
		}
	})
}

// depth returns how deeply valid JSON p nests objects and arrays.
func depth(t *testing.T, p []byte) int {
	dec := json.NewDecoder(bytes.NewReader(p))
	dec.UseNumber()
	d, deepest := 0, 0
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return deepest
		}
		if err != nil {
			// encoding/json gives up past 10,000 levels; that is deep.
			if strings.Contains(err.Error(), "exceeded max depth") {
				return 10_001
			}
			t.Fatalf("valid JSON %q: %v", p, err)
		}
		switch tok {
		case json.Delim('{'), json.Delim('['):
			d++
			deepest = max(deepest, d)
		case json.Delim('}'), json.Delim(']'):
			d--
		}
	}
}
