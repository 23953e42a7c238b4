package gateway

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"

	"github.com/gobwas/ws"

	"github.com/ccevents/ccevents/internal/jsonerr"
	"github.com/ccevents/ccevents/internal/shorten"
)

// maxRequestDepth bounds how deeply a client message may nest objects and
// arrays. The deepest valid request, {"data":{"bindings":[{"since":{…}}]}},
// has five levels; a nesting bomb is refused before it is decoded.
const maxRequestDepth = 8

// errTooDeep refuses a message nested deeper than maxRequestDepth.
var errTooDeep = &fieldError{fmt.Sprintf("the message is nested more than %d levels deep; a request needs at most 5", maxRequestDepth)}

// parseRequest decodes one client message, refusing nesting bombs first.
func parseRequest(msg []byte) (request, error) {
	var req request
	if tooDeep(msg, maxRequestDepth) {
		return req, errTooDeep
	}
	err := json.Unmarshal(msg, &req)
	return req, err
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

// request is one client message:
// {"action":…,"auth_token":…,"request_id":…,"data":{"account_id":…,"binding":…,"bindings":[…],"since":{…}}}.
type request struct {
	Action    string          `json:"action"`
	AuthToken string          `json:"auth_token"`
	RequestID json.RawMessage `json:"request_id"`
	Data      requestData     `json:"data"`
}

type requestData struct {
	AccountID string        `json:"account_id"`
	Binding   string        `json:"binding"`
	Bindings  []bindingSpec `json:"bindings"`
	// Since applies to every binding of the request that has none of its own.
	Since *cursor `json:"since"`
	// Snapshot asks for the account's current state in the reply, with the
	// new bindings resumed from the sequence it is consistent with.
	Snapshot bool `json:"snapshot"`
}

// cursor is a resume position: the last event a client received. It is
// {"sequence": N, "epoch": "…"} or, as in DESIGN's `since: <sequence>`, a
// bare N; a cursor without an epoch is taken in the current history.
type cursor struct {
	Sequence uint64 `json:"sequence"`
	Epoch    string `json:"epoch"`
}

// UnmarshalJSON accepts both forms of a cursor.
func (c *cursor) UnmarshalJSON(p []byte) error {
	if len(p) > 0 && p[0] >= '0' && p[0] <= '9' {
		return json.Unmarshal(p, &c.Sequence)
	}
	if len(p) == 0 || p[0] != '{' {
		return &fieldError{`"since" must be {"sequence": N, "epoch": "…"} or a sequence number N`}
	}
	type plain cursor
	return json.Unmarshal(p, (*plain)(c))
}

// bindingSpec is one entry of data.bindings: a binding string, or
// {"binding":…,"since":{…}}.
type bindingSpec struct {
	Binding string
	Since   *cursor
}

// fieldError is a request field of the wrong shape, described for people.
type fieldError struct{ msg string }

func (e *fieldError) Error() string { return e.msg }

// UnmarshalJSON accepts both forms of a data.bindings entry.
func (b *bindingSpec) UnmarshalJSON(p []byte) error {
	if len(p) > 0 && p[0] == '"' {
		return json.Unmarshal(p, &b.Binding)
	}
	if len(p) == 0 || p[0] != '{' {
		return &fieldError{`each entry of data.bindings must be a binding string or {"binding": "…", "since": {"sequence": N, "epoch": "…"}}`}
	}
	var o struct {
		Binding string  `json:"binding"`
		Since   *cursor `json:"since"`
	}
	if err := json.Unmarshal(p, &o); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) && te.Field != "" {
			te.Field = "data.bindings[]." + te.Field
		}
		return err
	}
	b.Binding, b.Since = o.Binding, o.Since
	return nil
}

// specs returns the request's bindings, data.binding first.
func (d *requestData) specs() []bindingSpec {
	var out []bindingSpec
	if d.Binding != "" {
		out = append(out, bindingSpec{Binding: d.Binding})
	}
	return append(out, d.Bindings...)
}

// describeJSONError turns a decoding error into a message for the person
// who wrote the request.
func describeJSONError(err error) string {
	var fe *fieldError
	if errors.As(err, &fe) {
		return fe.msg
	}
	return jsonerr.Describe(err, jsonerr.Doc{Name: "the message", Like: `{"action": "subscribe", "auth_token": "…", "data": {…}}`})
}

// quoteShort quotes user input for an error message, cut to a readable length.
func quoteShort(s string) string { return shorten.Quote(s, 64) }

// reply is the answer to one request.
type reply struct {
	Action    string          `json:"action"`
	RequestID json.RawMessage `json:"request_id,omitempty"`
	Status    string          `json:"status"`
	Data      any             `json:"data"`
}

