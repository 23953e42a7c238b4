package soak

import (
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/ccevents/ccevents/internal/binding"
)

// The entities every soak account publishes events about, and the event
// names published per family.
var (
	soakEntities = map[string][]string{
		"queue":     {"sales", "support", "billing", "vip"},
		"recipient": {"alice", "bob", "carol", "dave"},
		"session":   {"call-0", "call-1", "call-2", "call-3", "call-4", "call-5"},
	}
	soakNames = map[string][]string{
		"queue":     {"join", "leave"},
		"recipient": {"ready", "away"},
		"session":   {"create", "delete"},
	}
	soakFamilies = []string{"queue", "recipient", "session"}
)

// evKind is one kind of event the publisher sends for an account: its
// routing key and the parts of it the subscription oracle looks at.
type evKind struct {
	family, entity, name string
	subject              string
}

// kindsFor lists every kind of event published for account acc.
func kindsFor(acc string) []*evKind {
	var out []*evKind
	for _, f := range soakFamilies {
		for _, e := range soakEntities[f] {
			for _, n := range soakNames[f] {
				out = append(out, &evKind{family: f, entity: e, name: n, subject: "qubicle." + f + "." + acc + "." + e + "." + n})
			}
		}
	}
	return out
}

// spec is a binding as the soak test's oracle understands it, written
// independently of the gateway's matcher: each field is a literal, or empty
// for "any".
type spec struct{ family, entity, name string }

// matches reports whether the protocol says a binding of s receives k.
func (s spec) matches(k *evKind) bool {
	return (s.family == "" || s.family == k.family) &&
		(s.entity == "" || s.entity == k.entity) &&
		(s.name == "" || s.name == k.name)
}

// text spells s as a binding of account acc in one of the equivalent forms
// the protocol allows (form picks which): "qubicle.queue.ACC",
// "qubicle.queue.ACC.*" and "qubicle.queue.ACC.#" all receive every queue
// event, since a binding covers everything below its last segment.
func (s spec) text(acc string, form int) string {
	fam := s.family
	if fam == "" {
		fam = "*"
	}
	base := "qubicle." + fam + "." + acc
	switch {
	case s.entity == "" && s.name == "":
		return [...]string{base, base + ".*", base + ".#"}[form%3]
	case s.name == "":
		e := base + "." + s.entity
		return [...]string{e, e + ".*", e + ".#"}[form%3]
	case s.entity == "":
		return [...]string{base + ".*." + s.name, base + ".#." + s.name}[form%2]
	}
	return base + "." + s.entity + "." + s.name
}

// randomSpecs picks the bindings of one client: account-wide, a family,
// a few entities, event names, or overlapping bindings (which must still
// deliver each event once, under the binding subscribed first).
func randomSpecs(rng *rand.Rand) []spec {
	fam := func() string { return soakFamilies[rng.IntN(len(soakFamilies))] }
	entity := func(f string) string { return soakEntities[f][rng.IntN(len(soakEntities[f]))] }
	name := func(f string) string { return soakNames[f][rng.IntN(len(soakNames[f]))] }
	var out []spec
	switch x := rng.IntN(100); {
	case x < 25:
		out = []spec{{}}
	case x < 45:
		out = []spec{{family: fam()}}
	case x < 70:
		for range 1 + rng.IntN(3) {
			f := fam()
			out = append(out, spec{family: f, entity: entity(f)})
		}
	case x < 85:
		for range 1 + rng.IntN(2) {
			f := fam()
			s := spec{family: f, name: name(f)}
			if rng.IntN(3) == 0 {
				s.family = "" // qubicle.*.ACC.*.create
			}
			out = append(out, s)
		}
	default:
		f := fam()
		out = []spec{{family: f}, {family: f, entity: entity(f)}, {family: f, name: name(f)}}
		rng.Shuffle(len(out), func(i, j int) { out[i], out[j] = out[j], out[i] })
	}
	return unique(out)
}

// unique drops repeated specs, keeping the first of each.
func unique(in []spec) []spec {
	var out []spec
	for _, s := range in {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// allSpecs lists every spec the clients may use, for the oracle check.
func allSpecs() []spec {
	out := []spec{{}}
	for _, f := range soakFamilies {
		out = append(out, spec{family: f})
		for _, e := range soakEntities[f] {
			out = append(out, spec{family: f, entity: e}, spec{entity: e})
			for _, n := range soakNames[f] {
				out = append(out, spec{family: f, entity: e, name: n})
			}
		}
		for _, n := range soakNames[f] {
			out = append(out, spec{family: f, name: n}, spec{name: n})
		}
	}
	return out
}

// TestSoakOracleAgreesWithTheProtocol checks the soak test's own model of
// bindings against the gateway's binding parser and matcher for every spec,
// spelling and published event. Both are written from docs/protocol.md;
// the soak test trusts neither, so they must agree.
func TestSoakOracleAgreesWithTheProtocol(t *testing.T) {
	const acc = "0123456789abcdef0123456789abcdef"
	kinds := kindsFor(acc)
	for _, s := range allSpecs() {
		for form := range 3 {
			text := s.text(acc, form)
			b, err := binding.Parse(text)
			if err != nil {
				t.Errorf("binding %q: %v", text, err)
				continue
			}
			for _, k := range kinds {
				if got, want := b.Matches(k.subject), s.matches(k); got != want {
					t.Errorf("binding %q on %s: matcher says %v, the protocol says %v", text, k.subject, got, want)
				}
			}
		}
	}
}
