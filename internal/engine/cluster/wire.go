package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ccevents/ccevents/internal/engine"
)

// This file is the wire between a Router and the engine node that owns an
// account: a command is one NATS request on the account's command subject,
// answered by one reply, or by several parts when the reply is larger than
// the server's max_payload.

// CommandSubject is the NATS subject the engine node running an account
// answers that account's commands on.
func CommandSubject(accountID string) string { return commandPrefix + accountID + ".cmd" }

const (
	commandPrefix = "ccevents.engine."
	// commandQueue makes every request reach one responder, so a command
	// runs at most once even while two nodes briefly both listen.
	commandQueue = "ccevents-engine"
	// partHeader numbers the parts of a reply split to fit max_payload ("2/5").
	partHeader = "Ccevents-Part"
	// maxInFlight bounds the commands one node runs for remote callers at
	// once; more wait in the subscription.
	maxInFlight = 1024
	// maxCommandTimeout caps what a remote caller may ask a node to spend.
	maxCommandTimeout = time.Minute
)

// request is one command on the wire: Op is the command's name
// (engine.Commands); ID, Other, Value and Body its request as the command
// encodes it (engine.AnyCommand.EncodeArgs): its engine.Slots and the
// JSON of the rest.
type request struct {
	Op        string          `json:"op"`
	AccountID string          `json:"account_id"`
	ID        string          `json:"id,omitempty"`
	Other     string          `json:"other,omitempty"`
	Value     string          `json:"value,omitempty"`
	Body      json.RawMessage `json:"body,omitempty"`
	TimeoutMS int64           `json:"timeout_ms,omitempty"`
}

type wireError struct {
	Kind    engine.Kind `json:"kind"`
	Message string      `json:"message"`
	Moved   bool        `json:"moved,omitempty"`
}

type reply struct {
	Result json.RawMessage `json:"result,omitempty"`
	Error  *wireError      `json:"error,omitempty"`
}

