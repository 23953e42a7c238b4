package client

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ccevents/ccevents/internal/backoff"
	"github.com/ccevents/ccevents/protocol"
)

// Handler handles one event of a subscription. The handlers of one Client
// run one at a time on a goroutine of the Client, in the order the gateway
// sent the events (stream order within an account). A handler that blocks
// holds up later events; if it falls far enough behind, the gateway closes
// the connection as a slow consumer and the client resumes without loss.
type Handler func(Event)

// Resync tells a subscription that the gateway could not replay everything
// it missed: its history no longer reaches back to the position, or it was
// reset (a new epoch). Events keep flowing after it; to be exact again,
// load a Snapshot and skip the events whose Sequence it already includes.
type Resync struct {
	AccountID string
	Binding   string
	// From is the position the subscription asked to resume after.
	From Position
	// Epoch is the epoch of the gateway's history now.
	Epoch string

	message string // the gateway's explanation
}

// Reason explains the resync for people.
func (r Resync) Reason() string {
	if r.message != "" {
		return r.message
	}
	if r.From.Epoch != "" && r.Epoch != "" && r.From.Epoch != r.Epoch {
		return fmt.Sprintf("event history was reset (epoch %s, was %s); events after sequence %d are gone", r.Epoch, r.From.Epoch, r.From.Sequence)
	}
	return fmt.Sprintf("event history no longer reaches back to sequence %d; some events were missed", r.From.Sequence)
}

// SubscribeOption changes how Subscribe subscribes.
type SubscribeOption func(*Subscription)

// Since resumes the subscription after p, a position saved from an earlier
// Event or Subscription: the gateway first replays every stored event after
// it, then continues live. If it cannot, the OnResync hook runs.
func Since(p Position) SubscribeOption {
	return func(s *Subscription) { s.received = p }
}

// OnResync sets the hook that runs, on the handler goroutine and before the
// next event, when the gateway reports that events were lost (see Resync).
// Without it, the client only logs a warning.
func OnResync(fn func(Resync)) SubscribeOption {
	return func(s *Subscription) { s.onResync = fn }
}

// Subscription is one binding of a Client with its handler. It survives
// reconnects: the client subscribes it again from its last position.
type Subscription struct {
	c        *Client
	account  string
	binding  string
	order    uint64 // creation order, kept across reconnects
	handler  Handler
	onResync func(Resync)

	mu       sync.Mutex
	received Position // the connection has delivered everything up to here
	handled  Position // last event whose handler returned
	active   bool     // the gateway has accepted it at least once

	gone atomic.Bool // unsubscribed: drop whatever is still queued
}

// AccountID returns the account the subscription is for.
func (s *Subscription) AccountID() string { return s.account }

// Binding returns the subscription's binding.
func (s *Subscription) Binding() string { return s.binding }

// Position returns the position of the last event whose handler returned
// (or, before any event, where the subscription started); save it to
// resume later with Since.
func (s *Subscription) Position() Position {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.handled
}

// LatestPosition returns the most advanced Position of subs, which must be
// of one account and one client. Resuming all of them from it (with one
// SubscribeBindings) misses nothing: a client hands an account's events to
// its handlers in stream order, so every event before it was handled.
func LatestPosition(subs ...*Subscription) Position {
	var p Position
	for _, s := range subs {
		sp := s.Position()
		if sp.Epoch != p.Epoch && !p.IsZero() {
			continue // positions of another history cannot be compared
		}
		if p.IsZero() || sp.Sequence > p.Sequence {
			p = sp
		}
	}
	return p
}

// Subscribe subscribes to binding (e.g. "qubicle.queue.ACCOUNT_ID.*") of
// accountID and calls h for each matching event. It returns once the gateway
// has accepted the binding; a refusal is a *ReplyError that says why. If the
// connection is down, Subscribe waits for it, until ctx ends.
//
// An event matching several bindings of the client is delivered once, to
// the binding subscribed first.
func (c *Client) Subscribe(ctx context.Context, accountID, binding string, h Handler, opts ...SubscribeOption) (*Subscription, error) {
	subs, err := c.SubscribeBindings(ctx, accountID, []string{binding}, h, opts...)
	if err != nil {
		return nil, err
	}
	return subs[0], nil
}

