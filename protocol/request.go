package protocol

import (
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/ccevents/ccevents/internal/jsonerr"
)

// Action names what a message is: a client's request, or what the
// gateway sends (reply, event, notice).
type Action string

// The actions of the protocol.
const (
	// Subscribe adds bindings to the connection, optionally resuming from
	// a Position (since) or with the account's snapshot in the reply.
	Subscribe Action = "subscribe"
	// Unsubscribe removes bindings; the reply lists what it removed.
	Unsubscribe Action = "unsubscribe"
	// Refresh replaces the connection's token before it expires.
	Refresh Action = "refresh"
	// Ping is an application-level liveness check.
	Ping Action = "ping"

	// ReplyAction is the gateway's one answer to each request.
	ReplyAction Action = "reply"
	// EventAction is an event the connection's bindings match.
	EventAction Action = "event"
	// NoticeAction warns of a planned close.
	NoticeAction Action = "notice"
)

// Request is one client message:
// {"action":…,"auth_token":…,"request_id":…,"data":{"account_id":…,"binding":…,"bindings":[…],"since":{…},"snapshot":…}}.
// Ping and refresh carry no data.
type Request struct {
	Action Action `json:"action"`
	// AuthToken is needed by the first subscribe of a connection; later
	// requests may leave it out and act with the connection's token.
	AuthToken string `json:"auth_token,omitempty"`
	// RequestID is echoed in the reply; a request without one gets a
	// generated one.
	RequestID RequestID   `json:"request_id,omitempty"`
	Data      RequestData `json:"data,omitzero"`
}

// RequestData is the data of a subscribe or unsubscribe.
type RequestData struct {
	// AccountID is the account whose events to receive; on unsubscribe,
	// whose short bindings to remove (every account's when empty).
	AccountID string `json:"account_id,omitempty"`
	// Binding is one binding; Bindings several, each optionally with its
	// own Since. Specs returns both in order.
	Binding  string        `json:"binding,omitempty"`
	Bindings []BindingSpec `json:"bindings,omitempty"`
	// Since applies to every binding of the request that has none of its own.
	Since *Position `json:"since,omitempty"`
	// Snapshot asks for the account's current state in the reply, with the
	// new bindings resumed from the sequence it is consistent with.
	Snapshot bool `json:"snapshot,omitempty"`
}

// Specs returns the request's bindings, data.binding first.
func (d *RequestData) Specs() []BindingSpec {
	var out []BindingSpec
	if d.Binding != "" {
		out = append(out, BindingSpec{Binding: d.Binding})
	}
	return append(out, d.Bindings...)
}

// BindingSpec is one entry of data.bindings: a binding string, or
// {"binding":…,"since":{…}} to resume that binding from its own position.
type BindingSpec struct {
	Binding string
	Since   *Position
}

// bindingObject is the object form of a BindingSpec.
type bindingObject struct {
	Binding string    `json:"binding"`
	Since   *Position `json:"since,omitempty"`
}

// MarshalJSON writes the string form when there is no Since.
func (b BindingSpec) MarshalJSON() ([]byte, error) {
	if b.Since == nil {
		return json.Marshal(b.Binding)
	}
	return json.Marshal(bindingObject(b))
}

// UnmarshalJSON accepts both forms of a data.bindings entry.
func (b *BindingSpec) UnmarshalJSON(p []byte) error {
	if len(p) > 0 && p[0] == '"' {
		return json.Unmarshal(p, &b.Binding)
	}
	if len(p) == 0 || p[0] != '{' {
		return &fieldError{`each entry of data.bindings must be a binding string or {"binding": "…", "since": {"sequence": N, "epoch": "…"}}`}
	}
	// encoding/json puts the path (data.bindings) before the field of a
	// type error returned here.
	var o bindingObject
	if err := json.Unmarshal(p, &o); err != nil {
		return err
	}
	*b = BindingSpec(o)
	return nil
}

// Position is a resume cursor: the last stream sequence a client has seen
// and the epoch of the history it belongs to. On the wire (since) it is
// {"sequence": N, "epoch": "…"} or a bare N; a position without an epoch
// is taken in the gateway's current history. The zero Position means
// "from now on".
type Position struct {
	Sequence uint64 `json:"sequence"`
	Epoch    string `json:"epoch,omitempty"`
}

// IsZero reports whether p names no position.
func (p Position) IsZero() bool { return p.Sequence == 0 && p.Epoch == "" }

// String returns "SEQUENCE@EPOCH", the form ParsePosition reads.
func (p Position) String() string {
	if p.Epoch == "" {
		return strconv.FormatUint(p.Sequence, 10)
	}
	return strconv.FormatUint(p.Sequence, 10) + "@" + p.Epoch
}

