package gateway

import (
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/protocol"
)

// A subscription lives no longer than the token that made it. Each
// connAccount remembers its token's expiry; the connection keeps one timer
// for the earliest of them, which first sends a token_expiring notice and
// then, unless a refresh or a new subscribe moved the expiry, closes the
// connection with 4001.

// verifyToken checks a token a request carries (never empty), applying
// the per-address back-off after repeated failures. A token that verifies
// becomes the connection's own (see authenticate). A token that does not
// is an error of kind auth.
func (c *conn) verifyToken(token string) (auth.Claims, *protocol.Error) {
	s := c.srv
	if ok, wait := s.authFails.Allow(c.ip); !ok {
		s.m.refuse(refuseAuthBackoff)
		s.log.Debug("token not checked: address waits after auth failures", "ip", c.ip, "wait", wait)
		secs := int(math.Ceil(wait.Seconds()))
		return auth.Claims{}, &protocol.Error{
			Kind:       protocol.ErrAuth,
			Message:    fmt.Sprintf("too many failed auth attempts from your address; try again in %d s", secs),
			RetryAfter: secs,
		}
	}
	claims, err := s.authz.Verify(token)
	switch {
	case errors.Is(err, auth.ErrTokenExpired), errors.Is(err, auth.ErrTokenInvalid):
		if wait := s.authFails.Failure(c.ip); wait > 0 {
			s.log.Info("address must wait after repeated auth failures", "ip", c.ip, "wait", wait)
		}
		// auth explains what is wrong with the token in words for people;
		// Kazoo's prefix comes first, as clients log in again on it.
		return auth.Claims{}, &protocol.Error{Kind: protocol.ErrAuth, Message: protocol.AuthFailedPrefix + err.Error()}
	case err != nil:
		return auth.Claims{}, &protocol.Error{Kind: protocol.ErrAuth, Message: "auth_token could not be verified: get a new one with PUT /v2/api_auth"}
	}
	s.authFails.Success(c.ip)
	c.adopt(claims)
	return claims, nil
}

// noteToken records that a token subscribed to (or refreshed) the account;
// the subscription lasts as long as the latest-expiring such token.
func (ca *connAccount) noteToken(claims auth.Claims) {
	if claims.ExpiresAt.IsZero() || !claims.ExpiresAt.After(ca.expires) {
		return
	}
	ca.tokenAccount = claims.AccountID
	ca.expires = claims.ExpiresAt
	ca.lifetime = claims.ExpiresAt.Sub(claims.IssuedAt)
}

