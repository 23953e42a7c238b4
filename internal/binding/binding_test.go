package binding

import (
	"errors"
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/ccevents/ccevents/internal/event"
)

const (
	acc   = "4f2a0c1e9b8d7a6f5e4d3c2b1a098765"
	other = "0123456789abcdef0123456789abcdef"
)

func TestParseAcceptsValidBindings(t *testing.T) {
	tests := []struct {
		in     string
		family event.Family
		filter string
	}{
		{"qubicle.queue." + acc, event.Queue, "qubicle.queue." + acc + ".>"},
		{"qubicle.queue." + acc + ".*", event.Queue, "qubicle.queue." + acc + ".*.>"},
		{"qubicle.recipient." + acc + ".*", event.Recipient, "qubicle.recipient." + acc + ".*.>"},
		{"qubicle.session." + acc + ".S1", event.Session, "qubicle.session." + acc + ".S1.>"},
		{"qubicle.queue." + acc + ".Q1.join", event.Queue, "qubicle.queue." + acc + ".Q1.join"},
		{"qubicle.queue." + acc + ".*.join", event.Queue, "qubicle.queue." + acc + ".*.join"},
		{"qubicle.queue." + acc + ".#.join", event.Queue, "qubicle.queue." + acc + ".>"},
		{"qubicle.queue." + acc + ".#", event.Queue, "qubicle.queue." + acc + ".>"},
		{"qubicle.queue." + acc + ".Q1.#", event.Queue, "qubicle.queue." + acc + ".Q1.>"},
		{"qubicle.queue." + acc + ".*.*", event.Queue, "qubicle.queue." + acc + ".*.*"},
		{"qubicle.*." + acc, FamilyAny, "qubicle.*." + acc + ".>"},
		{"qubicle.*." + acc + ".*.delete", FamilyAny, "qubicle.*." + acc + ".*.delete"},
		{"qubicle.session." + acc + "." + strings.Repeat("a", 64), event.Session, "qubicle.session." + acc + "." + strings.Repeat("a", 64) + ".>"},
		{"qubicle.recipient." + acc + ".R_1-x.wrapup_start", event.Recipient, "qubicle.recipient." + acc + ".R_1-x.wrapup_start"},
		{"qubicle.stats." + acc + ".*", event.Stats, "qubicle.stats." + acc + ".*.>"},
		{"qubicle.stats." + acc + "._total", event.Stats, "qubicle.stats." + acc + "._total.>"},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			b, err := Parse(tt.in)
			if err != nil {
				t.Fatalf("Parse: %v", err)
			}
			if b.String() != tt.in {
				t.Errorf("String() = %q, want %q", b.String(), tt.in)
			}
			if b.Account() != acc {
				t.Errorf("Account() = %q, want %q", b.Account(), acc)
			}
			if b.Family() != tt.family {
				t.Errorf("Family() = %q, want %q", b.Family(), tt.family)
			}
			if b.BusFilter() != tt.filter {
				t.Errorf("BusFilter() = %q, want %q", b.BusFilter(), tt.filter)
			}
			if b.IsZero() {
				t.Error("IsZero() = true for a parsed binding")
			}
		})
	}
}