// subscriptionData answers subscribe and unsubscribe.
type subscriptionData struct {
	// Unsubscribed (unsubscribe only, always present there) lists the
	// bindings the request removed.
	Unsubscribed []string `json:"unsubscribed,omitzero"`
	// Subscribed lists every binding active on the connection, as the
	// client wrote them.
	Subscribed []string `json:"subscribed"`
	Epoch      string   `json:"epoch,omitempty"`
	// Sequence (live subscribe) is the stream position the new bindings
	// are live from: every later matching event will be delivered.
	Sequence *uint64 `json:"sequence,omitempty"`
	// Recovered and ReplayUntil answer a subscribe with since.
	Recovered   *bool    `json:"recovered,omitempty"`
	ReplayUntil *uint64  `json:"replay_until,omitempty"`
	Errors      []string `json:"errors,omitempty"`
	Message     string   `json:"message,omitempty"`
	// Snapshot is the account's state, for a subscribe with snapshot: true.
	Snapshot json.RawMessage `json:"snapshot,omitempty"`
	// RetryAfter (seconds) answers a request refused by the auth back-off.
	RetryAfter int `json:"retry_after,omitempty"`
}

type errorData struct {
	Errors     []string `json:"errors"`
	Message    string   `json:"message"`
	RetryAfter int      `json:"retry_after,omitempty"`
}

// refreshData answers a refresh: when the connection's subscriptions now
// expire (the earliest of their tokens), and the accounts the new token
// now covers.
type refreshData struct {
	ExpiresAt string   `json:"expires_at"`
	Accounts  []string `json:"accounts"`
}

// pongData answers ping: response is Kazoo's answer, pong ours.
type pongData struct {
	Pong     bool   `json:"pong"`
	Response string `json:"response"`
}

type noticeData struct {
	Reason  string `json:"reason"`
	Message string `json:"message"`
	// With reason token_expiring: the account of the expiring token and
	// when it expires (RFC 3339).
	AccountID string `json:"account_id,omitempty"`
	ExpiresAt string `json:"expires_at,omitempty"`
}

type notice struct {
	Action string     `json:"action"`
	Data   noticeData `json:"data"`
}

// sendReply queues a reply frame. A request without a request_id gets a
// generated one, as Kazoo does: 32 hex characters.
func (c *conn) sendReply(id json.RawMessage, status string, data any) {
	if len(id) == 0 || string(id) == "null" {
		id = generateRequestID()
	}
	c.enqueue(jsonFrame(reply{Action: "reply", RequestID: id, Status: status, Data: data}))
}

// generateRequestID returns a random request id as a JSON string. It only
// has to tell one reply from another in logs, not be unguessable.
func generateRequestID() json.RawMessage {
	var raw [16]byte
	binary.LittleEndian.PutUint64(raw[:8], rand.Uint64())
	binary.LittleEndian.PutUint64(raw[8:], rand.Uint64())
	id := make([]byte, 34)
	id[0], id[33] = '"', '"'
	hex.Encode(id[1:33], raw[:])
	return id
}

// answerPing answers ping. A token it carries is checked like any other,
// which authenticates the connection (Kazoo clients ping with one).
func (c *conn) answerPing(req *request) {
	if req.AuthToken != "" {
		if _, terr := c.verifyToken(req.AuthToken); terr != nil {
			c.srv.m.error(errAuth)
			c.sendReply(req.RequestID, "error", errorData{Errors: []string{terr.msg}, Message: terr.msg, RetryAfter: terr.retryAfter})
			return
		}
	}
	c.sendReply(req.RequestID, "success", pongData{Pong: true, Response: "pong"})
}

// replyError answers a request that failed as a whole.
func (c *conn) replyError(id json.RawMessage, kind, msg string) {
	c.srv.m.error(kind)
	c.sendReply(id, "error", errorData{Errors: []string{msg}, Message: msg})
}

// replySubscription answers subscribe or unsubscribe: status error when any
// part failed, with what is active either way.
func (c *conn) replySubscription(id json.RawMessage, data subscriptionData) {
	if data.Subscribed == nil {
		data.Subscribed = c.subscribed.texts()
	}
	status := "success"
	if len(data.Errors) > 0 {
		status = "error"
		data.Message = data.Errors[0]
	}
	c.sendReply(id, status, data)
}

// jsonFrame encodes v as a complete text frame.
func jsonFrame(v any) []byte {
	p, err := json.Marshal(v)
	if err != nil {
		// Only the gateway's own types come here, and they marshal; the
		// client still gets an answer if that ever changes.
		p = []byte(`{"action":"reply","status":"error","data":{"errors":["the gateway could not encode its reply"],"message":"the gateway could not encode its reply"}}`)
	}
	return controlFrame(ws.OpText, p)
}

// controlFrame returns a complete unmasked frame carrying p.
func controlFrame(op ws.OpCode, p []byte) []byte {
	dst := make([]byte, 0, frameHeaderLen(len(p))+len(p))
	dst = appendFrameHeader(dst, op, len(p))
	return append(dst, p...)
}