// answer runs one command that came over the wire on e and returns the
// JSON of its reply.
func answer(ctx context.Context, e *engine.Engine, req request) (json.RawMessage, error) {
	cmd, err := engine.CommandNamed(req.Op)
	if err != nil {
		return nil, err
	}
	args, err := cmd.DecodeArgs(engine.Slots{ID: req.ID, Other: req.Other, Value: req.Value}, func(v any) error {
		if len(req.Body) > 0 && json.Unmarshal(req.Body, v) != nil {
			return &engine.Error{Kind: engine.KindInvalid, Message: "the command's arguments could not be read"}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	v, err := e.Serve(ctx, req.AccountID, cmd, args)
	if err != nil {
		return nil, err
	}
	return cmd.EncodeReply(v)
}

// responder answers commands from Routers on other processes.
type responder struct {
	e     *engine.Engine
	nc    *nats.Conn
	log   *slog.Logger
	ctx   context.Context // ends when the node closes
	slots chan struct{}
	wg    sync.WaitGroup
	// chunk is the largest reply part; zero uses the server's max_payload.
	chunk int
}

func newResponder(ctx context.Context, e *engine.Engine, nc *nats.Conn, log *slog.Logger, chunk int) *responder {
	return &responder{e: e, nc: nc, log: log, ctx: ctx, slots: make(chan struct{}, maxInFlight), chunk: chunk}
}

// listen answers commands on subject (an account's, or every account's).
func (r *responder) listen(subject string) (*nats.Subscription, error) {
	sub, err := r.nc.QueueSubscribe(subject, commandQueue, r.onMsg)
	if err != nil {
		return nil, fmt.Errorf("listen for engine commands on %s: %w", subject, err)
	}
	return sub, nil
}

func (r *responder) onMsg(m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	// Commands wait for their events to be stored, so each runs on its
	// own; the slots bound how many, and back-pressure the subscription.
	select {
	case r.slots <- struct{}{}:
	case <-r.ctx.Done():
		return
	}
	r.wg.Add(1)
	go func() {
		defer func() {
			<-r.slots
			r.wg.Done()
		}()
		r.handle(m)
	}()
}

func (r *responder) handle(m *nats.Msg) {
	var req request
	var rep reply
	if err := json.Unmarshal(m.Data, &req); err != nil || m.Subject != CommandSubject(req.AccountID) {
		rep.Error = &wireError{Kind: engine.KindInvalid, Message: "the engine could not read the command; the sending node may need an upgrade"}
		r.send(m, rep)
		return
	}
	timeout := time.Duration(req.TimeoutMS) * time.Millisecond
	if timeout <= 0 || timeout > maxCommandTimeout {
		timeout = maxCommandTimeout
	}
	ctx, cancel := context.WithTimeout(r.ctx, timeout)
	defer cancel()
	result, err := answer(ctx, r.e, req)
	if err != nil {
		rep.Error = toWire(err)
	}
	rep.Result = result
	r.send(m, rep)
}

// toWire turns what a command returned into the error a Router passes on.
func toWire(err error) *wireError {
	var ee *engine.Error
	if errors.As(err, &ee) {
		return &wireError{Kind: ee.Kind, Message: ee.Message, Moved: ee.Moved}
	}
	// Only the context ends a command with a plain error: the node is
	// closing or the caller's time is up. The command may have run.
	return &wireError{Kind: engine.KindUnavailable, Message: "the engine node did not finish the command in time; check the account's state before trying again"}
}

// send publishes a reply, in parts when it does not fit one message.
func (r *responder) send(m *nats.Msg, rep reply) {
	data, _ := json.Marshal(rep) // raw JSON and plain structs: cannot fail
	max := r.chunk
	if max <= 0 {
		// Headers and protocol overhead fit in what is left.
		max = int(r.nc.MaxPayload()) - 1024
	}
	if len(data) <= max {
		if err := m.Respond(data); err != nil {
			r.log.Warn("send engine reply", "err", err)
		}
		return
	}
	n := (len(data) + max - 1) / max
	for i := 0; i < n; i++ {
		part := nats.NewMsg(m.Reply)
		part.Header.Set(partHeader, strconv.Itoa(i+1)+"/"+strconv.Itoa(n))
		part.Data = data[i*max : min((i+1)*max, len(data))]
		if err := r.nc.PublishMsg(part); err != nil {
			r.log.Warn("send engine reply", "part", i+1, "of", n, "err", err)
			return
		}
	}
}

// wait waits for the commands in progress to finish.
func (r *responder) wait() { r.wg.Wait() }

// errNoOwner means no engine node listens for the account right now.
var errNoOwner = errors.New("no engine node runs the account")

// roundTrip sends one request and collects its reply. It returns
// errNoOwner when nobody listens on the account's subject.
func roundTrip(ctx context.Context, nc *nats.Conn, req request) (reply, error) {
	var rep reply
	data, _ := json.Marshal(req) // plain struct: cannot fail
	inbox := nc.NewInbox()
	sub, err := nc.SubscribeSync(inbox)
	if err != nil {
		return rep, fmt.Errorf("subscribe for the reply: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	msg := nats.NewMsg(CommandSubject(req.AccountID))
	msg.Reply = inbox
	msg.Data = data
	if err := nc.PublishMsg(msg); err != nil {
		return rep, fmt.Errorf("send command: %w", err)
	}
	var buf []byte
	for want, got := 0, 0; ; {
		m, err := sub.NextMsgWithContext(ctx)
		if errors.Is(err, nats.ErrNoResponders) {
			return rep, errNoOwner
		}
		if err != nil {
			return rep, fmt.Errorf("wait for the reply: %w", err)
		}
		p := m.Header.Get(partHeader)
		if p == "" {
			buf = m.Data
			break
		}
		i, n, ok := parsePart(p)
		if !ok || i != got+1 || (want != 0 && n != want) {
			return rep, fmt.Errorf("reply part %q out of order", p)
		}
		want, got = n, i
		buf = append(buf, m.Data...)
		if got == want {
			break
		}
	}
	if err := json.Unmarshal(buf, &rep); err != nil {
		return rep, fmt.Errorf("decode the reply: %w", err)
	}
	return rep, nil
}

func parsePart(s string) (i, n int, ok bool) {
	a, b, found := strings.Cut(s, "/")
	if !found {
		return 0, 0, false
	}
	i, err1 := strconv.Atoi(a)
	n, err2 := strconv.Atoi(b)
	return i, n, err1 == nil && err2 == nil && i >= 1 && i <= n
}