func TestParseRefusesInvalidBindingsWithReadableErrors(t *testing.T) {
	long := "qubicle.queue." + acc + "." + strings.Repeat("x", 300)
	tests := []struct {
		name string
		in   string
		pos  int
		want string
	}{
		{"empty", "", 0, `binding "": binding is empty`},
		{"wildcard account", "qubicle.queue.*.x", 3, `binding "qubicle.queue.*.x": the account segment must be a literal account id, got "*"`},
		{"hash account", "qubicle.queue.#", 3, `binding "qubicle.queue.#": the account segment must be a literal account id, got "#"`},
		{"uppercase account", "qubicle.queue." + strings.ToUpper(acc), 3, `the account segment must be a literal account id (32 lowercase hex characters), got "4F2A0C1E9B8D7A6F5E4D3C2B1A098765"`},
		{"short account", "qubicle.queue." + acc[:31], 3, `the account segment must be a literal account id (32 lowercase hex characters), got "4f2a0c1e9b8d7a6f5e4d3c2b1a09876"`},
		{"long account", "qubicle.queue." + acc + "0", 3, `the account segment must be a literal account id (32 lowercase hex characters)`},
		{"look-alike account", "qubicle.queue." + strings.Replace(acc, "0", "o", 1), 3, `literal account id (32 lowercase hex characters), got "4f2aoc1e9b8d7a6f5e4d3c2b1a098765"`},
		{"partial wildcard account", "qubicle.queue." + acc[:31] + "*", 3, `the account segment must be a literal account id (32 lowercase hex characters)`},
		{"empty account", "qubicle.queue..Q1", 3, `binding "qubicle.queue..Q1": empty segment at position 3`},
		{"no account", "qubicle.queue", 3, `binding "qubicle.queue": binding must name an account: qubicle.<family>.<account_id>`},
		{"only prefix", "qubicle", 2, `binding must name an account`},
		{"unknown family", "qubicle.queues." + acc, 2, `unknown family "queues" (expected queue, recipient, session, stats or *)`},
		{"hash family", "qubicle.#." + acc, 2, `unknown family "#"`},
		{"uppercase family", "qubicle.Queue." + acc, 2, `unknown family "Queue"`},
		{"empty family", "qubicle.." + acc, 2, `empty segment at position 2`},
		{"wrong prefix", "kazoo.queue." + acc, 1, `binding "kazoo.queue.4f2a0c1e9b8d7a6f5e4d3c2b1a098765": binding must start with "qubicle."`},
		{"leading dot", ".qubicle.queue." + acc, 1, `binding must start with "qubicle."`},
		{"uppercase prefix", "Qubicle.queue." + acc, 1, `binding must start with "qubicle."`},
		{"trailing dot", "qubicle.queue." + acc + ".", 4, `empty segment at position 4`},
		{"empty entity", "qubicle.queue." + acc + "..join", 4, `empty segment at position 4`},
		{"empty name", "qubicle.queue." + acc + ".Q1.", 5, `empty segment at position 5`},
		{"six segments", "qubicle.queue." + acc + ".Q1.join.x", 6, `binding is longer than 5 segments`},
		{"partial wildcard", "qubicle.queue." + acc + ".Q*", 4, `segment 4 must be an id (1 to 64 letters, digits, '_' or '-'), '*' or '#', got "Q*"`},
		{"nats wildcard", "qubicle.queue." + acc + ".>", 4, `segment 4 must be an id`},
		{"space", "qubicle.queue." + acc + ".Q 1", 4, `got "Q 1"`},
		{"leading space", " qubicle.queue." + acc, 1, `binding must start with "qubicle."`},
		{"too long id", "qubicle.queue." + acc + "." + strings.Repeat("a", 65), 4, `segment 4 must be an id`},
		{"non-ascii", "qubicle.queue." + acc + ".caf\u00e9", 4, `got "café"`},
		{"invalid utf8", "qubicle.queue." + acc + ".\xff", 4, `got "\xff"`},
		{"too long", long, 0, `binding is 347 bytes, longer than the limit of 256`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b, err := Parse(tt.in)
			if err == nil {
				t.Fatalf("Parse(%q) = %q, want error", tt.in, b)
			}
			if !strings.Contains(err.Error(), tt.want) {
				t.Errorf("error = %q, want it to contain %q", err, tt.want)
			}
			var pe *ParseError
			if !errors.As(err, &pe) {
				t.Fatalf("error %T is not a *ParseError", err)
			}
			if pe.Position != tt.pos {
				t.Errorf("Position = %d, want %d", pe.Position, tt.pos)
			}
			if !b.IsZero() {
				t.Errorf("Parse returned a non-zero binding with an error")
			}
		})
	}
}

func TestParseErrorShortensHugeBindings(t *testing.T) {
	_, err := Parse(strings.Repeat("q", 10000))
	if err == nil {
		t.Fatal("want error")
	}
	if len(err.Error()) > 200 {
		t.Errorf("error is %d bytes long, want it short: %q", len(err.Error()), err)
	}
}

func TestMustParsePanicsOnInvalidBinding(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("MustParse did not panic")
		}
	}()
	MustParse("qubicle.queue.*")
}

