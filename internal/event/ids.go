package event

import (
	"strings"
)

// Subject prefix shared by every routing key.
const subjectPrefix = "qubicle."

// ValidAccountID reports whether s is an account id: 32 lowercase hex digits.
func ValidAccountID(s string) bool { return isLowerHex(s, 32) }

// ValidEntityID reports whether s is a queue, recipient, session or
// supervisor id: 1 to 64 characters of A-Z, a-z, 0-9, '_' and '-'.
func ValidEntityID(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// validEventID reports whether s is an event id: 32 lowercase hex digits.
func validEventID(s string) bool { return isLowerHex(s, 32) }

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= '0' && c <= '9' || c >= 'a' && c <= 'f') {
			return false
		}
	}
	return true
}

// Subject returns the routing key (NATS subject) of an event:
// qubicle.<family>.<account>.<entity>.<name>.
func Subject(f Family, account, entity, name string) string {
	return subjectPrefix + string(f) + "." + account + "." + entity + "." + name
}

// appendSubject appends p's routing key to dst.
func appendSubject(dst []byte, p Payload) []byte {
	env := p.Env()
	dst = append(dst, subjectPrefix...)
	dst = append(dst, p.Family()...)
	dst = append(dst, '.')
	dst = append(dst, env.AccountID...)
	dst = append(dst, '.')
	dst = append(dst, p.Family().EntityID(env)...)
	dst = append(dst, '.')
	return append(dst, p.Name()...)
}

// ParseSubject splits a routing key into its parts and checks each: the
// family and name must be in the catalogue, the account a valid account id
// and the entity a valid entity id. Errors are *ValidationError for the
// field "routing_key", written for people.
func ParseSubject(subject string) (family Family, account, entity, name string, err error) {
	fail := func(msg string) (Family, string, string, string, error) {
		return "", "", "", "", &ValidationError{Field: "routing_key", Message: msg}
	}
	const shape = "qubicle.<queue|recipient|session|stats>.<account_id>.<entity_id>.<event>"
	rest, ok := strings.CutPrefix(subject, subjectPrefix)
	if !ok {
		return fail("expected " + shape + ", got " + quoteShort(subject))
	}
	parts := strings.SplitN(rest, ".", 5)
	if len(parts) != 4 {
		return fail("expected 5 dot-separated segments " + shape + ", got " + quoteShort(subject))
	}
	family = Family(parts[0])
	if !family.Valid() {
		return fail("expected family queue, recipient, session or stats, got " + quoteShort(parts[0]))
	}
	account, entity, name = parts[1], parts[2], parts[3]
	if !ValidAccountID(account) {
		return fail("expected an account id of 32 lowercase hex digits, got " + quoteShort(account))
	}
	if !ValidEntityID(entity) {
		return fail("expected a " + strings.TrimSuffix(family.EntityField(), "_id") + " id of 1-64 characters A-Z a-z 0-9 _ -, got " + quoteShort(entity))
	}
	if _, ok := lookupKind(family, name); !ok {
		return fail("unknown " + string(family) + " event " + quoteShort(name) + "; expected one of " + strings.Join(Names(family), ", "))
	}
	if family == Stats && (name == "account") != (entity == StatsTotal) {
		if entity == StatsTotal {
			return fail("stats.queue events name a queue; " + StatsTotal + " is reserved for stats.account")
		}
		return fail("stats.account events have the entity " + StatsTotal + ", got " + quoteShort(entity))
	}
	return family, account, entity, name, nil
}
