package protocol

import "encoding/json"

// Status says whether a request succeeded.
type Status string

// The statuses of a reply.
const (
	StatusSuccess Status = "success"
	// StatusError: the request failed, or part of it did; data.errors
	// says what to fix and the connection stays open.
	StatusError Status = "error"
)

// Reply is the one answer to each request:
// {"action":"reply","request_id":…,"status":…,"data":{…}}. Data is one of
// SubscriptionData (subscribe, unsubscribe), RefreshData, PongData or
// ErrorData; a client reading replies may decode every data into
// SubscriptionData, whose fields include ErrorData's.
type Reply struct {
	Action    Action    `json:"action"`
	RequestID RequestID `json:"request_id,omitempty"`
	Status    Status    `json:"status"`
	Data      any       `json:"data"`
}

// SubscriptionData answers subscribe and unsubscribe, successful or not.
type SubscriptionData struct {
	// Unsubscribed (unsubscribe only, always present there) lists the
	// bindings the request removed.
	Unsubscribed []string `json:"unsubscribed,omitzero"`
	// Subscribed lists every binding active on the connection, as the
	// client wrote them.
	Subscribed []string `json:"subscribed"`
	// Epoch names the stream's history.
	Epoch string `json:"epoch,omitempty"`
	// Sequence (live subscribe) is the stream position the new bindings
	// are live from: every later matching event will be delivered.
	Sequence *uint64 `json:"sequence,omitempty"`
	// Recovered and ReplayUntil answer a subscribe with since or
	// snapshot: whether every missed event is replayed, and the sequence
	// the replay ends at (live events follow).
	Recovered   *bool   `json:"recovered,omitempty"`
	ReplayUntil *uint64 `json:"replay_until,omitempty"`
	// Errors are messages a person can act on; Message repeats the first,
	// or with Recovered false says why.
	Errors  []string `json:"errors,omitempty"`
	Message string   `json:"message,omitempty"`
	// Snapshot is the account's state, for a subscribe with snapshot: true.
	Snapshot json.RawMessage `json:"snapshot,omitempty"`
	// RetryAfter (seconds) asks the client to wait before trying again:
	// after repeated auth failures, or when no turn to read history came
	// free.
	RetryAfter int `json:"retry_after,omitempty"`
}

// ErrorData answers a request that failed as a whole (other than a
// subscribe or unsubscribe, which answer with SubscriptionData).
type ErrorData struct {
	Errors     []string `json:"errors"`
	Message    string   `json:"message"`
	RetryAfter int      `json:"retry_after,omitempty"`
}

// Data is the data of the reply that answers with e.
func (e *Error) Data() ErrorData {
	return ErrorData{Errors: []string{e.Message}, Message: e.Message, RetryAfter: e.RetryAfter}
}

// RefreshData answers a refresh: when the connection's subscriptions now
// expire (RFC 3339, the earliest of their tokens), and the accounts the
// new token now covers.
type RefreshData struct {
	ExpiresAt string   `json:"expires_at"`
	Accounts  []string `json:"accounts"`
}

// PongData answers ping: Response is Kazoo's answer, Pong ours.
type PongData struct {
	Pong     bool   `json:"pong"`
	Response string `json:"response"`
}

// Pong returns the data of every successful ping's reply.
func Pong() PongData { return PongData{Pong: true, Response: "pong"} }

// Message is any message the gateway sends, for a client that reads them
// all with one decode: Action says which fields are set. A reply fills
// RequestID, Status and Data (decode Data into SubscriptionData, or the
// data type of the request); a notice fills Data (NoticeData); an event
// fills Event.
type Message struct {
	Action    Action    `json:"action"`
	RequestID RequestID `json:"request_id,omitempty"`
	Status    Status    `json:"status,omitempty"`
	Event
}
