package gateway

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/binding"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/event"
	"github.com/nats-io/nats-server/v2/server"
)

// connAccount is one connection's subscription to one account: its
// bindings there, and the high-water mark that keeps the account's events
// in stream order and each one delivered once, live or replayed.
type connAccount struct {
	conn    *conn
	feed    *feed
	account string
	subs    []*sub // in subscribe order; owned by the connection's reader

	// The token with the latest expiry that subscribed here or refreshed
	// it; owned by the connection's reader.
	tokenAccount string
	expires      time.Time
	lifetime     time.Duration

	mu sync.Mutex
	// delivered is the highest sequence queued for this account; nothing at
	// or below it is queued again.
	delivered uint64
	// catchUp is set while a subscribe joins history and live events: the
	// feed then holds this connection's live events in held.
	catchUp   bool
	held      []heldFrame
	heldBytes int

	// Owned by the feed's callback: the pick for the event being fanned out.
	seen uint64
	pick *sub
}

type heldFrame struct {
	seq   uint64
	frame []byte
}

// hold keeps a live event back until the catch-up ends. Held events count
// against the outbound limits like queued ones.
func (ca *connAccount) hold(seq uint64, frame []byte) {
	cfg := &ca.conn.srv.cfg
	if len(ca.held) >= cfg.OutboundMaxMessages || ca.heldBytes+len(frame) > cfg.OutboundMaxBytes {
		ca.conn.overflow()
		return
	}
	ca.held = append(ca.held, heldFrame{seq: seq, frame: frame})
	ca.heldBytes += len(frame)
}

// flushHeldLocked queues the held events before seq that the connection
// does not have yet, and returns how many it queued.
func (ca *connAccount) flushHeldLocked(seq uint64) int {
	n, i := 0, 0
	for ; i < len(ca.held) && ca.held[i].seq < seq; i++ {
		h := ca.held[i]
		ca.heldBytes -= len(h.frame)
		if h.seq > ca.delivered {
			ca.delivered = h.seq
			if ca.conn.enqueue(h.frame) {
				n++
			}
		}
	}
	clear(ca.held[:i])
	ca.held = ca.held[i:]
	return n
}

// beginCatchUp holds live events from now on and returns the high-water
// mark at that moment.
func (ca *connAccount) beginCatchUp() uint64 {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	ca.catchUp = true
	return ca.delivered
}

// endCatchUp queues what was held and lets live events through again.
func (ca *connAccount) endCatchUp() {
	ca.mu.Lock()
	n := ca.flushHeldLocked(math.MaxUint64)
	ca.held, ca.heldBytes, ca.catchUp = nil, 0, false
	ca.mu.Unlock()
	ca.conn.srv.m.eventsOut.Add(float64(n))
}

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
	case !auth.ValidAccountID(acc):
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
		if c.findSub(acc, sp.Binding) != nil || slices.ContainsFunc(adds, func(n newBinding) bool { return n.text == sp.Binding }) {
			continue // already active: subscribing again changes nothing
		}
		if c.nbindings+len(adds) >= s.cfg.MaxBindingsPerConn {
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
		for _, ca := range c.accounts {
			if ca.account == acc {
				ca.noteToken(claims)
				c.rescheduleTokens()
			}
		}
	}
	c.replySubscription(req.RequestID, subscriptionData{Errors: errs})
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
	if err := checkEventName(b); err != nil {
		return b, errBadRequest, err
	}
	return b, "", nil
}

// checkEventName refuses a binding whose event-name segment names no event
// of its family, which would silently never match.
func checkEventName(b binding.Binding) error {
	segs := strings.Split(b.String(), ".")
	if len(segs) != binding.MaxSegments || segs[3] == "#" {
		return nil
	}
	fam, name := segs[1], segs[4]
	if name == "*" || name == "#" {
		return nil
	}
	var known []string
	for _, spec := range event.Catalogue() {
		if fam != "*" && string(spec.Family) != fam {
			continue
		}
		if spec.Name == name {
			return nil
		}
		if !slices.Contains(known, spec.Name) {
			known = append(known, spec.Name)
		}
	}
	what := fam + " event"
	if fam == "*" {
		what = "event"
	}
	return fmt.Errorf("binding %s: unknown %s %s (known: %s)", quoteShort(b.String()), what, quoteShort(name), strings.Join(known, ", "))
}