// rescheduleTokens points the token timer at what is due next for the
// earliest-expiring subscription. The reader calls it whenever
// subscriptions or their tokens change.
func (c *conn) rescheduleTokens() {
	var first *connAccount
	for _, ca := range c.subscribed.accounts {
		if !ca.expires.IsZero() && (first == nil || ca.expires.Before(first.expires)) {
			first = ca
		}
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.out.closing() { // c.mu, then out.mu
		return
	}
	if first == nil {
		c.tokenExpires = time.Time{}
		if c.tokenTimer != nil {
			c.tokenTimer.Stop()
		}
		return
	}
	if !first.expires.Equal(c.tokenExpires) {
		lead := min(c.srv.cfg.TokenExpiryNotice, first.lifetime/10)
		c.tokenExpires = first.expires
		c.tokenAccount = first.tokenAccount
		c.noticeAt = first.expires.Add(-lead)
		c.noticeSent = false
	}
	c.armTokenTimerLocked(c.srv.cfg.Now())
}

// armTokenTimerLocked sets the timer for the notice, or once that is sent,
// for the expiry.
func (c *conn) armTokenTimerLocked(now time.Time) {
	next := c.tokenExpires
	if !c.noticeSent {
		next = c.noticeAt
	}
	d := next.Sub(now)
	if c.tokenTimer == nil {
		c.tokenTimer = c.srv.cfg.AfterFunc(d, c.tokenDue)
		return
	}
	c.tokenTimer.Reset(d)
}

// tokenDue runs on the token timer: it sends the notice or ends the
// connection, whichever is due. A firing made stale by a reschedule finds
// nothing due and sets the timer again.
func (c *conn) tokenDue() {
	now := c.srv.cfg.Now()
	c.mu.Lock()
	if c.out.closing() || c.tokenExpires.IsZero() { // c.mu, then out.mu
		c.mu.Unlock()
		return
	}
	if !now.Before(c.tokenExpires) {
		account := c.tokenAccount
		// Closed under c.mu: a refresh cannot move the expiry meanwhile.
		closed := c.closeLocked(protocol.CloseTokenExpired, protocol.ReasonTokenExpired, false) >= 0
		c.mu.Unlock()
		if closed {
			c.srv.m.refuse(refuseTokenExpired)
			c.srv.log.Debug("closing connection: token expired", "remote", c.nc.RemoteAddr().String(), "token_account", account)
		}
		return
	}
	var frame []byte
	if !c.noticeSent && !now.Before(c.noticeAt) {
		c.noticeSent = true
		expires := c.tokenExpires.UTC().Format(time.RFC3339)
		frame = jsonFrame(protocol.Notice{Action: protocol.NoticeAction, Data: protocol.NoticeData{
			Reason: protocol.NoticeTokenExpiring,
			Message: fmt.Sprintf(`the auth_token of account %s expires at %s: send {"action":"refresh","auth_token":"…"} with a new token of that account to keep your subscriptions`,
				c.tokenAccount, expires),
			AccountID: c.tokenAccount,
			ExpiresAt: expires,
		}})
	}
	c.armTokenTimerLocked(now)
	c.mu.Unlock()
	if frame != nil {
		c.enqueue(frame)
	}
}

// refresh replaces the token of the connection's subscriptions made with a
// token of the same account, so they outlive the old token.
func (c *conn) refresh(req *protocol.Request) {
	s := c.srv
	if req.AuthToken == "" {
		c.replyError(req.RequestID, protocol.Errorf(protocol.ErrAuth, "refresh needs the new token in auth_token: get one with PUT /v2/api_auth"))
		return
	}
	claims, terr := c.verifyToken(req.AuthToken)
	if terr != nil {
		c.replyError(req.RequestID, terr)
		return
	}
	if len(c.subscribed.accounts) == 0 {
		c.replyError(req.RequestID, protocol.Errorf(protocol.ErrBadRequest, "there is nothing to refresh: this connection has no subscriptions; subscribe with the new token"))
		return
	}
	var refreshed []string
	other := ""
	for _, ca := range c.subscribed.accounts {
		if ca.tokenAccount != claims.AccountID {
			other = ca.tokenAccount
			continue
		}
		// The account tree may have changed since the subscribe.
		ok, err := s.authz.MayAccess(c.ctx, claims.AccountID, ca.account)
		if err != nil {
			s.log.Error("access check failed", "token_account", claims.AccountID, "account", ca.account, "err", err)
			c.replyError(req.RequestID, protocol.Errorf(protocol.ErrInternal, "could not check access right now; try again"))
			return
		}
		if ok {
			ca.noteToken(claims)
			refreshed = append(refreshed, ca.account)
		}
	}
	if len(refreshed) == 0 {
		err := protocol.Errorf(protocol.ErrForbidden, "this auth_token of account %s may not see the accounts subscribed on this connection", claims.AccountID)
		if other != "" {
			err = protocol.Errorf(protocol.ErrForbidden, "this auth_token is of account %s, but the subscriptions on this connection were made with a token of account %s: refresh with a token of that account", claims.AccountID, other)
		}
		c.replyError(req.RequestID, err)
		return
	}
	c.rescheduleTokens()
	c.mu.Lock()
	expires := c.tokenExpires
	c.mu.Unlock()
	c.sendReply(req.RequestID, protocol.StatusSuccess, protocol.RefreshData{ExpiresAt: expires.UTC().Format(time.RFC3339), Accounts: refreshed})
}
