package binding

import (
	"errors"
	"fmt"
	"testing"
)

func TestShortBindingMeansEverythingOfItsFamilyInTheAccount(t *testing.T) {
	tests := []struct {
		text, want string
		matches    []string
		misses     []string
	}{
		{"qubicle.queue", "qubicle.queue." + acc + ".*",
			[]string{"qubicle.queue." + acc + ".Q1.join", "qubicle.queue." + acc + ".sales.delete"},
			[]string{"qubicle.recipient." + acc + ".R1.ready", "qubicle.queue." + other + ".Q1.join"}},
		{"qubicle.recipient", "qubicle.recipient." + acc + ".*",
			[]string{"qubicle.recipient." + acc + ".R1.ready"},
			[]string{"qubicle.session." + acc + ".S1.create"}},
		{"qubicle.session", "qubicle.session." + acc + ".*",
			[]string{"qubicle.session." + acc + ".S1.create"},
			[]string{"qubicle.session." + other + ".S1.create"}},
		{"qubicle.*", "qubicle.*." + acc + ".*",
			[]string{"qubicle.queue." + acc + ".Q1.join", "qubicle.session." + acc + ".S1.delete"},
			[]string{"qubicle.queue." + other + ".Q1.join"}},
		// A full binding is itself.
		{"qubicle.queue." + acc + ".Q1", "qubicle.queue." + acc + ".Q1",
			[]string{"qubicle.queue." + acc + ".Q1.join"},
			[]string{"qubicle.queue." + acc + ".Q2.join"}},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			b, err := ParseFor(tt.text, acc)
			if err != nil {
				t.Fatalf("ParseFor: %v", err)
			}
			if b != MustParse(tt.want) {
				t.Fatalf("ParseFor(%q) = %q, want %q", tt.text, b, tt.want)
			}
			for _, s := range tt.matches {
				if !b.Matches(s) {
					t.Errorf("does not match %s", s)
				}
			}
			for _, s := range tt.misses {
				if b.Matches(s) {
					t.Errorf("matches %s", s)
				}
			}
		})
	}
}

func TestShortBindingErrorsQuoteWhatTheClientWrote(t *testing.T) {
	tests := []struct{ text, account, want string }{
		{"qubicle.agent", acc, `binding "qubicle.agent": unknown family "agent" (expected queue, recipient, session, stats or *)`},
		{"qubicle.queue", "", `binding "qubicle.queue": a short binding takes its account from data.account_id, which must be a literal account id (32 lowercase hex characters), got ""`},
		{"qubicle.queue", "ACME", `binding "qubicle.queue": a short binding takes its account from data.account_id, which must be a literal account id (32 lowercase hex characters), got "ACME"`},
		{"qubicle.", acc, `binding "qubicle.": empty segment at position 2`},
		{"queue", acc, `binding "queue": binding must start with "qubicle."`},
	}
	for _, tt := range tests {
		t.Run(tt.text, func(t *testing.T) {
			_, err := ParseFor(tt.text, tt.account)
			var pe *ParseError
			if !errors.As(err, &pe) || err.Error() != tt.want {
				t.Fatalf("ParseFor(%q, %q) error = %v, want %s", tt.text, tt.account, err, tt.want)
			}
		})
	}
}

func TestCheckTakesShortBindingsWithoutAnAccount(t *testing.T) {
	for text, want := range map[string]string{
		"qubicle.queue":                "",
		"qubicle.queue." + acc + ".Q1": "",
		"qubicle.agent":                `binding "qubicle.agent": unknown family "agent" (expected queue, recipient, session, stats or *)`,
		"qubicle.queue.*":              `binding "qubicle.queue.*": the account segment must be a literal account id, got "*"`,
	} {
		err := Check(text)
		if got := fmt.Sprint(err); (want == "" && err != nil) || (want != "" && got != want) {
			t.Errorf("Check(%q) = %v, want %q", text, err, want)
		}
	}
}

func TestIsShort(t *testing.T) {
	for text, want := range map[string]bool{
		"qubicle.queue": true, "qubicle.*": true, "qubicle.agent": true,
		"qubicle.queue." + acc: false, "qubicle.": false, "qubicle": false, "queue.x": false,
	} {
		if got := IsShort(text); got != want {
			t.Errorf("IsShort(%q) = %v, want %v", text, got, want)
		}
	}
}
