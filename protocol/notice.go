package protocol

// Notice warns a client before a planned close, so it reconnects on its
// own terms: {"action":"notice","data":{"reason":…,"message":…}}.
type Notice struct {
	Action Action     `json:"action"`
	Data   NoticeData `json:"data"`
}

// NoticeReason says why the connection will close.
type NoticeReason string

// The reasons of a notice.
const (
	// NoticeShutdown: the gateway is shutting down; close 1001 follows.
	NoticeShutdown NoticeReason = "shutdown"
	// NoticeTokenExpiring: the token of AccountID expires at ExpiresAt;
	// send a refresh with a new one, or close 4001 follows at expiry.
	NoticeTokenExpiring NoticeReason = "token_expiring"
)

// NoticeData is the data of a notice.
type NoticeData struct {
	Reason  NoticeReason `json:"reason"`
	Message string       `json:"message"`
	// With reason token_expiring: the account of the expiring token and
	// when it expires (RFC 3339).
	AccountID string `json:"account_id,omitempty"`
	ExpiresAt string `json:"expires_at,omitempty"`
}

// ShutdownNotice returns the notice a gateway sends every connection
// before it shuts down.
func ShutdownNotice() Notice {
	return Notice{Action: NoticeAction, Data: NoticeData{
		Reason:  NoticeShutdown,
		Message: "the gateway is shutting down: reconnect, and resume with since to miss nothing",
	}}
}
