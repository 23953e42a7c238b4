package gateway

import (
	"time"

	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/protocol"
)

// A connection is authenticated once, as Kazoo's are: the last token a
// request carried that verified is the connection's own, and later
// requests may leave auth_token out. Every token a request does carry is
// checked, for what it may see too, and replaces the connection's token
// once it verifies; the connection's token is refused once it expires, and
// subscriptions still end with the tokens that made them (tokens.go).

// errTokenRequired answers a request that needs a token on a connection
// that has none yet.
var errTokenRequired = &protocol.Error{Kind: protocol.ErrAuth, Message: "auth_token is required (once per connection): get one with PUT /v2/api_auth"}

// socketToken is as much of the connection's token as requests without
// one need: whose it is, and when it was issued and expires (JWT times are
// whole seconds). Kept small: every connection has one.
type socketToken struct {
	account         string
	issued, expires int64 // Unix seconds
}

func (t socketToken) claims() auth.Claims {
	return auth.Claims{AccountID: t.account, IssuedAt: time.Unix(t.issued, 0).UTC(), ExpiresAt: time.Unix(t.expires, 0).UTC()}
}

// adopt makes a token that verified the connection's own.
func (c *conn) adopt(claims auth.Claims) {
	v := &connView{token: socketToken{account: claims.AccountID, issued: claims.IssuedAt.Unix(), expires: claims.ExpiresAt.Unix()}}
	if old := c.view.Load(); old != nil {
		v.subs = old.subs // never modified: shared
	}
	c.view.Store(v)
}

// authenticate returns who a request acts as: the token it carries, or
// without one the connection's token while it has not expired.
func (c *conn) authenticate(token string) (auth.Claims, *protocol.Error) {
	if token != "" {
		return c.verifyToken(token)
	}
	v := c.view.Load()
	if v == nil || v.token.account == "" {
		return auth.Claims{}, errTokenRequired
	}
	claims := v.token.claims()
	if !c.srv.cfg.Now().Before(claims.ExpiresAt) {
		return auth.Claims{}, protocol.Errorf(protocol.ErrAuth, protocol.AuthFailedPrefix+"the auth_token this connection authenticated with expired at %s; send a new one in auth_token (PUT /v2/api_auth)",
			claims.ExpiresAt.Format(time.RFC3339))
	}
	return claims, nil
}