// joinAccount returns the connection's subscription to acc, creating it
// (counted against the account's connection limit) on first use. On
// failure it returns the error kind and a message for the client.
func (c *conn) joinAccount(acc string) (*connAccount, string, string) {
	for _, ca := range c.accounts {
		if ca.account == acc {
			return ca, "", ""
		}
	}
	s := c.srv
	if !s.reserveAccount(acc) {
		s.m.refuse(refuseConnsPerAccount)
		s.log.Info("subscribe refused: account connection limit", "account", acc, "limit", s.cfg.MaxConnsPerAccount)
		return nil, errLimit, fmt.Sprintf("too many connections subscribed to account %s (limit %d)", acc, s.cfg.MaxConnsPerAccount)
	}
	f, err := s.acquireFeed(c.ctx, acc)
	if err != nil {
		s.releaseAccount(acc)
		s.log.Error("cannot follow account events", "account", acc, "err", err)
		return nil, errInternal, fmt.Sprintf("events of account %s are unavailable right now; try again shortly", acc)
	}
	ca := &connAccount{conn: c, feed: f, account: acc}
	c.accounts = append(c.accounts, ca)
	return ca, "", ""
}

// addBindings puts new bindings live and answers the request. The reply is
// queued before any event of the new bindings: live events of the account
// are held from before the bindings enter the index until the reply (and,
// with since, the replay) is queued.
func (c *conn) addBindings(ca *connAccount, adds []newBinding, id json.RawMessage, errs []string, snapshot json.RawMessage) {
	f := ca.feed
	d0 := ca.beginCatchUp()
	resume := false
	for _, a := range adds {
		s := &sub{ca: ca, key: f.acquireKey(a.text, a.b), order: c.nextOrder}
		c.nextOrder++
		f.index.Add(a.b, s)
		ca.subs = append(ca.subs, s)
		resume = resume || a.since != nil
	}
	c.nbindings += len(adds)
	c.srv.m.subs.Add(float64(len(adds)))
	data := subscriptionData{Epoch: c.srv.epoch, Errors: errs, Snapshot: snapshot}
	if !resume {
		// Read after the bindings are in the index: every event after it
		// reaches them.
		last := f.last.Load()
		data.Sequence = &last
		c.replySubscription(id, data)
		ca.endCatchUp()
		return
	}
	c.resume(ca, adds, d0, id, data)
	ca.endCatchUp()
}

