package gateway

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"time"

	"github.com/ccevents/ccevents/internal/binding"
	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/protocol"
)

// Requests, as the connection's reader hands them over one at a time:
// handle dispatches them; subscribe, unsubscribe and ping are here,
// refresh in tokens.go. A subscribe with since continues in resume.go.
// Package protocol defines what they and their replies look like.

// handle answers one client message.
func (c *conn) handle(msg []byte) {
	req, err := protocol.ParseRequest(msg)
	if err != nil {
		if errors.Is(err, protocol.ErrTooDeep) {
			c.srv.m.refuse(refuseNesting)
			c.srv.log.Debug("request refused: nested too deep", "remote", c.nc.RemoteAddr().String())
		}
		var perr *protocol.Error
		if !errors.As(err, &perr) { // ParseRequest's errors are all *protocol.Error
			perr = protocol.Errorf(protocol.ErrBadRequest, "the message could not be read")
		}
		c.replyError(nil, perr)
		return
	}
	switch req.Action {
	case protocol.Subscribe, protocol.Unsubscribe, protocol.Refresh:
		if !c.requests.Allow(time.Now()) {
			c.refuseRate(&req)
			return
		}
	}
	switch req.Action {
	case protocol.Subscribe:
		c.subscribe(&req)
	case protocol.Unsubscribe:
		c.unsubscribe(&req)
	case protocol.Refresh:
		c.refresh(&req)
	case protocol.Ping:
		c.answerPing(&req)
	case "":
		c.replyError(req.RequestID, protocol.Errorf(protocol.ErrBadRequest, `"action" is required: subscribe, unsubscribe, refresh or ping`))
	default:
		c.replyError(req.RequestID, protocol.Errorf(protocol.ErrBadRequest, "unknown action %s: use subscribe, unsubscribe, refresh or ping", quoteShort(string(req.Action))))
	}
	if req.Action == protocol.Subscribe || req.Action == protocol.Unsubscribe {
		c.publishView() // the bindings may have changed (a token that verified is in already)
	}
}

// answerPing answers ping. A token it carries is checked like any other,
// which authenticates the connection (Kazoo clients ping with one).
func (c *conn) answerPing(req *protocol.Request) {
	if req.AuthToken != "" {
		if _, terr := c.verifyToken(req.AuthToken); terr != nil {
			c.replyError(req.RequestID, terr)
			return
		}
	}
	c.sendReply(req.RequestID, protocol.StatusSuccess, protocol.Pong())
}

// refuseRate answers a request beyond the connection's request rate.
func (c *conn) refuseRate(req *protocol.Request) {
	c.srv.m.refuse(refuseSubscribeRate)
	c.srv.log.Debug("request refused: rate exceeded", "remote", c.nc.RemoteAddr().String(), "action", req.Action)
	err := protocol.Errorf(protocol.ErrLimit, "too many %s requests; at most %s per second", req.Action, strconv.FormatFloat(c.requests.Rate(), 'g', -1, 64))
	if req.Action == protocol.Refresh {
		c.replyError(req.RequestID, err)
		return
	}
	c.srv.m.error(err.Kind)
	data := protocol.SubscriptionData{Errors: []string{err.Message}}
	if req.Action == protocol.Unsubscribe {
		data.Unsubscribed = []string{}
	}
	c.replySubscription(req.RequestID, data)
}

// newBinding is a binding a subscribe request adds: as the client wrote
// it, and what that means.
type newBinding struct {
	text  string
	b     binding.Binding
	since *protocol.Position
}