// SubscribeBindings subscribes to several bindings of one account in one
// request, all handled by h, and returns a Subscription for each. Use it to
// resume several bindings with Since: once events of an account flow on the
// connection, the gateway cannot go back before them, so bindings subscribed
// later with an older position get a Resync instead of a replay.
func (c *Client) SubscribeBindings(ctx context.Context, accountID string, bindings []string, h Handler, opts ...SubscribeOption) ([]*Subscription, error) {
	if h == nil {
		return nil, fmt.Errorf("subscribe %q: handler is nil", bindings)
	}
	if len(bindings) == 0 {
		return nil, errors.New("subscribe: give at least one binding")
	}
	subs := make([]*Subscription, len(bindings))
	c.mu.Lock()
	if c.stopped {
		c.mu.Unlock()
		return nil, ErrClosed
	}
	for i, b := range bindings {
		if _, dup := c.subs[b]; dup || slices.Contains(bindings[:i], b) {
			c.mu.Unlock()
			return nil, fmt.Errorf("subscribe %q: this client is already subscribed to it", b)
		}
	}
	for i, b := range bindings {
		s := &Subscription{c: c, account: accountID, binding: b, handler: h}
		for _, o := range opts {
			o(s)
		}
		s.handled = s.received
		c.nextOrder++
		s.order = c.nextOrder
		c.subs[b] = s // inactive until accepted: reconnects leave it to us
		subs[i] = s
	}
	c.mu.Unlock()

	for {
		cn, err := c.currentConn(ctx)
		if err != nil {
			c.forget(subs...)
			return nil, fmt.Errorf("subscribe %q: %w", bindings, err)
		}
		err = c.subscribeOn(ctx, cn, accountID, subs)
		if errors.Is(err, errConnLost) {
			continue // the next connection will be up soon
		}
		if err != nil {
			c.forget(subs...)
			// Bindings the gateway took (part of a refused request, or
			// accepted after ctx ended) must not stay on the connection.
			go c.unsubscribeQuietly(cn, subs)
			return nil, err
		}
		return subs, nil
	}
}

func (s *Subscription) isActive() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.active
}

func (c *Client) forget(subs ...*Subscription) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, s := range subs {
		s.gone.Store(true)
		if c.subs[s.binding] == s {
			delete(c.subs, s.binding)
		}
	}
}

// subscribeOn sends one subscribe for subs, all of one account, each
// resuming after its own position. A refusal with a renewable token is
// retried once with a fresh token, since the usual cause is a token that
// expired while disconnected.
func (c *Client) subscribeOn(ctx context.Context, cn *conn, account string, subs []*Subscription) error {
	since := make([]Position, len(subs))
	specs := make([]protocol.BindingSpec, len(subs))
	for i, s := range subs {
		s.mu.Lock()
		since[i] = s.received
		s.mu.Unlock()
		specs[i].Binding = s.binding
		if !since[i].IsZero() {
			specs[i].Since = &since[i]
		}
	}
	for try := 0; ; try++ {
		req := protocol.Request{Action: protocol.Subscribe, AuthToken: c.tokens.current().Value,
			Data: protocol.RequestData{AccountID: account, Bindings: specs}}
		r, err := cn.request(ctx, req, func(r reply) { c.accepted(subs, since, r) })
		if err != nil {
			return err
		}
		if r.status == protocol.StatusSuccess {
			return nil
		}
		if try == 0 && c.tokens.renewable() && !tookAny(r, subs) {
			if _, err := c.tokens.renew(ctx); err != nil {
				return err
			}
			continue
		}
		return replyError("subscribe", bindingsOf(subs), r)
	}
}

// tookAny reports whether the gateway accepted any of subs despite refusing
// the request; then it is not the token, and retrying would not help.
func tookAny(r reply, subs []*Subscription) bool {
	return slices.ContainsFunc(subs, func(s *Subscription) bool { return slices.Contains(r.data.Subscribed, s.binding) })
}

func bindingsOf(subs []*Subscription) string {
	b := make([]string, len(subs))
	for i, s := range subs {
		b[i] = s.binding
	}
	return strings.Join(b, " ")
}