// ParsePosition reads "SEQUENCE" or "SEQUENCE@EPOCH", as printed by
// Position.String. A sequence without an epoch resumes in whatever history
// the gateway holds now.
func ParsePosition(s string) (Position, error) {
	seq, epoch, _ := strings.Cut(strings.TrimSpace(s), "@")
	n, err := strconv.ParseUint(seq, 10, 64)
	if err != nil || strconv.FormatUint(n, 10) != seq { // refuse "007"
		return Position{}, fmt.Errorf("position %q: want a sequence number, optionally followed by @EPOCH (e.g. 1234@8f2c…)", s)
	}
	return Position{Sequence: n, Epoch: epoch}, nil
}

// UnmarshalJSON accepts both forms of a position.
func (p *Position) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] >= '0' && b[0] <= '9' {
		return json.Unmarshal(b, &p.Sequence)
	}
	if len(b) == 0 || b[0] != '{' {
		return &fieldError{`"since" must be {"sequence": N, "epoch": "…"} or a sequence number N`}
	}
	type plain Position
	return json.Unmarshal(b, (*plain)(p))
}

// RequestID is a request's request_id as the client wrote it (raw JSON:
// Kazoo clients send strings, but any value is echoed as it came).
type RequestID []byte

// NewRequestID returns the request_id s, a JSON string.
func NewRequestID(s string) RequestID { return strconv.AppendQuote(nil, s) }

// IsZero reports whether the request carried no request_id (or null).
func (id RequestID) IsZero() bool { return len(id) == 0 || string(id) == "null" }

// Text returns the request_id's text: the string it holds, or the raw
// JSON of another value. (Formatted with %s, an id shows as it came, like
// json.RawMessage.)
func (id RequestID) Text() string {
	if len(id) >= 2 && id[0] == '"' {
		var s string
		if json.Unmarshal(id, &s) == nil {
			return s
		}
	}
	return string(id)
}

// MarshalJSON writes the id as it came.
func (id RequestID) MarshalJSON() ([]byte, error) {
	if len(id) == 0 {
		return []byte("null"), nil
	}
	return id, nil
}

// UnmarshalJSON keeps a copy of the raw value.
func (id *RequestID) UnmarshalJSON(p []byte) error {
	*id = append((*id)[0:0], p...)
	return nil
}

// MaxDepth bounds how deeply a client message may nest objects and
// arrays. The deepest valid request, {"data":{"bindings":[{"since":{…}}]}},
// has five levels; a nesting bomb is refused before it is decoded.
const MaxDepth = 8

// ErrTooDeep refuses a message nested deeper than MaxDepth.
var ErrTooDeep = &Error{Kind: ErrBadRequest, Message: fmt.Sprintf("the message is nested more than %d levels deep; a request needs at most 5", MaxDepth)}

// ParseRequest decodes one client message, refusing nesting bombs first
// (ErrTooDeep). A message it cannot read is an *Error of kind
// ErrBadRequest whose Message tells the person who wrote it what to fix.
func ParseRequest(msg []byte) (Request, error) {
	var req Request
	if tooDeep(msg, MaxDepth) {
		return req, ErrTooDeep
	}
	if err := json.Unmarshal(msg, &req); err != nil {
		return req, &Error{Kind: ErrBadRequest, Message: describeJSONError(err)}
	}
	return req, nil
}

// tooDeep reports whether JSON text p nests objects and arrays more than
// max levels deep. It only counts brackets outside strings, in one pass
// without allocating; whether p is valid JSON is for the decoder to say.
func tooDeep(p []byte, max int) bool {
	depth := 0
	inString := false
	for i := 0; i < len(p); i++ {
		c := p[i]
		if inString {
			switch c {
			case '\\':
				i++ // skip the escaped byte, which may be a quote
			case '"':
				inString = false
			}
			continue
		}
		switch c {
		case '"':
			inString = true
		case '{', '[':
			if depth++; depth > max {
				return true
			}
		case '}', ']':
			depth--
		}
	}
	return false
}

// fieldError is a request field of the wrong shape, described for people.
type fieldError struct{ msg string }

func (e *fieldError) Error() string { return e.msg }

// describeJSONError turns a decoding error into a message for the person
// who wrote the request, in the words the REST API uses too (jsonerr).
func describeJSONError(err error) string {
	var fe *fieldError
	if errors.As(err, &fe) {
		return fe.msg
	}
	return jsonerr.Describe(err, jsonerr.Doc{Name: "the message", Like: `{"action": "subscribe", "auth_token": "…", "data": {…}}`})
}
