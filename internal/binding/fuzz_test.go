package binding

import (
	"slices"
	"strings"
	"testing"

	"github.com/ccevents/ccevents/internal/event"
)

// FuzzParse checks that no input crashes Parse, that every accepted binding
// re-parses to itself, and that its accessors and Matches stay consistent.
// Seeds live in testdata/fuzz/FuzzParse.
func FuzzParse(f *testing.F) {
	f.Fuzz(func(t *testing.T, s string) {
		b, err := Parse(s)
		if err != nil {
			if !b.IsZero() {
				t.Fatalf("Parse(%q) returned a binding with error %v", s, err)
			}
			if !strings.HasPrefix(err.Error(), "binding ") || len(err.Error()) > 700 {
				t.Fatalf("unreadable error for %q: %q", s, err)
			}
			return
		}
		again, err := Parse(b.String())
		if err != nil || again != b {
			t.Fatalf("Parse(%q).String() = %q re-parses to %q, %v", s, b.String(), again.String(), err)
		}
		if b.String() != s || !event.ValidAccountID(b.Account()) {
			t.Fatalf("Parse(%q) gave String %q, Account %q", s, b.String(), b.Account())
		}
		// A binding matches its own text with every wildcard replaced by
		// a literal, and its account's events never leak to another account.
		subject := strings.NewReplacer("*", "x", "#", "y").Replace(s)
		if !b.Matches(subject) {
			t.Fatalf("%q does not match %q", s, subject)
		}
		foreign := strings.Replace(subject, b.Account(), "ffffffffffffffffffffffffffffffff", 1)
		if b.Account() != "ffffffffffffffffffffffffffffffff" && b.Matches(foreign) {
			t.Fatalf("%q matches another account's subject %q", s, foreign)
		}
		b.Matches(s)
		b.Matches(b.BusFilter())
		if !strings.HasPrefix(b.BusFilter(), "qubicle.") {
			t.Fatalf("BusFilter of %q = %q", s, b.BusFilter())
		}
	})
}

// FuzzIndexMatch checks the Index against Binding.Matches for arbitrary
// bindings (one per line; invalid lines are skipped) and an arbitrary subject.
// Seeds live in testdata/fuzz/FuzzIndexMatch.
func FuzzIndexMatch(f *testing.F) {
	f.Fuzz(func(t *testing.T, bindings string, subject string) {
		ix := NewIndex[int]()
		model := map[pair]bool{}
		for i, line := range strings.Split(bindings, "\n") {
			if i == 32 {
				break
			}
			b, err := Parse(line)
			if err != nil {
				continue
			}
			v := i % 3 // several bindings share a value
			if ix.Add(b, v) == model[pair{b, v}] {
				t.Fatalf("Add(%q, %d) disagrees with the model", b, v)
			}
			model[pair{b, v}] = true
		}
		got := sortedMatch(ix, subject)
		if want := bruteMatch(model, subject); !slices.Equal(got, want) {
			t.Fatalf("Match(%q) = %v, want %v", subject, got, want)
		}
		for p := range model {
			if !ix.Remove(p.b, p.v) {
				t.Fatalf("Remove(%q, %d) = false", p.b, p.v)
			}
		}
		if ix.Len() != 0 || !ix.root.empty() {
			t.Fatal("index not empty after removing every pair")
		}
	})
}
