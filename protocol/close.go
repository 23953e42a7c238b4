package protocol

import (
	"fmt"
	"strconv"
	"time"
)

// CloseCode is a websocket close code the gateway ends a connection with.
// It is also an error value: errors.Is(err, protocol.CloseSlowConsumer)
// holds for a *CloseError with that code.
type CloseCode int

// The close codes the gateway sends; docs/protocol.md says what a client
// should do on each.
const (
	// CloseNormal: the client or the gateway ended the session.
	CloseNormal CloseCode = 1000
	// CloseGoingAway: the gateway is shutting down or restarting (after a
	// shutdown notice); reconnect, to any gateway, and resume with since.
	CloseGoingAway CloseCode = 1001
	// CloseProtocolError: the client broke the websocket framing rules.
	CloseProtocolError CloseCode = 1002
	// CloseUnsupportedData: a binary message; the protocol is JSON text.
	CloseUnsupportedData CloseCode = 1003
	// CloseInvalidUTF8: a text message that is not valid UTF-8.
	CloseInvalidUTF8 CloseCode = 1007
	// CloseMessageTooBig: a message larger than the gateway's limit.
	CloseMessageTooBig CloseCode = 1009
	// CloseInternalError: the gateway could not read history for a resume,
	// or live events were lost between the bus and the gateway; the
	// history is there: reconnect after a jittered back-off and resume
	// with the same since.
	CloseInternalError CloseCode = 1011
	// CloseKeepaliveTimeout: nothing, not even a pong, arrived for the
	// ping interval plus the pong timeout; the peer is taken for dead.
	CloseKeepaliveTimeout CloseCode = 4000
	// CloseTokenExpired: the token the connection subscribed with expired
	// and no refresh brought a new one (after a token_expiring notice).
	// Get a new token, reconnect and resume with since.
	CloseTokenExpired CloseCode = 4001
	// CloseSlowConsumer: the connection's outbound queue overflowed because
	// the client did not read fast enough. Reconnect and resume with since.
	CloseSlowConsumer CloseCode = 4008
)

// The reasons the gateway's close frames carry, beside their codes.
const (
	ReasonGoingAway     = "the gateway is shutting down; reconnect"
	ReasonBinary        = "binary messages are not supported: send JSON as text"
	ReasonInvalidUTF8   = "text message is not valid UTF-8"
	ReasonHistoryFailed = "reading history failed; reconnect and resume with since"
	ReasonEventsLost    = "events were lost between the bus and this gateway; reconnect and resume with since"
	ReasonTokenExpired  = "token expired"
	ReasonSlowConsumer  = "slow consumer: reconnect and resume with since"
)

// ReasonTooBig is the reason of a CloseMessageTooBig for a gateway whose
// limit is limit bytes.
func ReasonTooBig(limit int64) string {
	return fmt.Sprintf("message larger than the limit of %d bytes", limit)
}

// ReasonKeepaliveTimeout is the reason of a CloseKeepaliveTimeout after
// nothing arrived for d.
func ReasonKeepaliveTimeout(d time.Duration) string {
	return fmt.Sprintf("nothing received for %s, not even a pong", d)
}

// Error returns e.g. "websocket close 4008".
func (c CloseCode) Error() string { return "websocket close " + strconv.Itoa(int(c)) }

// CloseError is how the gateway closed a connection: its websocket close
// code and reason, e.g. 4008 "slow consumer: …" or 1001 "the gateway is
// shutting down; reconnect".
type CloseError struct {
	Code   CloseCode
	Reason string
}

// Error returns e.g. "gateway closed the connection: 4008 slow consumer".
func (e *CloseError) Error() string {
	if e.Reason == "" {
		return fmt.Sprintf("gateway closed the connection: %d", e.Code)
	}
	return fmt.Sprintf("gateway closed the connection: %d %s", e.Code, e.Reason)
}

// Is reports whether target is e's close code.
func (e *CloseError) Is(target error) bool {
	code, ok := target.(CloseCode)
	return ok && code == e.Code
}