// accepted runs on the read loop when the gateway answers a subscribe,
// before any event of its replay is read, and sets where each subscription
// stands on this connection.
func (c *Client) accepted(subs []*Subscription, since []Position, r reply) {
	d := r.data
	var sequence, replayUntil uint64
	if d.Sequence != nil {
		sequence = *d.Sequence
	}
	if d.ReplayUntil != nil {
		replayUntil = *d.ReplayUntil
	}
	for i, s := range subs {
		if r.status != protocol.StatusSuccess && !slices.Contains(d.Subscribed, s.binding) {
			continue
		}
		s.mu.Lock()
		s.active = true
		from := since[i]
		switch {
		case from.IsZero():
			// Live from the stream position the gateway names: remembering
			// it makes the first resume gapless even if no event matched.
			s.received = Position{Sequence: sequence, Epoch: d.Epoch}
			if s.handled.IsZero() {
				s.handled = s.received // nothing before it was for us
			}
		case from.Epoch != d.Epoch:
			// Another history: every event of it is new to us.
			s.received = Position{Epoch: d.Epoch}
		case from.Sequence > replayUntil:
			s.received = Position{Sequence: replayUntil, Epoch: d.Epoch}
		}
		s.mu.Unlock()
		if !from.IsZero() && d.Recovered != nil && !*d.Recovered {
			c.enqueue(item{sub: s, resync: &Resync{AccountID: s.account, Binding: s.binding, From: from, Epoch: d.Epoch, message: d.Message}})
		}
	}
}

// resubscribeAll puts every accepted subscription back on a new connection,
// one request per account so that the gateway replays each account's
// history once, every binding from its own position.
func (c *Client) resubscribeAll(ctx context.Context, cn *conn) error {
	c.mu.Lock()
	var subs []*Subscription
	for _, s := range c.subs {
		if s.isActive() && !s.gone.Load() {
			subs = append(subs, s)
		}
	}
	c.mu.Unlock()
	slices.SortFunc(subs, func(a, b *Subscription) int { return cmp.Compare(a.order, b.order) })
	var accounts []string
	for _, s := range subs {
		if !slices.Contains(accounts, s.account) {
			accounts = append(accounts, s.account)
		}
	}
	for _, acc := range accounts {
		group := slices.DeleteFunc(slices.Clone(subs), func(s *Subscription) bool { return s.account != acc })
		if err := c.subscribeOn(ctx, cn, acc, group); err != nil {
			return err
		}
	}
	return nil
}

// Unsubscribe ends the subscription: its handler is not called again once
// Unsubscribe returns, and a reconnect does not bring it back.
func (s *Subscription) Unsubscribe(ctx context.Context) error {
	c := s.c
	c.forget(s)
	c.mu.Lock()
	cn := c.conn
	c.mu.Unlock()
	if cn == nil {
		return nil // nothing on the wire; reconnects skip it
	}
	r, err := cn.request(ctx, s.unsubscribeMsg(), nil)
	if errors.Is(err, errConnLost) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("unsubscribe %q: %w", s.binding, err)
	}
	if r.status != protocol.StatusSuccess {
		return replyError("unsubscribe", s.binding, r)
	}
	return nil
}

func (s *Subscription) unsubscribeMsg() protocol.Request {
	return protocol.Request{Action: protocol.Unsubscribe, AuthToken: s.c.tokens.current().Value,
		Data: protocol.RequestData{AccountID: s.account, Binding: s.binding}}
}

func (c *Client) unsubscribeQuietly(cn *conn, subs []*Subscription) {
	ctx, cancel := context.WithTimeout(c.ctx, c.opts.RequestTimeout)
	defer cancel()
	for _, s := range subs {
		_, _ = cn.request(ctx, s.unsubscribeMsg(), nil)
	}
}

