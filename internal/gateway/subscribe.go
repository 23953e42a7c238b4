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
)

// Requests, as the connection's reader hands them over one at a time:
// handle dispatches them; subscribe and unsubscribe are here, refresh in
// tokens.go, ping in protocol.go. A subscribe with since continues in
// resume.go.

// handle answers one client message.
func (c *conn) handle(msg []byte) {
	req, err := parseRequest(msg)
	if err != nil {
		if errors.Is(err, errTooDeep) {
			c.srv.m.refuse(refuseNesting)
			c.srv.log.Debug("request refused: nested too deep", "remote", c.nc.RemoteAddr().String())
		}
		c.replyError(nil, errBadRequest, describeJSONError(err))
		return
	}
	switch req.Action {
	case "subscribe", "unsubscribe", "refresh":
		if !c.requests.Allow(time.Now()) {
			c.refuseRate(&req)
			return
		}
	}
	switch req.Action {
	case "subscribe":
		c.subscribe(&req)
	case "unsubscribe":
		c.unsubscribe(&req)
	case "refresh":
		c.refresh(&req)
	case "ping":
		c.answerPing(&req)
	case "":
		c.replyError(req.RequestID, errBadRequest, `"action" is required: subscribe, unsubscribe, refresh or ping`)
	default:
		c.replyError(req.RequestID, errBadRequest, fmt.Sprintf("unknown action %s: use subscribe, unsubscribe, refresh or ping", quoteShort(req.Action)))
	}
	if req.Action == "subscribe" || req.Action == "unsubscribe" {
		c.publishView() // the bindings may have changed (a token that verified is in already)
	}
}

// refuseRate answers a request beyond the connection's request rate.
func (c *conn) refuseRate(req *request) {
	c.srv.m.refuse(refuseSubscribeRate)
	c.srv.log.Debug("request refused: rate exceeded", "remote", c.nc.RemoteAddr().String(), "action", req.Action)
	msg := fmt.Sprintf("too many %s requests; at most %s per second", req.Action, strconv.FormatFloat(c.requests.Rate(), 'g', -1, 64))
	if req.Action == "refresh" {
		c.replyError(req.RequestID, errLimit, msg)
		return
	}
	c.srv.m.error(errLimit)
	data := subscriptionData{Errors: []string{msg}}
	if req.Action == "unsubscribe" {
		data.Unsubscribed = []string{}
	}
	c.replySubscription(req.RequestID, data)
}

// newBinding is a binding a subscribe request adds: as the client wrote
// it, and what that means.
type newBinding struct {
	text  string
	b     binding.Binding
	since *cursor
}

