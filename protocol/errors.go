package protocol

import (
	"fmt"
	"strings"
)

// ErrorKind is what kind of thing went wrong with a request: the label of
// the gateway's ccevents_ws_errors_total metric, and an error value, so
// errors.Is(err, protocol.ErrForbidden) holds for a gateway refusal of
// that kind. Replies carry the kind only in what their message says (the
// reply shape is Kazoo's and has no field for it); KindOf reads the one
// kind a client can tell from the wire.
type ErrorKind string

// The kinds of error a reply reports, and the protocol violations that
// close a connection.
const (
	// ErrBadRequest: unparsable message, unknown action, malformed field.
	ErrBadRequest ErrorKind = "bad_request"
	// ErrAuth: missing, invalid or expired token.
	ErrAuth ErrorKind = "auth"
	// ErrForbidden: the token may not see the account, or a binding names
	// another one.
	ErrForbidden ErrorKind = "forbidden"
	// ErrLimit: a binding, connection, rate or address limit was reached.
	ErrLimit ErrorKind = "limit"
	// ErrInternal: auth or the bus failed; try again.
	ErrInternal ErrorKind = "internal"
	// ErrProtocol: a websocket protocol violation (size, UTF-8, binary,
	// framing); the connection is closed.
	ErrProtocol ErrorKind = "protocol"
)

// Error returns the kind's name, e.g. "forbidden".
func (k ErrorKind) Error() string { return string(k) }

// AuthFailedPrefix begins every message about a token that was checked
// and refused: Kazoo's own words, on which Kazoo clients (monster-ui) log
// in again.
const AuthFailedPrefix = "failed to authenticate token: "

// KindOf returns the kind of error a reply's message reports, as far as
// the wire tells it: ErrAuth for a refused token (AuthFailedPrefix), else
// "" (unknown).
func KindOf(message string) ErrorKind {
	if strings.HasPrefix(message, AuthFailedPrefix) {
		return ErrAuth
	}
	return ""
}

// Error is a request the gateway refused, or a part of one: its kind and
// the message for the person who wrote it. errors.Is(err, kind) holds.
type Error struct {
	Kind    ErrorKind
	Message string
	// RetryAfter (seconds), when set, is how long the client should wait
	// before trying again.
	RetryAfter int
}

// Errorf returns an *Error of kind with a formatted message.
func Errorf(kind ErrorKind, format string, args ...any) *Error {
	return &Error{Kind: kind, Message: fmt.Sprintf(format, args...)}
}

// Error returns the message.
func (e *Error) Error() string { return e.Message }

// Unwrap returns the kind.
func (e *Error) Unwrap() error { return e.Kind }
