package binding

import "strings"

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
	var probe Binding
	if err := checkSegment(text, 2, text[len(prefix)+1:], &probe); err != nil {
		return Binding{}, err
	}
	b, err := Parse(text + "." + account + ".*")
	if err != nil {
		// Only the account can be wrong here: the family was just checked.
		return Binding{}, parseErr(text, 3, "a short binding takes its account from data.account_id, which must be a literal account id (32 lowercase hex characters), got %q", shorten(account))
	}
	return b, nil
}

// IsShort reports whether text has the short form qubicle.<family>: two
// segments and no account.
func IsShort(text string) bool {
	rest, ok := strings.CutPrefix(text, prefix+".")
	return ok && rest != "" && !strings.Contains(rest, ".")
}