// subscribe checks the token, the account and every binding, adds the valid
// new ones and answers; with since, it replays history before going live.
func (c *conn) subscribe(req *request) {
	s := c.srv
	fail := func(kind, msg string) {
		s.m.error(kind)
		c.replySubscription(req.RequestID, subscriptionData{Errors: []string{msg}})
	}
	claims, terr := c.authenticate(req.AuthToken)
	if terr != nil {
		s.m.error(errAuth)
		c.replySubscription(req.RequestID, subscriptionData{Errors: []string{terr.msg}, RetryAfter: terr.retryAfter})
		return
	}
	acc := req.Data.AccountID
	switch {
	case acc == "":
		fail(errBadRequest, "data.account_id is required: the account whose events to receive")
		return
	case !event.ValidAccountID(acc):
		fail(errBadRequest, fmt.Sprintf("data.account_id must be an account id (32 lowercase hex characters), got %s", quoteShort(acc)))
		return
	}
	ok, err := s.authz.MayAccess(c.ctx, claims.AccountID, acc)
	if err != nil {
		s.log.Error("access check failed", "token_account", claims.AccountID, "account", acc, "err", err)
		fail(errInternal, fmt.Sprintf("could not check access to account %s right now; try again", acc))
		return
	}
	if !ok {
		fail(errForbidden, fmt.Sprintf("this auth_token may not see account %s", acc))
		return
	}
	specs := req.Data.specs()
	switch {
	case len(specs) == 0:
		fail(errBadRequest, "data.binding or data.bindings is required, e.g. \"binding\": \"qubicle.queue."+acc+".*\"")
		return
	case len(specs) > s.cfg.MaxBindingsPerConn:
		s.m.refuse(refuseBindings)
		fail(errLimit, fmt.Sprintf("a request may carry at most %d bindings, got %d", s.cfg.MaxBindingsPerConn, len(specs)))
		return
	}

	var errs []string
	var adds []newBinding
	for _, sp := range specs {
		b, kind, err := parseBinding(sp.Binding, acc)
		if err != nil {
			s.m.error(kind)
			errs = append(errs, err.Error())
			continue
		}
		if c.subscribed.find(acc, sp.Binding) != nil || slices.ContainsFunc(adds, func(n newBinding) bool { return n.text == sp.Binding }) {
			continue // already active: subscribing again changes nothing
		}
		if c.subscribed.n+len(adds) >= s.cfg.MaxBindingsPerConn {
			s.m.error(errLimit)
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
		fail(errBadRequest, "snapshot: true comes with new bindings, and every binding of this request is already active; unsubscribe first, or read GET /v2/accounts/"+acc+"/qubicle_state")
		return
	}
	if req.Data.Snapshot && len(adds) > 0 {
		var kind, msg string
		if snapshot, kind, msg = c.snapshotCursor(acc, adds); kind != "" {
			s.m.error(kind)
			c.replySubscription(req.RequestID, subscriptionData{Errors: append(errs, msg)})
			return
		}
	}
	if len(adds) > 0 {
		ca, kind, msg := c.joinAccount(acc)
		if ca != nil {
			ca.noteToken(claims)
			c.rescheduleTokens()
			c.addBindings(ca, adds, req.RequestID, errs, snapshot)
			return
		}
		s.m.error(kind)
		errs = append(errs, msg)
	} else {
		// Subscribing again to what is active still brings a fresh token.
		if ca := c.subscribed.account(acc); ca != nil {
			ca.noteToken(claims)
			c.rescheduleTokens()
		}
	}
	c.replySubscription(req.RequestID, subscriptionData{Errors: errs})
}

// addBindings puts new bindings live and answers the request. The reply is
// queued before any event of the new bindings: live events of the account
// are held from before the bindings enter the index until the reply (and,
// with since, the replay) is queued. A subscribe with since first waits
// for a turn to read history; one that gets none within ReplayWait is
// answered with an error and adds nothing.
func (c *conn) addBindings(ca *connAccount, adds []newBinding, id json.RawMessage, errs []string, snapshot json.RawMessage) {
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
	data := subscriptionData{Epoch: s.epoch, Errors: errs, Snapshot: snapshot}
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
// and the events after it are exact. On failure it returns the error kind
// and a message for the client.
func (c *conn) snapshotCursor(acc string, adds []newBinding) (json.RawMessage, string, string) {
	s := c.srv
	if s.cfg.Snapshots == nil {
		return nil, errBadRequest, "snapshot: true is not served by this gateway (no engine is reachable from it); read GET /v2/accounts/" + acc + "/qubicle_state and subscribe with since"
	}
	for _, a := range adds {
		if a.since != nil {
			return nil, errBadRequest, "give since or snapshot: true, not both: the snapshot says where its events continue"
		}
	}
	ctx, cancel := context.WithTimeout(c.ctx, s.cfg.WriteTimeout)
	defer cancel()
	state, seq, epoch, err := s.cfg.Snapshots.Snapshot(ctx, acc)
	if err != nil {
		s.log.Error("subscribe: cannot read snapshot", "account", acc, "err", err)
		return nil, errInternal, fmt.Sprintf("could not read the snapshot of account %s right now: %v; try again", acc, err)
	}
	if epoch == "" {
		epoch = s.epoch
	}
	for i := range adds {
		adds[i].since = &cursor{Sequence: seq, Epoch: epoch}
	}
	return state, "", ""
}

// parseBinding parses a binding of a subscribe for account acc, with an
// error for people and its metrics kind. A short binding (qubicle.queue)
// takes acc as its account.
func parseBinding(text, acc string) (binding.Binding, string, error) {
	b, err := binding.ParseFor(text, acc)
	if err != nil {
		return b, errBadRequest, err
	}
	if b.Account() != acc {
		return b, errForbidden, fmt.Errorf("binding %s must name account %s (data.account_id), got %s", quoteShort(text), acc, b.Account())
	}
	if err := b.CheckName(); err != nil {
		return b, errBadRequest, err
	}
	return b, "", nil
}

// unsubscribe removes bindings from the connection and answers with what
// it removed and what remains. A binding that is not subscribed is no
// error, as in Kazoo: there is nothing to remove. A short binding is
// removed from data.account_id, or from every account without one.
func (c *conn) unsubscribe(req *request) {
	reply := func(removed, errs []string, retryAfter int) {
		if removed == nil {
			removed = []string{}
		}
		c.replySubscription(req.RequestID, subscriptionData{Unsubscribed: removed, Errors: errs, RetryAfter: retryAfter})
	}
	if req.AuthToken != "" {
		if _, terr := c.verifyToken(req.AuthToken); terr != nil {
			c.srv.m.error(errAuth)
			reply(nil, []string{terr.msg}, terr.retryAfter)
			return
		}
	}
	specs := req.Data.specs()
	if len(specs) == 0 {
		c.srv.m.error(errBadRequest)
		reply(nil, []string{"data.binding or data.bindings is required: the bindings to unsubscribe"}, 0)
		return
	}
	acc := req.Data.AccountID
	if acc != "" && !event.ValidAccountID(acc) {
		c.srv.m.error(errBadRequest)
		reply(nil, []string{fmt.Sprintf("data.account_id must be an account id (32 lowercase hex characters), got %s", quoteShort(acc))}, 0)
		return
	}
	var removed, errs []string
	for _, sp := range specs {
		if err := binding.Check(sp.Binding); err != nil {
			c.srv.m.error(errBadRequest)
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
