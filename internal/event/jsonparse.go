package event

import (
	"encoding/json"
	"strconv"
	"unicode/utf16"
	"unicode/utf8"
)

// parser decodes one JSON document strictly and quickly, for Validate:
// objects become map[string]any, arrays []any, numbers json.Number. It
// refuses what encoding/json would silently accept or resolve: duplicate
// keys (a second value could hide from one reader and not another) and
// nesting deeper than maxDepth. The input must already be valid UTF-8.
type parser struct {
	data  []byte
	pos   int
	depth int
}

// parseErr words a syntax problem for people, with the byte offset.
func (p *parser) parseErr(what string) error {
	if p.pos >= len(p.data) {
		return &ValidationError{Message: "payload is not valid JSON: it ends too early"}
	}
	r, _ := utf8.DecodeRune(p.data[p.pos:])
	return &ValidationError{Message: "payload is not valid JSON: " + what + ", got " + strconv.QuoteRune(r) + " at byte " + strconv.Itoa(p.pos)}
}

func (p *parser) ws() {
	for p.pos < len(p.data) {
		switch p.data[p.pos] {
		case ' ', '\t', '\n', '\r':
			p.pos++
		default:
			return
		}
	}
}

func (p *parser) value() (any, error) {
	p.ws()
	if p.pos >= len(p.data) {
		return nil, p.parseErr("expected a value")
	}
	switch c := p.data[p.pos]; {
	case c == '{':
		return p.object()
	case c == '[':
		return p.array()
	case c == '"':
		return p.str()
	case c == '-' || c >= '0' && c <= '9':
		return p.number()
	case p.literal("true"):
		return true, nil
	case p.literal("false"):
		return false, nil
	case p.literal("null"):
		return nil, nil
	}
	return nil, p.parseErr("expected a value")
}

func (p *parser) literal(lit string) bool {
	if len(p.data)-p.pos >= len(lit) && string(p.data[p.pos:p.pos+len(lit)]) == lit {
		p.pos += len(lit)
		return true
	}
	return false
}

func (p *parser) nest() error {
	p.depth++
	if p.depth > maxDepth {
		return &ValidationError{Message: "payload is nested more than " + strconv.Itoa(maxDepth) + " levels deep"}
	}
	return nil
}

// closes consumes the closing bracket c, after any white space, and leaves
// the nesting level it ends; it reports false when c is not next.
func (p *parser) closes(c byte) bool {
	p.ws()
	if p.pos < len(p.data) && p.data[p.pos] == c {
		p.pos++
		p.depth--
		return true
	}
	return false
}

func (p *parser) object() (map[string]any, error) {
	if err := p.nest(); err != nil {
		return nil, err
	}
	p.pos++ // '{'
	obj := map[string]any{}
	if p.closes('}') {
		return obj, nil
	}
	for more := true; more; {
		p.ws()
		if p.pos >= len(p.data) || p.data[p.pos] != '"' {
			return nil, p.parseErr("expected a field name in double quotes")
		}
		key, err := p.str()
		if err != nil {
			return nil, err
		}
		if _, dup := obj[key]; dup {
			return nil, &ValidationError{Field: key, Message: "appears twice; each field may appear once"}
		}
		p.ws()
		if p.pos >= len(p.data) || p.data[p.pos] != ':' {
			return nil, p.parseErr("expected ':' after a field name")
		}
		p.pos++
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		obj[key] = v
		if more, err = p.next('}'); err != nil {
			return nil, err
		}
	}
	return obj, nil
}

func (p *parser) array() ([]any, error) {
	if err := p.nest(); err != nil {
		return nil, err
	}
	p.pos++ // '['
	arr := []any{}
	if p.closes(']') {
		return arr, nil
	}
	for more := true; more; {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		arr = append(arr, v)
		if more, err = p.next(']'); err != nil {
			return nil, err
		}
	}
	return arr, nil
}

// next consumes what follows a member or an element: a ',' before another
// one (more is true), or the closing bracket c that ends the list.
func (p *parser) next(c byte) (more bool, err error) {
	p.ws()
	if p.pos < len(p.data) && p.data[p.pos] == ',' {
		p.pos++
		return true, nil
	}
	if p.closes(c) {
		return false, nil
	}
	return false, p.parseErr("expected ',' or '" + string(c) + "'")
}

