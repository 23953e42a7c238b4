package binding

import (
	"fmt"
	"strings"

	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/shorten"
)

// Limits of the binding language. Event subjects are
// qubicle.<family>.<account>.<entity>.<name>, so a binding never needs more
// than MaxSegments segments.
const (
	MaxLen      = 256
	MaxSegments = 5
)

const prefix = "qubicle"

// FamilyAny is the family of a binding written with "*" in the family
// position; the others are event's (event.Queue, event.Recipient, …).
const FamilyAny event.Family = ""

// Binding is a parsed, valid binding. The zero Binding matches nothing.
// Bindings are comparable and may be used as map keys; two bindings are equal
// when their text is equal.
type Binding struct {
	s      string
	filter string
	segs   [MaxSegments]string // substrings of s, so matching never allocates
	n      uint8
	family event.Family
}

// ParseError describes why a binding was refused, in words meant for the
// person who wrote it.
type ParseError struct {
	Binding  string // the refused text, shortened when very long
	Position int    // 1-based segment the problem is in; 0 when it concerns the whole binding
	Problem  string
}

// Error returns `binding "<text>": <problem>`.
func (e *ParseError) Error() string {
	return fmt.Sprintf("binding %q: %s", e.Binding, e.Problem)
}

func parseErr(s string, pos int, format string, args ...any) error {
	return &ParseError{Binding: shorten.String(s, quoted), Position: pos, Problem: fmt.Sprintf(format, args...)}
}

// quoted is how many bytes of a client's text an error repeats at most, so
// errors stay short however long the input.
const quoted = 64

// Parse validates s and returns the binding it denotes. Errors are
// *ParseError values that name the problem and the segment it is in.
func Parse(s string) (Binding, error) {
	if s == "" {
		return Binding{}, parseErr(s, 0, "binding is empty")
	}
	if len(s) > MaxLen {
		return Binding{}, parseErr(s, 0, "binding is %d bytes, longer than the limit of %d", len(s), MaxLen)
	}
	b := Binding{s: s}
	rest := s
	for pos := 1; ; pos++ {
		seg, more := rest, false
		if i := strings.IndexByte(rest, '.'); i >= 0 {
			seg, rest, more = rest[:i], rest[i+1:], true
		}
		if pos > MaxSegments {
			return Binding{}, parseErr(s, pos, "binding is longer than %d segments", MaxSegments)
		}
		if err := checkSegment(s, pos, seg, &b); err != nil {
			return Binding{}, err
		}
		b.segs[pos-1] = seg
		b.n = uint8(pos)
		if !more {
			break
		}
	}
	if b.n < 3 {
		return Binding{}, parseErr(s, int(b.n)+1, "binding must name an account: qubicle.<family>.<account_id>")
	}
	b.filter = busFilter(s, b.segs[:b.n])
	return b, nil
}

func checkSegment(s string, pos int, seg string, b *Binding) error {
	if pos == 1 {
		if seg != prefix {
			return parseErr(s, pos, "binding must start with %q", prefix+".")
		}
		return nil
	}
	if seg == "" {
		return parseErr(s, pos, "empty segment at position %d", pos)
	}
	switch pos {
	case 2:
		switch f := event.Family(seg); {
		case f.Valid():
			b.family = f
		case seg == "*":
			b.family = FamilyAny
		default:
			return parseErr(s, pos, "unknown family %q (expected queue, recipient, session, stats or *)", shorten.String(seg, quoted))
		}
	case 3:
		if seg == "*" || seg == "#" {
			return parseErr(s, pos, "the account segment must be a literal account id, got %q", shorten.String(seg, quoted))
		}
		if !event.ValidAccountID(seg) {
			return parseErr(s, pos, "the account segment must be a literal account id (32 lowercase hex characters), got %q", shorten.String(seg, quoted))
		}
	default:
		if seg != "*" && seg != "#" && !event.ValidEntityID(seg) {
			return parseErr(s, pos, "segment %d must be an id (1 to 64 letters, digits, '_' or '-'), '*' or '#', got %q", pos, shorten.String(seg, quoted))
		}
	}
	return nil
}

// busFilter keeps the segments before the first '#' and adds ".>" whenever
// the binding can match event subjects longer than itself.
func busFilter(s string, segs []string) string {
	for i, seg := range segs {
		if seg == "#" {
			return strings.Join(segs[:i], ".") + ".>"
		}
	}
	if len(segs) < MaxSegments {
		return s + ".>"
	}
	return s
}

// MustParse is Parse for bindings known to be valid, such as constants in
// tests and examples; it panics on an invalid binding.
func MustParse(s string) Binding {
	b, err := Parse(s)
	if err != nil {
		panic(err)
	}
	return b
}

// String returns the binding's text as the client wrote it.
func (b Binding) String() string { return b.s }

// IsZero reports whether b is the zero Binding, which matches nothing.
func (b Binding) IsZero() bool { return b.n == 0 }

// Account returns the account id the binding names.
func (b Binding) Account() string { return b.segs[2] }

// Family returns the family the binding is limited to, or FamilyAny.
func (b Binding) Family() event.Family { return b.family }

// BusFilter returns a NATS subject filter that covers at least every event
// subject (qubicle.<family>.<account>.<entity>.<name>) the binding matches,
// e.g. qubicle.queue.ACC.* gives qubicle.queue.ACC.*.> and
// qubicle.queue.ACC.#.join gives qubicle.queue.ACC.>.
func (b Binding) BusFilter() string { return b.filter }

// Matches reports whether an event with this subject is delivered to the
// binding: "*" matches exactly one segment, "#" zero or more, and the binding
// also covers every subject below its last segment. It does not allocate.
func (b Binding) Matches(subject string) bool {
	if b.n == 0 {
		return false
	}
	return matchSegs(b.segs[:b.n], subject, 0)
}

// matchSegs matches segs against the tokens of subject starting at byte pos;
// pos == len(subject)+1 means no tokens are left.
func matchSegs(segs []string, subject string, pos int) bool {
	for i, seg := range segs {
		if seg == "#" {
			for {
				if matchSegs(segs[i+1:], subject, pos) {
					return true
				}
				if pos > len(subject) {
					return false
				}
				_, pos = token(subject, pos)
			}
		}
		if pos > len(subject) {
			return false
		}
		tok, next := token(subject, pos)
		if seg != "*" && seg != tok {
			return false
		}
		pos = next
	}
	return true // covers everything below the last segment
}

// token returns the token of subject starting at pos and the start of the
// next one (len(subject)+1 after the last token).
func token(subject string, pos int) (string, int) {
	rest := subject[pos:]
	if i := strings.IndexByte(rest, '.'); i >= 0 {
		return rest[:i], pos + i + 1
	}
	return rest, len(subject) + 1
}

// AccountFilter returns the NATS subject filter of every event of account.
func AccountFilter(account string) string {
	return prefix + ".*." + account + ".>"
}

// SubjectAccount returns the account id of an event subject
// (qubicle.<family>.<account>.<entity>.<name>), or "" when subject is not a
// well-formed event subject. It does not allocate.
func SubjectAccount(subject string) string {
	var toks [MaxSegments]string
	pos, n := 0, 0
	for pos <= len(subject) {
		if n == MaxSegments {
			return ""
		}
		toks[n], pos = token(subject, pos)
		n++
	}
	if n != MaxSegments || toks[0] != prefix {
		return ""
	}
	if !event.Family(toks[1]).Valid() {
		return ""
	}
	if !event.ValidAccountID(toks[2]) || !event.ValidEntityID(toks[3]) || !event.ValidEntityID(toks[4]) {
		return ""
	}
	return toks[2]
}
