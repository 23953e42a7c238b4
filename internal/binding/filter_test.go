package binding

import (
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
	"pgregory.net/rapid"
)

// A stream read for several bindings goes through one filter: the
// bindings' own when one covers the others, the account's otherwise.
func TestFilterCoveringPicksTheNarrowestSingleFilter(t *testing.T) {
	tests := []struct {
		bindings []string
		want     string
	}{
		{[]string{"qubicle.queue.ACC.*"}, "qubicle.queue.ACC.*.>"},
		{[]string{"qubicle.queue.ACC.Q1", "qubicle.queue.ACC.*"}, "qubicle.queue.ACC.*.>"},
		{[]string{"qubicle.queue.ACC.*.join", "qubicle.queue.ACC.Q1.join"}, "qubicle.queue.ACC.*.join"},
		{[]string{"qubicle.queue.ACC.*", "qubicle.queue.ACC"}, "qubicle.queue.ACC.>"},
		{[]string{"qubicle.queue.ACC.*", "qubicle.queue.ACC.*"}, "qubicle.queue.ACC.*.>"},
		// Neither covers the other: read the account.
		{[]string{"qubicle.queue.ACC.Q1", "qubicle.queue.ACC.Q2"}, "qubicle.*.ACC.>"},
		{[]string{"qubicle.queue.ACC.Q1", "qubicle.session.ACC.*"}, "qubicle.*.ACC.>"},
		{[]string{"qubicle.*.ACC.Q1", "qubicle.queue.ACC.*"}, "qubicle.*.ACC.>"},
		{[]string{"qubicle.queue.ACC.*.join", "qubicle.queue.ACC.Q1.*"}, "qubicle.*.ACC.>"},
	}
	for _, tt := range tests {
		var bs []Binding
		for _, s := range tt.bindings {
			bs = append(bs, MustParse(strings.ReplaceAll(s, "ACC", acc)))
		}
		if got, want := FilterCovering(acc, bs), strings.ReplaceAll(tt.want, "ACC", acc); got != want {
			t.Errorf("%v: filter %s, want %s", tt.bindings, got, want)
		}
	}
}

func TestFilterCovers(t *testing.T) {
	tests := []struct {
		f, g string
		want bool
	}{
		{"a.b", "a.b", true},
		{"a.*", "a.b", true},
		{"a.*", "a.*", true},
		{"a.b", "a.*", false},
		{"a.>", "a.b.c", true},
		{"a.>", "a.*.>", true},
		{"a.>", "a", false},
		{"a.*", "a.>", false},
		{"a.*", "a.b.c", false},
		{"a.b.c", "a.b", false},
		{"*.b", "a.b", true},
		{">", "a", true},
	}
	for _, tt := range tests {
		if got := filterCovers(tt.f, tt.g); got != tt.want {
			t.Errorf("filterCovers(%q, %q) = %v, want %v", tt.f, tt.g, got, tt.want)
		}
	}
}

// filterCovers agrees with nats-server's own subset test on the filters
// bindings make, and FilterCovering covers every binding it is given.
func TestFilterCoversAgreesWithNATS(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		a, b := genBinding(t), genBinding(t)
		fa, fb := a.BusFilter(), b.BusFilter()
		if got, want := filterCovers(fa, fb), server.SubjectMatchesFilter(fb, fa); got != want {
			t.Fatalf("filterCovers(%q, %q) = %v, nats-server says %v", fa, fb, got, want)
		}
		if a.Account() != b.Account() {
			return
		}
		f := FilterCovering(a.Account(), []Binding{a, b})
		for _, x := range []Binding{a, b} {
			if !server.SubjectMatchesFilter(x.BusFilter(), f) {
				t.Fatalf("FilterCovering(%s, %s) = %q does not cover %q", a, b, f, x.BusFilter())
			}
		}
	})
}
