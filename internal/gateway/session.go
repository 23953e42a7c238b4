package gateway

import (
	"fmt"
	"time"

	"github.com/ccevents/ccevents/internal/auth"
)

// A connection is authenticated once, as Kazoo's are: the last token a
// request carried that verified is the connection's own, and later
// requests may leave auth_token out. Every token a request does carry is
// checked, for what it may see too, and replaces the connection's token
// once it verifies; the connection's token is refused once it expires, and
// subscriptions still end with the tokens that made them (tokens.go).

// authFailedPrefix begins every message about a token that was checked and
// refused: Kazoo's own words, on which monster-ui logs in again.
const authFailedPrefix = "failed to authenticate token: "

// errTokenRequired answers a request that needs a token on a connection
// that has none yet.
var errTokenRequired = &tokenError{msg: "auth_token is required (once per connection): get one with PUT /v2/api_auth"}

// authenticate returns who a request acts as: the token it carries, or
// without one the connection's token while it has not expired.
func (c *conn) authenticate(token string) (auth.Claims, *tokenError) {
	if token != "" {
		return c.verifyToken(token)
	}
	if c.session.AccountID == "" {
		return auth.Claims{}, errTokenRequired
	}
	if !time.Now().Before(c.session.ExpiresAt) {
		return auth.Claims{}, &tokenError{msg: fmt.Sprintf(authFailedPrefix+"the auth_token this connection authenticated with expired at %s; send a new one in auth_token (PUT /v2/api_auth)",
			c.session.ExpiresAt.UTC().Format(time.RFC3339))}
	}
	return c.session, nil
}