// resume answers a subscribe with since and replays, in stream order, the
// stored events after each binding's cursor up to a head H; live events
// after H were held meanwhile and follow. H is the last event of the
// account the feed has seen: everything after it reaches the new bindings
// through the feed, so no stream request is needed to find it. The new
// bindings, one per add, are the last of ca.subs.
func (c *conn) resume(ca *connAccount, adds []newBinding, d0 uint64, id json.RawMessage, data subscriptionData) {
	s := c.srv
	head := ca.feed.last.Load()
	// A cursor ahead of the feed is one this node has not seen yet (another
	// gateway handed it out): only then is the stream itself asked.
	for _, a := range adds {
		if a.since != nil && a.since.Sequence > head && (a.since.Epoch == "" || a.since.Epoch == s.epoch) {
			bounds, err := c.streamBounds()
			if err != nil {
				c.failResume(ca, "read stream bounds", err)
				return
			}
			head = max(head, bounds.Last)
			break
		}
	}
	// start[i] is what ca.subs[i] already has: the replay sends it only
	// events after that. Bindings active before have everything up to the
	// high-water mark (later ones are held); new ones without since, or
	// whose cursor cannot be honoured, start live at the head.
	start := make([]uint64, len(ca.subs))
	for i := range start {
		start[i] = d0
	}
	recovered := true
	var why string
	refuse := func(reason string) {
		recovered = false
		if why == "" {
			why = reason
		}
	}
	first := len(ca.subs) - len(adds) // ca.subs[first:] are the new bindings
	from := head
	for i := range adds {
		at := first + i
		start[at] = head
		cur := adds[i].since
		switch {
		case cur == nil:
		case cur.Epoch != "" && cur.Epoch != s.epoch:
			refuse(fmt.Sprintf("epoch %s is not this history's (%s): it was reset; re-sync from a snapshot", quoteShort(cur.Epoch), s.epoch))
		case cur.Sequence > head:
			refuse(fmt.Sprintf("sequence %d is beyond the end of history (%d); re-sync from a snapshot", cur.Sequence, head))
		case cur.Sequence < d0:
			refuse(fmt.Sprintf("this connection already received events of account %s up to sequence %d and cannot go back to %d; resume all bindings of an account in one subscribe", ca.account, d0, cur.Sequence))
		default:
			start[at] = cur.Sequence
			from = min(from, cur.Sequence)
		}
	}

	var r *bus.Reader
	turn := replayTurn{c: c}
	if from < head {
		if !turn.take() {
			return // closing
		}
		defer turn.give()
		var replayed []binding.Binding
		for i, sb := range ca.subs[first:] {
			if start[first+i] < head {
				replayed = append(replayed, sb.key.b)
			}
		}
		var err error
		if r, err = c.openReplay(replayFilters(ca.account, replayed), from, head); err != nil {
			if !c.isClosing() {
				c.failResume(ca, "open history", err)
			}
			return
		}
		defer r.Close()
		// Cursors history no longer reaches start live, like those above.
		if !r.Complete() {
			from = head
			for i := first; i < len(ca.subs); i++ {
				if start[i] >= head {
					continue
				}
				if start[i]+1 < r.Start() {
					refuse(fmt.Sprintf("history no longer reaches back to sequence %d (the oldest stored is %d); re-sync from a snapshot", start[i]+1, r.Start()))
					start[i] = head
					continue
				}
				from = min(from, start[i])
			}
		}
	}
	outcome := replayRecovered
	if !recovered {
		outcome = replayPartial
	}
	s.m.replays.WithLabelValues(outcome).Inc()
	data.Recovered, data.ReplayUntil, data.Message = &recovered, &head, why
	c.replySubscription(id, data)
	if from >= head {
		return
	}
	n := 0
	err := r.Run(c.ctx, func(m bus.Message) error {
		var pick *sub
		for i, sb := range ca.subs {
			if start[i] < m.Sequence && sb.key.b.Matches(m.Subject) {
				pick = sb
				break
			}
		}
		if pick == nil {
			return nil
		}
		d, ok := newDelivery(m)
		if !ok {
			s.m.error(errBadEvent)
			s.m.dropped.WithLabelValues(dropBadEvent).Inc()
			return nil
		}
		// Waiting for a client to read is no reason to hold a turn: clients
		// that do not read must not keep the others from their history.
		if err := c.waitRoom(c.ctx, turn.give); err != nil {
			return err
		}
		if !turn.take() {
			return errClosing
		}
		frame := encodeEventFrame(pick.key, s.epochJSON, &d)
		ca.mu.Lock()
		n += ca.flushHeldLocked(m.Sequence)
		if m.Sequence > ca.delivered {
			ca.delivered = m.Sequence
			if c.enqueue(frame) {
				n++
			}
		}
		ca.mu.Unlock()
		return nil
	})
	s.m.eventsOut.Add(float64(n))
	if err != nil && !c.isClosing() {
		c.failResume(ca, fmt.Sprintf("replay (%d, %d]", from, head), err)
	}
}

// failResume closes a connection whose resume could not read history. The
// history is still there, so it is not answered "recovered: false": the
// client reconnects and resumes with the same since.
func (c *conn) failResume(ca *connAccount, doing string, err error) {
	s := c.srv
	s.m.error(errInternal)
	s.m.replays.WithLabelValues(replayFailed).Inc()
	s.log.Error("resume failed: "+doing, "account", ca.account, "err", err)
	c.closeWith(1011, "reading history failed; reconnect and resume with since", false)
}

// replayOpenTimeout bounds how long a resume waits for a loaded stream to
// open its history before it asks its client to come back.
const replayOpenTimeout = 30 * time.Second

// openReplay opens a history reader; the bus retries while the stream is
// slow to answer (a restart that brings thousands of clients back at once).
func (c *conn) openReplay(filters []string, from, head uint64) (*bus.Reader, error) {
	ctx, cancel := context.WithTimeout(c.ctx, replayOpenTimeout)
	defer cancel()
	return c.srv.src.OpenReplay(ctx, filters, from, head)
}