func TestMatches(t *testing.T) {
	q := "qubicle.queue." + acc
	r := "qubicle.recipient." + acc
	s := "qubicle.session." + acc
	tests := []struct {
		binding string
		subject string
		want    bool
	}{
		// account-wide and covers-below
		{q, q + ".Q1.join", true},
		{q, q + ".Q2.delete", true},
		{q, r + ".R1.ready", false},
		{q, "qubicle.queue." + other + ".Q1.join", false},
		{q + ".*", q + ".Q1.create", true},
		{q + ".*", q + ".Q1", true},
		{q + ".*", q, false},
		{s + ".S1", s + ".S1.create", true},
		{s + ".S1", s + ".S1.delete", true},
		{s + ".S1", s + ".S2.create", false},
		{s + ".S1", s + ".S10.create", false},
		{q + ".Q1.join", q + ".Q1.join", true},
		{q + ".Q1.join", q + ".Q1.leave", false},
		{q + ".Q1.join", q + ".Q1", false},
		// '*' in each wildcard position
		{"qubicle.*." + acc, r + ".R1.ready", true},
		{"qubicle.*." + acc, s + ".S1.create", true},
		{"qubicle.*." + acc, "qubicle.queue." + other + ".Q1.join", false},
		{"qubicle.*." + acc + ".*.delete", s + ".S1.delete", true},
		{"qubicle.*." + acc + ".*.delete", q + ".Q1.delete", true},
		{"qubicle.*." + acc + ".*.delete", q + ".Q1.create", false},
		{q + ".*.join", q + ".Q1.join", true},
		{q + ".*.join", q + ".Q1.leave", false},
		{q + ".Q1.*", q + ".Q1.leave", true},
		{q + ".Q1.*", q + ".Q2.leave", false},
		{q + ".*.*", q + ".Q1.leave", true},
		{q + ".*.*", q + ".Q1", false},
		// '#' in position 4: zero, one and several segments
		{q + ".#", q + ".Q1.join", true},
		{q + ".#", q, true},
		{q + ".#.join", q + ".join", true},
		{q + ".#.join", q + ".Q1.join", true},
		{q + ".#.join", q + ".Q1.x.join", true},
		{q + ".#.join", q + ".Q1.leave", false},
		{q + ".#.join", q + ".join.leave", true},
		{q + ".#.join", r + ".R1.join", false},
		{q + ".#.*", q + ".Q1", true},
		{q + ".#.*", q, false},
		{q + ".#.#", q, true},
		// '#' in position 5
		{q + ".Q1.#", q + ".Q1", true},
		{q + ".Q1.#", q + ".Q1.join", true},
		{q + ".Q1.#", q + ".Q2.join", false},
		{q + ".*.#", q + ".Q1.join", true},
		{q + ".*.#", q, false},
		// not event subjects at all
		{q, "", false},
		{q, "qubicle", false},
		{q, "qubicle.queue", false},
		{q, "nats.queue." + acc + ".Q1.join", false},
		{q, "qubicle.queue." + acc[:31], false},
		{q + ".*", q + ".", true}, // '*' matches an empty token, as nothing else could
	}
	for _, tt := range tests {
		t.Run(tt.binding+"~"+tt.subject, func(t *testing.T) {
			b := MustParse(tt.binding)
			if got := b.Matches(tt.subject); got != tt.want {
				t.Errorf("%q.Matches(%q) = %v, want %v", tt.binding, tt.subject, got, tt.want)
			}
		})
	}
}

func TestZeroBindingMatchesNothing(t *testing.T) {
	var b Binding
	for _, s := range []string{"", "qubicle.queue." + acc + ".Q1.join", "x"} {
		if b.Matches(s) {
			t.Errorf("zero Binding matches %q", s)
		}
	}
}

func TestBindingsAreComparable(t *testing.T) {
	a := MustParse("qubicle.queue." + acc + ".*")
	b := MustParse("qubicle.queue." + strings.Clone(acc) + ".*")
	c := MustParse("qubicle.queue." + acc)
	if a != b {
		t.Error("bindings with equal text compare unequal")
	}
	if a == c {
		t.Error("bindings with different text compare equal")
	}
	m := map[Binding]int{a: 1}
	if m[b] != 1 {
		t.Error("binding does not work as a map key")
	}
}

func TestMatchesDoesNotAllocate(t *testing.T) {
	b := MustParse("qubicle.queue." + acc + ".#.join")
	subject := "qubicle.queue." + acc + ".Q1.join"
	allocs := testing.AllocsPerRun(100, func() {
		if !b.Matches(subject) {
			t.Fatal("no match")
		}
	})
	if allocs != 0 {
		t.Errorf("Matches allocates %v times per call", allocs)
	}
}

