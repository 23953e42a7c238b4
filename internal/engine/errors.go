package engine

import (
	"errors"
	"fmt"

	"github.com/ccevents/ccevents/internal/event"
)

// Kind classifies an engine error so callers (the REST API, simulators) can
// map it to a status without parsing messages.
type Kind int

// Error kinds.
const (
	// KindInvalid: the request itself is malformed (bad id, value out of range).
	KindInvalid Kind = iota + 1
	// KindNotFound: a queue, recipient or call named in the request does not exist.
	KindNotFound
	// KindConflict: the request is well formed but impossible in the current
	// state (going ready while logged out, accepting a call not offered).
	KindConflict
	// KindUnavailable: the engine cannot take the request now (shutting
	// down, the account is owned elsewhere, the bus is far behind).
	KindUnavailable
)

// Error is an engine refusal. Message is written for people and never
// leaks internals; errors.Is(err, ErrConflict) and friends test the Kind.
type Error struct {
	Kind    Kind
	Message string
	// Moved marks a KindUnavailable refusal given because the account does
	// not run on the engine that answered (it is moving between engine
	// nodes, or another node owns it). Nothing was changed, so the request
	// may be sent again, to the account's owner; a Router does that itself
	// for a while before passing the refusal on.
	Moved bool
}

func (e *Error) Error() string { return e.Message }

// Is matches another *Error of the same Kind, so the sentinels below work
// with errors.Is.
func (e *Error) Is(target error) bool {
	t, ok := target.(*Error)
	return ok && t.Message == "" && t.Kind == e.Kind
}

// Sentinels for errors.Is.
var (
	ErrInvalid     = &Error{Kind: KindInvalid}
	ErrNotFound    = &Error{Kind: KindNotFound}
	ErrConflict    = &Error{Kind: KindConflict}
	ErrUnavailable = &Error{Kind: KindUnavailable}
)

func errorf(k Kind, format string, args ...any) error {
	return &Error{Kind: k, Message: fmt.Sprintf(format, args...)}
}

func invalidf(format string, args ...any) error  { return errorf(KindInvalid, format, args...) }
func notFoundf(format string, args ...any) error { return errorf(KindNotFound, format, args...) }
func conflictf(format string, args ...any) error { return errorf(KindConflict, format, args...) }

// matchPathID fills in the id an update's body left out from its path,
// and refuses a body that names another (what is "queue" or "recipient").
func matchPathID(what string, bodyID *string, pathID string) error {
	if *bodyID == "" {
		*bodyID = pathID
	}
	if *bodyID != pathID {
		return invalidf("%s id %q in the body does not match %q in the path", what, short(*bodyID), short(pathID))
	}
	return nil
}

// movedf refuses a request for an account that does not run here; see
// Error.Moved.
func movedf(format string, args ...any) error {
	return &Error{Kind: KindUnavailable, Message: fmt.Sprintf(format, args...), Moved: true}
}

// IsMoved reports whether err is a Moved refusal: the account does not
// run on the engine that answered, and nothing was changed.
func IsMoved(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Moved
}

// CheckAccountID refuses an account id that is not 32 lowercase hex
// characters, with the sentence every engine caller answers.
func CheckAccountID(id string) error {
	if !event.ValidAccountID(id) {
		return invalidf("account id must be 32 lowercase hex characters, got %q", short(id))
	}
	return nil
}