// subscribe checks the token, the account and every binding, adds the valid
// new ones and answers; with since, it replays history before going live.
func (c *conn) subscribe(req *protocol.Request) {
	s := c.srv
	fail := func(err *protocol.Error) {
		s.m.error(err.Kind)
		c.replySubscription(req.RequestID, protocol.SubscriptionData{Errors: []string{err.Message}, RetryAfter: err.RetryAfter})
	}
	claims, terr := c.authenticate(req.AuthToken)
	if terr != nil {
		fail(terr)
		return
	}
	acc := req.Data.AccountID
	switch {
	case acc == "":
		fail(protocol.Errorf(protocol.ErrBadRequest, "data.account_id is required: the account whose events to receive"))
		return
	case !event.ValidAccountID(acc):
		fail(protocol.Errorf(protocol.ErrBadRequest, "data.account_id must be an account id (32 lowercase hex characters), got %s", quoteShort(acc)))
		return
	}
	ok, err := s.authz.MayAccess(c.ctx, claims.AccountID, acc)
	if err != nil {
		s.log.Error("access check failed", "token_account", claims.AccountID, "account", acc, "err", err)
		fail(protocol.Errorf(protocol.ErrInternal, "could not check access to account %s right now; try again", acc))
		return
	}
	if !ok {
		fail(protocol.Errorf(protocol.ErrForbidden, "this auth_token may not see account %s", acc))
		return
	}
	specs := req.Data.Specs()
	switch {
	case len(specs) == 0:
		fail(protocol.Errorf(protocol.ErrBadRequest, "data.binding or data.bindings is required, e.g. \"binding\": \"qubicle.queue.%s.*\"", acc))
		return
	case len(specs) > s.cfg.MaxBindingsPerConn:
		s.m.refuse(refuseBindings)
		fail(protocol.Errorf(protocol.ErrLimit, "a request may carry at most %d bindings, got %d", s.cfg.MaxBindingsPerConn, len(specs)))
		return
	}

	var errs []string
	var adds []newBinding
	for _, sp := range specs {
		b, err := parseBinding(sp.Binding, acc)
		if err != nil {
			s.m.error(err.Kind)
			errs = append(errs, err.Message)
			continue
		}
		if c.subscribed.find(acc, sp.Binding) != nil || slices.ContainsFunc(adds, func(n newBinding) bool { return n.text == sp.Binding }) {
			continue // already active: subscribing again changes nothing
		}
		if c.subscribed.n+len(adds) >= s.cfg.MaxBindingsPerConn {
			s.m.error(protocol.ErrLimit)
			s.m.refuse(refuseBindings)
			errs = append(errs, fmt.Sprintf("binding %s: too many bindings on this connection (limit %d); unsubscribe some first", quoteShort(sp.Binding), s.cfg.MaxBindingsPerConn))
			continue
		}
		since := sp.Since
		if since == nil {
			since = req.Data.Since
		}
		adds = append(adds, newBinding{text: sp.Binding, b: b, since: since})
	}
	var snapshot json.RawMessage
	if req.Data.Snapshot && len(adds) == 0 && len(errs) == 0 {
		fail(protocol.Errorf(protocol.ErrBadRequest, "snapshot: true comes with new bindings, and every binding of this request is already active; unsubscribe first, or read GET /v2/accounts/%s/qubicle_state", acc))
		return
	}
	if req.Data.Snapshot && len(adds) > 0 {
		var err *protocol.Error
		if snapshot, err = c.snapshotCursor(acc, adds); err != nil {
			s.m.error(err.Kind)
			c.replySubscription(req.RequestID, protocol.SubscriptionData{Errors: append(errs, err.Message)})
			return
		}
	}
	if len(adds) > 0 {
		ca, err := c.joinAccount(acc)
		if err == nil {
			ca.noteToken(claims)
			c.rescheduleTokens()
			c.addBindings(ca, adds, req.RequestID, errs, snapshot)
			return
		}
		s.m.error(err.Kind)
		errs = append(errs, err.Message)
	} else {
		// Subscribing again to what is active still brings a fresh token.
		if ca := c.subscribed.account(acc); ca != nil {
			ca.noteToken(claims)
			c.rescheduleTokens()
		}
	}
	c.replySubscription(req.RequestID, protocol.SubscriptionData{Errors: errs})
}

// addBindings puts new bindings live and answers the request. The reply is
// queued before any event of the new bindings: live events of the account
// are held from before the bindings enter the index until the reply (and,
// with since, the replay) is queued. A subscribe with since first waits
// for a turn to read history; one that gets none within ReplayWait is
// answered with an error and adds nothing.
func (c *conn) addBindings(ca *connAccount, adds []newBinding, id protocol.RequestID, errs []string, snapshot json.RawMessage) {
	s := c.srv
	resume := slices.ContainsFunc(adds, func(a newBinding) bool { return a.since != nil })
	turn := replayTurn{c: c}
	began := time.Now()
	if resume {
		if !turn.takeWithin(s.cfg.ReplayWait) {
			if !c.out.closing() {
				c.refuseReplayWait(ca, id, errs)
			}
			return
		}
		defer turn.give()
	}
	l := s.live
	d0 := ca.beginCatchUp()
	for _, a := range adds {
		ca.subs = append(ca.subs, l.bind(ca, a.text, a.b, c.subscribed.nextOrder))
		c.subscribed.nextOrder++
	}
	c.subscribed.n += len(adds)
	s.m.subs.Add(float64(len(adds)))
	data := protocol.SubscriptionData{Epoch: s.epoch, Errors: errs, Snapshot: snapshot}
	if !resume {
		// Read after the bindings are in the index: every event after it
		// reaches them.
		last := l.head.Load()
		data.Sequence = &last
		c.replySubscription(id, data)
		ca.endCatchUp()
		return
	}
	if c.resume(ca, adds, d0, id, data, &turn) {
		s.m.replayDuration.Observe(time.Since(began).Seconds())
	}
	ca.endCatchUp()
}