// streamBounds reads the stream's bounds within a write timeout.
func (c *conn) streamBounds() (bus.Bounds, error) {
	ctx, cancel := context.WithTimeout(c.ctx, c.srv.cfg.WriteTimeout)
	defer cancel()
	return c.srv.src.Bounds(ctx)
}

// replayTurn is one resume's turn to read history: at most
// ReplayConcurrency are held at once.
type replayTurn struct {
	c    *conn
	held bool
}

// take waits for a turn, unless one is held already, and reports false if
// the connection closes first.
func (t *replayTurn) take() bool {
	if t.held {
		return true
	}
	s := t.c.srv
	select {
	case s.replayTurns <- struct{}{}:
	default:
		s.m.replaysWaiting.Inc()
		select {
		case s.replayTurns <- struct{}{}:
			s.m.replaysWaiting.Dec()
		case <-t.c.ctx.Done():
			s.m.replaysWaiting.Dec()
			return false
		}
	}
	t.held = true
	return true
}

// give hands the turn back, if held.
func (t *replayTurn) give() {
	if !t.held {
		return
	}
	t.held = false
	<-t.c.srv.replayTurns
}

// errClosing stops a replay for a connection that is closing.
var errClosing = errors.New("connection is closing")

// waitRoom blocks a replay until the outbound queue is at most half full,
// leaving the other half for live events of other accounts. blocking runs
// once, before the first wait.
func (c *conn) waitRoom(ctx context.Context, blocking func()) error {
	cfg := &c.srv.cfg
	for {
		c.mu.Lock()
		if c.closing {
			c.mu.Unlock()
			return errClosing
		}
		if len(c.queue) < cfg.OutboundMaxMessages/2 && c.queued < cfg.OutboundMaxBytes/2 {
			c.mu.Unlock()
			return nil
		}
		if c.room == nil {
			c.room = make(chan struct{})
		}
		room := c.room
		c.mu.Unlock()
		if blocking != nil {
			blocking()
			blocking = nil
		}
		select {
		case <-room:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// filterCovers reports whether every subject matching NATS filter b also
// matches filter a.
func filterCovers(a, b string) bool { return server.SubjectMatchesFilter(b, a) }

// replayFilters returns bus filters covering every binding in bs. A
// JetStream consumer refuses overlapping filters, so filters covered by
// another are dropped, and when some still overlap the whole account is
// read and matched here.
func replayFilters(account string, bs []binding.Binding) []string {
	var fs []string
	for _, b := range bs {
		if !slices.Contains(fs, b.BusFilter()) {
			fs = append(fs, b.BusFilter())
		}
	}
	var kept []string
	for i, f := range fs {
		covered := false
		for j, g := range fs {
			if i != j && filterCovers(g, f) && (!filterCovers(f, g) || j < i) {
				covered = true
				break
			}
		}
		if !covered {
			kept = append(kept, f)
		}
	}
	for i := range kept {
		for j := i + 1; j < len(kept); j++ {
			if server.SubjectsCollide(kept[i], kept[j]) {
				return []string{binding.AccountFilter(account)}
			}
		}
	}
	return kept
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
	if acc != "" && !auth.ValidAccountID(acc) {
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
		for _, sb := range c.subsNamed(acc, sp.Binding) {
			c.removeSub(sb)
			removed = append(removed, sp.Binding)
		}
	}
	c.accounts = slices.DeleteFunc(c.accounts, func(ca *connAccount) bool {
		if len(ca.subs) > 0 {
			return false
		}
		c.dropAccount(ca)
		return true
	})
	c.rescheduleTokens()
	reply(removed, errs, 0)
}

// findSub returns the connection's binding written as text on account acc,
// or nil.
func (c *conn) findSub(acc, text string) *sub {
	for _, ca := range c.accounts {
		if ca.account != acc {
			continue
		}
		for _, sb := range ca.subs {
			if sb.key.text == text {
				return sb
			}
		}
	}
	return nil
}

// subsNamed returns the connection's bindings written as text: on account
// acc, or on any account when acc is empty.
func (c *conn) subsNamed(acc, text string) []*sub {
	var out []*sub
	for _, ca := range c.accounts {
		if acc != "" && ca.account != acc && binding.IsShort(text) {
			continue
		}
		for _, sb := range ca.subs {
			if sb.key.text == text {
				out = append(out, sb)
			}
		}
	}
	return out
}

// removeSub takes one binding off the connection. Once it returns, no
// event is queued under that binding any more.
func (c *conn) removeSub(sb *sub) {
	ca := sb.ca
	ca.mu.Lock()
	sb.removed = true
	ca.mu.Unlock()
	ca.feed.index.Remove(sb.key.b, sb)
	ca.feed.releaseKey(sb.key)
	ca.subs = slices.DeleteFunc(ca.subs, func(x *sub) bool { return x == sb })
	c.nbindings--
	c.srv.m.subs.Dec()
}

// dropAccount releases the connection's subscription to one account; the
// caller removes it from c.accounts.
func (c *conn) dropAccount(ca *connAccount) {
	for len(ca.subs) > 0 {
		c.removeSub(ca.subs[len(ca.subs)-1])
	}
	c.srv.releaseAccount(ca.account)
	c.srv.releaseFeed(ca.feed)
}

// subscribed lists the connection's active bindings in subscribe order.
func (c *conn) subscribed() []string {
	subs := c.subsInOrder()
	out := make([]string, len(subs))
	for i, sb := range subs {
		out[i] = sb.key.text
	}
	return out
}

// subsInOrder returns the connection's active bindings in subscribe order.
func (c *conn) subsInOrder() []*sub {
	subs := make([]*sub, 0, c.nbindings)
	for _, ca := range c.accounts {
		subs = append(subs, ca.subs...)
	}
	slices.SortFunc(subs, func(a, b *sub) int { return cmp.Compare(a.order, b.order) })
	return subs
}

// acquireFeed returns the running feed of an account, starting it for the
// first subscriber; releaseFeed gives it back.
func (s *Server) acquireFeed(ctx context.Context, account string) (*feed, error) {
	s.mu.Lock()
	f := s.feeds[account]
	if f == nil {
		f = newFeed(s, account)
		s.feeds[account] = f
		f.refs = 1
		s.mu.Unlock()
		f.start()
	} else {
		f.refs++
		s.mu.Unlock()
	}
	select {
	case <-f.ready:
	case <-ctx.Done():
		s.releaseFeed(f)
		return nil, ctx.Err()
	}
	if f.err != nil {
		s.releaseFeed(f)
		return nil, f.err
	}
	return f, nil
}

// start follows the account's events from the current end of the stream.
func (f *feed) start() {
	defer close(f.ready)
	s := f.srv
	ctx, cancel := context.WithTimeout(s.ctx, s.cfg.WriteTimeout)
	defer cancel()
	fl, after, err := s.src.FollowNew(ctx, []string{binding.AccountFilter(f.account)}, f.onMessage)
	if err != nil {
		f.err = fmt.Errorf("follow account %s: %w", f.account, err)
		s.mu.Lock()
		if s.feeds[f.account] == f {
			delete(s.feeds, f.account) // let the next subscriber try again
		}
		s.mu.Unlock()
		return
	}
	// Events may already have arrived; never move last backwards.
	f.last.CompareAndSwap(0, after)
	f.follower = fl
}

func (s *Server) releaseFeed(f *feed) {
	s.mu.Lock()
	f.refs--
	stop := f.refs == 0
	if stop && s.feeds[f.account] == f {
		delete(s.feeds, f.account)
	}
	s.mu.Unlock()
	if stop {
		<-f.ready
		if f.follower != nil {
			f.follower.Stop()
		}
	}
}

// acquireKey returns the feed's shared key for a binding written as text,
// which means b on the feed's account.
func (f *feed) acquireKey(text string, b binding.Binding) *bindingKey {
	f.mu.Lock()
	defer f.mu.Unlock()
	k := f.keys[text]
	if k == nil {
		k = &bindingKey{text: text, b: b}
		f.keys[text] = k
	}
	k.refs++
	return k
}

func (f *feed) releaseKey(k *bindingKey) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if k.refs--; k.refs == 0 {
		delete(f.keys, k.text)
	}
}