// route runs on the read loop for every frame that is not a reply; err is
// why the frame could not be decoded.
func (c *Client) route(f protocol.Message, err error) {
	if err != nil {
		// json.Unmarshal fills what it can, so a type error in an event's
		// own fields still shows the action.
		if f.Action == protocol.EventAction {
			c.log.Warn("dropping a malformed event frame", "err", err)
		}
		return
	}
	switch f.Action {
	case protocol.EventAction:
		ev := Event(f.Event)
		c.mu.Lock()
		s := c.subs[ev.SubscribedKey]
		if s != nil && s.fresh(ev) {
			// The gateway delivers an account's events in stream order,
			// each once: every binding of the account on this connection
			// has now had everything up to ev.
			for _, o := range c.subs {
				if o != s && o.account == s.account {
					o.advance(ev)
				}
			}
		} else {
			s = nil
		}
		c.mu.Unlock()
		if s != nil {
			c.enqueue(item{sub: s, ev: ev})
		}
	case protocol.NoticeAction:
		var n protocol.NoticeData
		_ = json.Unmarshal(f.Data, &n)
		c.log.Info("gateway notice", "reason", n.Reason)
		if n.Reason == protocol.NoticeTokenExpiring && c.tokens.renewable() {
			select {
			case c.renewNow <- struct{}{}:
			default:
			}
		}
	}
}

// fresh advances the subscription's resume position past ev and reports
// whether ev is new to it: an event at or before the position of the same
// history was already delivered (it can come again only if a resume
// overlapped) and is dropped, so the handler sees each event once.
func (s *Subscription) fresh(ev Event) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if ev.Epoch == s.received.Epoch && ev.Sequence <= s.received.Sequence {
		return false
	}
	s.received = ev.Position()
	return true
}

// advance moves an active subscription's resume position up to ev.
func (s *Subscription) advance(ev Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.active && ev.Epoch == s.received.Epoch && ev.Sequence > s.received.Sequence {
		s.received = ev.Position()
	}
}

func (c *Client) enqueue(it item) {
	select {
	case c.queue <- it:
	case <-c.ctx.Done():
	}
}

// dispatch calls handlers, one at a time, until the client stops.
func (c *Client) dispatch() {
	defer close(c.dispDone)
	for {
		select {
		case <-c.ctx.Done():
			return
		case it := <-c.queue:
			if c.ctx.Err() != nil {
				return
			}
			s := it.sub
			if s.gone.Load() {
				continue
			}
			if it.resync != nil {
				if s.onResync != nil {
					s.onResync(*it.resync)
				} else {
					c.log.Warn("subscription needs a resync", "binding", s.binding, "reason", it.resync.Reason())
				}
				continue
			}
			s.handler(it.ev)
			s.mu.Lock()
			s.handled = it.ev.Position()
			s.mu.Unlock()
		}
	}
}

// renewLoop replaces the token before it expires (or when the gateway warns
// that it is about to) and hands the new one to the live connection.
func (c *Client) renewLoop() {
	defer close(c.renewDone)
	retry := backoff.New(time.Second, 30*time.Second, backoff.EqualJitter)
	failed := false
	for {
		var timer <-chan time.Time // nil: a token without expiry waits for a notice
		if at := renewAt(c.tokens.current(), time.Now()); failed {
			timer = time.After(retry.Next())
		} else if !at.IsZero() {
			timer = time.After(max(time.Until(at), 0))
		}
		select {
		case <-timer:
		case <-c.renewNow:
		case <-c.ctx.Done():
			return
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.opts.RequestTimeout)
		tok, err := c.tokens.renew(ctx)
		if err != nil {
			cancel()
			if keyRefused(err) {
				c.stop(err)
				return
			}
			failed = true
			c.log.Warn("could not renew the auth token; retrying", "err", err)
			continue
		}
		failed = false
		retry.Reset()
		c.mu.Lock()
		cn := c.conn
		subscribed := slices.ContainsFunc(slices.Collect(maps.Values(c.subs)), (*Subscription).isActive)
		c.mu.Unlock()
		if cn != nil && subscribed {
			// A connection without the new token is closed by the gateway
			// when the old one expires; the reconnect then uses the new one.
			r, err := cn.request(ctx, protocol.Request{Action: protocol.Refresh, AuthToken: tok.Value}, nil)
			if err == nil && r.status != protocol.StatusSuccess {
				c.log.Warn("gateway refused the renewed token", "err", replyError("refresh", "", r))
			}
		}
		cancel()
	}
}