// str decodes a string; the common case without escapes is one allocation.
func (p *parser) str() (string, error) {
	p.pos++ // opening quote
	start := p.pos
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		if c == '"' {
			s := string(p.data[start:p.pos])
			p.pos++
			return s, nil
		}
		if c == '\\' {
			return p.strSlow(start)
		}
		if c < 0x20 {
			return "", p.parseErr("control characters must be escaped in strings")
		}
		p.pos++
	}
	return "", p.parseErr("expected a closing '\"'")
}

func (p *parser) strSlow(start int) (string, error) {
	b := append([]byte(nil), p.data[start:p.pos]...)
	for p.pos < len(p.data) {
		c := p.data[p.pos]
		switch {
		case c == '"':
			p.pos++
			return string(b), nil
		case c < 0x20:
			return "", p.parseErr("control characters must be escaped in strings")
		case c != '\\':
			b = append(b, c)
			p.pos++
			continue
		}
		p.pos++ // backslash
		if p.pos >= len(p.data) {
			break
		}
		e := p.data[p.pos]
		p.pos++
		switch e {
		case '"', '\\', '/':
			b = append(b, e)
		case 'b':
			b = append(b, '\b')
		case 'f':
			b = append(b, '\f')
		case 'n':
			b = append(b, '\n')
		case 'r':
			b = append(b, '\r')
		case 't':
			b = append(b, '\t')
		case 'u':
			r, ok := p.hex4()
			if !ok {
				return "", p.parseErr("expected 4 hex digits after \\u")
			}
			if utf16.IsSurrogate(r) {
				// A pair makes one rune; a lone half becomes U+FFFD, as in encoding/json.
				save := p.pos
				if p.pos+1 < len(p.data) && p.data[p.pos] == '\\' && p.data[p.pos+1] == 'u' {
					p.pos += 2
					if r2, ok := p.hex4(); ok {
						if dec := utf16.DecodeRune(r, r2); dec != utf8.RuneError {
							b = utf8.AppendRune(b, dec)
							continue
						}
					}
				}
				p.pos = save
				r = utf8.RuneError
			}
			b = utf8.AppendRune(b, r)
		default:
			p.pos--
			return "", p.parseErr("expected an escape like \\n, \\\" or \\u0041")
		}
	}
	return "", p.parseErr("expected a closing '\"'")
}

func (p *parser) hex4() (rune, bool) {
	if len(p.data)-p.pos < 4 {
		return 0, false
	}
	var r rune
	for _, c := range p.data[p.pos : p.pos+4] {
		switch {
		case c >= '0' && c <= '9':
			r = r<<4 | rune(c-'0')
		case c >= 'a' && c <= 'f':
			r = r<<4 | rune(c-'a'+10)
		case c >= 'A' && c <= 'F':
			r = r<<4 | rune(c-'A'+10)
		default:
			return 0, false
		}
	}
	p.pos += 4
	return r, true
}

// number checks the JSON number grammar and keeps the literal.
func (p *parser) number() (json.Number, error) {
	start := p.pos
	digits := func() int {
		n := 0
		for p.pos < len(p.data) && p.data[p.pos] >= '0' && p.data[p.pos] <= '9' {
			p.pos++
			n++
		}
		return n
	}
	if p.data[p.pos] == '-' {
		p.pos++
	}
	if p.pos < len(p.data) && p.data[p.pos] == '0' {
		p.pos++
	} else if digits() == 0 {
		return "", p.parseErr("expected a digit")
	}
	if p.pos < len(p.data) && p.data[p.pos] == '.' {
		p.pos++
		if digits() == 0 {
			return "", p.parseErr("expected a digit after '.'")
		}
	}
	if p.pos < len(p.data) && (p.data[p.pos] == 'e' || p.data[p.pos] == 'E') {
		p.pos++
		if p.pos < len(p.data) && (p.data[p.pos] == '+' || p.data[p.pos] == '-') {
			p.pos++
		}
		if digits() == 0 {
			return "", p.parseErr("expected a digit in the exponent")
		}
	}
	return json.Number(p.data[start:p.pos]), nil
}