func TestAccountFilter(t *testing.T) {
	if got, want := AccountFilter(acc), "qubicle.*."+acc+".>"; got != want {
		t.Errorf("AccountFilter = %q, want %q", got, want)
	}
}

func TestSubjectAccount(t *testing.T) {
	tests := []struct {
		subject, want string
	}{
		{"qubicle.queue." + acc + ".Q1.join", acc},
		{"qubicle.recipient." + acc + ".R1.wrapup_start", acc},
		{"qubicle.session." + acc + ".S1.create", acc},
		{"qubicle.stats." + acc + ".Q1.queue", acc},
		{"qubicle.stats." + acc + "._total.account", acc},
		{"qubicle.queue." + acc + ".Q1", ""},
		{"qubicle.queue." + acc + ".Q1.join.x", ""},
		{"qubicle.queue." + acc, ""},
		{"qubicle.*." + acc + ".Q1.join", ""},
		{"qubicle.queues." + acc + ".Q1.join", ""},
		{"qubicle.queue.*.Q1.join", ""},
		{"qubicle.queue." + strings.ToUpper(acc) + ".Q1.join", ""},
		{"qubicle.queue." + acc + "..join", ""},
		{"qubicle.queue." + acc + ".Q1.", ""},
		{"x.queue." + acc + ".Q1.join", ""},
		{"", ""},
	}
	for _, tt := range tests {
		if got := SubjectAccount(tt.subject); got != tt.want {
			t.Errorf("SubjectAccount(%q) = %q, want %q", tt.subject, got, tt.want)
		}
	}
	subject := "qubicle.queue." + acc + ".Q1.join"
	if allocs := testing.AllocsPerRun(100, func() { SubjectAccount(subject) }); allocs != 0 {
		t.Errorf("SubjectAccount allocates %v times per call", allocs)
	}
}

func TestBusFilterCoversEveryMatchingEventSubject(t *testing.T) {
	// Each binding is checked against every event subject built from a small
	// alphabet: whenever the binding matches, the NATS filter must too.
	bindings := []string{
		"qubicle.queue." + acc,
		"qubicle.*." + acc,
		"qubicle.queue." + acc + ".*",
		"qubicle.queue." + acc + ".#",
		"qubicle.queue." + acc + ".#.join",
		"qubicle.queue." + acc + ".#.*",
		"qubicle.queue." + acc + ".*.#",
		"qubicle.queue." + acc + ".Q1.join",
		"qubicle.*." + acc + ".*.delete",
		"qubicle.session." + acc + ".S1",
	}
	var subjects []string
	for _, f := range []string{"queue", "recipient", "session"} {
		for _, a := range []string{acc, other} {
			for _, e := range []string{"Q1", "S1", "join"} {
				for _, n := range []string{"join", "delete", "Q1"} {
					subjects = append(subjects, "qubicle."+f+"."+a+"."+e+"."+n)
				}
			}
		}
	}
	for _, s := range bindings {
		b := MustParse(s)
		for _, subj := range subjects {
			if b.Matches(subj) && !natsMatch(b.BusFilter(), subj) {
				t.Errorf("%q matches %q but its bus filter %q does not", s, subj, b.BusFilter())
			}
		}
	}
}

// natsMatch is NATS subject-filter matching ('*' one token, '>' one or more
// trailing tokens), written out independently of the code under test.
func natsMatch(filter, subject string) bool {
	f := strings.Split(filter, ".")
	s := strings.Split(subject, ".")
	for i, t := range f {
		if t == ">" {
			return len(s) > i
		}
		if i >= len(s) || (t != "*" && t != s[i]) {
			return false
		}
	}
	return len(f) == len(s)
}

func TestParseErrorKeepsCharactersWhole(t *testing.T) {
	_, err := Parse("qubicle.queue." + acc + "." + strings.Repeat("é", 40))
	var pe *ParseError
	if !errors.As(err, &pe) {
		t.Fatalf("error %v is not a *ParseError", err)
	}
	if !utf8.ValidString(pe.Binding) || !utf8.ValidString(pe.Error()) {
		t.Errorf("shortened error is not valid UTF-8: %q", pe.Error())
	}
}
