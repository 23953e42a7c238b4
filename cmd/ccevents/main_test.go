package main

import (
	"bytes"
	"strings"
	"testing"
)

// A subcommand that takes only flags refuses a stray argument before it
// does anything, as a usage error: exit 2 and a sentence naming the
// command and the argument.
func TestFlagOnlySubcommandsRefuseStrayArguments(t *testing.T) {
	tests := []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--demo", "now"}, `serve takes no arguments, got ["now"] (flags go before, e.g. --demo)`},
		{[]string{"token", "--account", "0123456789abcdef0123456789abcdef", "extra"}, `token takes no arguments, got ["extra"]`},
		{[]string{"listen", "qubicle.queue.*"}, `listen takes no arguments, got ["qubicle.queue.*"] (bindings go in --binding)`},
		{[]string{"top", "sales"}, `top takes no arguments, got ["sales"]`},
		{[]string{"simulate", "fast"}, `simulate takes no arguments, got ["fast"]`},
		{[]string{"bench", "100"}, `bench takes no arguments, got ["100"] (flags go before, e.g. --conns 100)`},
		{[]string{"doctor", "now"}, `doctor takes no arguments, got ["now"]`},
		{[]string{"version", "--json", "x"}, `version takes no arguments, got ["x"]`},
	}
	for _, tc := range tests {
		t.Run(tc.args[0], func(t *testing.T) {
			var out, errs bytes.Buffer
			code := run(tc.args, &out, &errs)
			if code != 2 || !strings.Contains(errs.String(), "ccevents: "+tc.want) {
				t.Errorf("exit %d, stderr %q; want exit 2 and %q", code, errs.String(), tc.want)
			}
			if out.Len() != 0 {
				t.Errorf("printed %q before refusing", out.String())
			}
		})
	}
}
