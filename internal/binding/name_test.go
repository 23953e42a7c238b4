package binding

import (
	"errors"
	"strings"
	"testing"
)

func TestNameIsTheEventNameABindingPins(t *testing.T) {
	tests := []struct{ binding, want string }{
		{"qubicle.queue." + acc + ".*.join", "join"},
		{"qubicle.queue." + acc + ".Q1.join", "join"},
		{"qubicle.*." + acc + ".*.delete", "delete"},
		{"qubicle.queue." + acc + ".*.*", ""},
		{"qubicle.queue." + acc + ".Q1.#", ""},
		{"qubicle.queue." + acc + ".#.join", ""}, // join may be the entity
		{"qubicle.queue." + acc + ".Q1", ""},
		{"qubicle.queue." + acc, ""},
	}
	for _, tt := range tests {
		if got := MustParse(tt.binding).Name(); got != tt.want {
			t.Errorf("Name(%s) = %q, want %q", tt.binding, got, tt.want)
		}
	}
}

// A binding whose event name no event of its family has would silently
// never match: CheckName refuses it and says which names there are.
func TestCheckNameRefusesEventsTheCatalogueDoesNotHave(t *testing.T) {
	tests := []struct {
		binding, wantErr string
	}{
		{"qubicle.queue." + acc + ".*.join", ""},
		{"qubicle.stats." + acc + "._total.account", ""},
		{"qubicle.*." + acc + ".*.delete", ""},
		{"qubicle.queue." + acc + ".#.jion", ""},
		{"qubicle.queue." + acc + ".*", ""},
		{"qubicle.queue." + acc + ".*.jion",
			`binding "qubicle.queue.` + acc + `.*.jion": unknown queue event "jion" (known: create, delete, join, leave, delivered)`},
		{"qubicle.session." + acc + ".S1.join",
			`binding "qubicle.session.` + acc + `.S1.join": unknown session event "join" (known: create, delete)`},
	}
	for _, tt := range tests {
		err := MustParse(tt.binding).CheckName()
		if tt.wantErr == "" {
			if err != nil {
				t.Errorf("CheckName(%s): %v", tt.binding, err)
			}
			continue
		}
		var pe *ParseError
		if err == nil || err.Error() != tt.wantErr || !errors.As(err, &pe) || pe.Position != MaxSegments {
			t.Errorf("CheckName(%s) = %v\nwant %s", tt.binding, err, tt.wantErr)
		}
	}
	// Any family: the names of every family.
	err := MustParse("qubicle.*." + acc + ".*.nope").CheckName()
	if err == nil || !strings.Contains(err.Error(), `unknown event "nope" (known: create, delete, join, leave, delivered, `) {
		t.Errorf("CheckName with any family: %v", err)
	}
}
