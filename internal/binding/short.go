package binding

import (
	"strings"

	"github.com/ccevents/ccevents/internal/shorten"
)

// ParseFor parses a binding a client subscribed with for account. Besides
// every binding Parse accepts, it takes the short form 2600Hz's Qubicle
// documents and its clients send, qubicle.<family> with the account given
// beside it, which stands for qubicle.<family>.<account>.*; the Binding
// returned is that expansion, so matching, bus filters and replays treat
// both forms alike. A full binding must still name account itself; that is
// for the caller to check, since the error it owes the client names its
// own field. Errors are *ParseError values quoting the text as written.
func ParseFor(text, account string) (Binding, error) {
	if !IsShort(text) {
		return Parse(text)
	}
	if err := checkShort(text); err != nil {
		return Binding{}, err
	}
	b, err := Parse(text + "." + account + ".*")
	if err != nil {
		// Only the account can be wrong here: the family was just checked.
		return Binding{}, parseErr(text, 3, "a short binding takes its account from data.account_id, which must be a literal account id (32 lowercase hex characters), got %q", shorten.String(account, quoted))
	}
	return b, nil
}

// Check reports what is wrong with text as a binding a client may write,
// full or short, when no account is at hand to expand a short one (an
// unsubscribe that names none).
func Check(text string) error {
	if IsShort(text) {
		return checkShort(text)
	}
	_, err := Parse(text)
	return err
}

// checkShort checks the family of a short binding.
func checkShort(text string) error {
	var probe Binding
	return checkSegment(text, 2, text[len(prefix)+1:], &probe)
}

// IsShort reports whether text has the short form qubicle.<family>: two
// segments and no account.
func IsShort(text string) bool {
	rest, ok := strings.CutPrefix(text, prefix+".")
	return ok && rest != "" && !strings.Contains(rest, ".")
}