// snapshotCursor reads the account's snapshot and makes every new binding
// resume from the sequence it is consistent with, so the state in the reply
// and the events after it are exact.
func (c *conn) snapshotCursor(acc string, adds []newBinding) (json.RawMessage, *protocol.Error) {
	s := c.srv
	if s.cfg.Snapshots == nil {
		return nil, protocol.Errorf(protocol.ErrBadRequest, "snapshot: true is not served by this gateway (no engine is reachable from it); read GET /v2/accounts/%s/qubicle_state and subscribe with since", acc)
	}
	for _, a := range adds {
		if a.since != nil {
			return nil, protocol.Errorf(protocol.ErrBadRequest, "give since or snapshot: true, not both: the snapshot says where its events continue")
		}
	}
	ctx, cancel := context.WithTimeout(c.ctx, s.cfg.WriteTimeout)
	defer cancel()
	state, seq, epoch, err := s.cfg.Snapshots.Snapshot(ctx, acc)
	if err != nil {
		s.log.Error("subscribe: cannot read snapshot", "account", acc, "err", err)
		return nil, protocol.Errorf(protocol.ErrInternal, "could not read the snapshot of account %s right now: %v; try again", acc, err)
	}
	if epoch == "" {
		epoch = s.epoch
	}
	for i := range adds {
		adds[i].since = &protocol.Position{Sequence: seq, Epoch: epoch}
	}
	return state, nil
}

// parseBinding parses a binding of a subscribe for account acc. A short
// binding (qubicle.queue) takes acc as its account.
func parseBinding(text, acc string) (binding.Binding, *protocol.Error) {
	b, err := binding.ParseFor(text, acc)
	if err != nil {
		return b, &protocol.Error{Kind: protocol.ErrBadRequest, Message: err.Error()}
	}
	if b.Account() != acc {
		return b, protocol.Errorf(protocol.ErrForbidden, "binding %s must name account %s (data.account_id), got %s", quoteShort(text), acc, b.Account())
	}
	if err := b.CheckName(); err != nil {
		return b, &protocol.Error{Kind: protocol.ErrBadRequest, Message: err.Error()}
	}
	return b, nil
}

// unsubscribe removes bindings from the connection and answers with what
// it removed and what remains. A binding that is not subscribed is no
// error, as in Kazoo: there is nothing to remove. A short binding is
// removed from data.account_id, or from every account without one.
func (c *conn) unsubscribe(req *protocol.Request) {
	reply := func(removed, errs []string, retryAfter int) {
		if removed == nil {
			removed = []string{}
		}
		c.replySubscription(req.RequestID, protocol.SubscriptionData{Unsubscribed: removed, Errors: errs, RetryAfter: retryAfter})
	}
	fail := func(err *protocol.Error) {
		c.srv.m.error(err.Kind)
		reply(nil, []string{err.Message}, err.RetryAfter)
	}
	if req.AuthToken != "" {
		if _, terr := c.verifyToken(req.AuthToken); terr != nil {
			fail(terr)
			return
		}
	}
	specs := req.Data.Specs()
	if len(specs) == 0 {
		fail(protocol.Errorf(protocol.ErrBadRequest, "data.binding or data.bindings is required: the bindings to unsubscribe"))
		return
	}
	acc := req.Data.AccountID
	if acc != "" && !event.ValidAccountID(acc) {
		fail(protocol.Errorf(protocol.ErrBadRequest, "data.account_id must be an account id (32 lowercase hex characters), got %s", quoteShort(acc)))
		return
	}
	var removed, errs []string
	for _, sp := range specs {
		if err := binding.Check(sp.Binding); err != nil {
			c.srv.m.error(protocol.ErrBadRequest)
			errs = append(errs, err.Error())
			continue
		}
		for _, sb := range c.subscribed.named(acc, sp.Binding) {
			c.removeSub(sb)
			removed = append(removed, sp.Binding)
		}
	}
	c.subscribed.accounts = slices.DeleteFunc(c.subscribed.accounts, func(ca *connAccount) bool {
		if len(ca.subs) > 0 {
			return false
		}
		c.dropAccount(ca)
		return true
	})
	c.rescheduleTokens()
	reply(removed, errs, 0)
}
