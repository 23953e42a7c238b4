package binding

import (
	"slices"
	"strings"

	"github.com/ccevents/ccevents/internal/event"
)

// Name returns the event name the binding names in its last position
// (qubicle.queue.<account>.*.join names join), or "" when it names none:
// fewer than MaxSegments segments, a wildcard there, or a '#' before it,
// which lets that segment fall in another position.
func (b Binding) Name() string {
	if b.n != MaxSegments || b.segs[MaxSegments-2] == "#" {
		return ""
	}
	switch name := b.segs[MaxSegments-1]; name {
	case "*", "#":
		return ""
	default:
		return name
	}
}

// CheckName reports a binding whose event name (Name) is no event of its
// family in the catalogue: it would be accepted and silently never match.
// The error, a *ParseError, lists the names the family has.
func (b Binding) CheckName() error {
	name := b.Name()
	if name == "" {
		return nil
	}
	families := event.Families()
	if b.family != FamilyAny {
		families = []event.Family{b.family}
	}
	for _, f := range families {
		if event.Known(f, name) {
			return nil
		}
	}
	var known []string
	for _, f := range families {
		for _, n := range event.Names(f) {
			if !slices.Contains(known, n) {
				known = append(known, n)
			}
		}
	}
	what := "event"
	if b.family != FamilyAny {
		what = string(b.family) + " event"
	}
	return parseErr(b.s, MaxSegments, "unknown %s %q (known: %s)", what, name, strings.Join(known, ", "))
}
