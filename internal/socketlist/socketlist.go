package socketlist

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus"
)

// Subject is where gateways answer listing requests. Every gateway
// subscribes (no queue group): each answers for its own sockets.
const Subject = "ccevents.gateway.sockets"

// Limits and defaults of a listing.
const (
	// DefaultPageSize is the page size when a request gives none.
	DefaultPageSize = 50
	// MaxPageSize bounds the sockets of one page.
	MaxPageSize = 500
	// DefaultTimeout bounds the whole wait for answers.
	DefaultTimeout = 2 * time.Second
	// DefaultStall ends the wait once no further gateway has answered for
	// this long after the last answer.
	DefaultStall = 250 * time.Millisecond
)

// Query asks for one account's sockets: AccountID's own and its
// descendants', in socket id order after StartKey, at most Limit; or, with
// SocketID, that one socket if it is among them.
type Query struct {
	AccountID string `json:"account_id"`
	SocketID  string `json:"socket_id,omitempty"`
	StartKey  string `json:"start_key,omitempty"`
	Limit     int    `json:"limit"`
}

// Socket is one websocket as the listing shows it. The field names are
// Kazoo's where Kazoo has the field.
type Socket struct {
	// ID identifies the socket across the cluster (32 hex characters);
	// ids sort in the order the sockets connected.
	ID string `json:"websocket_session_id"`
	// AccountID is the account of the socket's token, when the asker may
	// see it.
	AccountID string `json:"account_id,omitempty"`
	// Bindings lists the socket's bindings the asker may see, as the
	// client wrote them; Subscriptions the same with their accounts, which
	// short bindings (qubicle.queue) do not name.
	Bindings      []string       `json:"bindings"`
	Subscriptions []Subscription `json:"subscriptions"`
	// Source is the client's IP address.
	Source string `json:"source"`
	// Destination is the gateway holding the socket.
	Destination string `json:"destination"`
	// ConnectedAt (RFC 3339, UTC) and Timestamp (Kazoo's Gregorian
	// seconds) say since when the socket is connected.
	ConnectedAt string `json:"connected_at"`
	Timestamp   int64  `json:"timestamp"`
	// ExpiresAt (RFC 3339) is when the socket's access ends with its
	// token: when its subscriptions end (close 4001) if it has any, else
	// when its token expires.
	ExpiresAt string `json:"expires_at,omitempty"`
}

// Subscription is one binding of a socket on one account.
type Subscription struct {
	AccountID string `json:"account_id"`
	Binding   string `json:"binding"`
}

// Answer is one gateway's answer: its matching sockets in id order, at
// most the query's Limit and what fits in one NATS message; More says
// there were others after the last one.
type Answer struct {
	Gateway string   `json:"gateway"`
	Sockets []Socket `json:"sockets"`
	More    bool     `json:"more,omitempty"`
	// Error says why the gateway could not list its sockets.
	Error string `json:"error,omitempty"`
}

// Lister is a gateway: it lists its own sockets.
type Lister interface {
	Sockets(ctx context.Context, q Query) Answer
}

// answerTimeout bounds how long a gateway works on one answer; it is the
// gatherer's whole wait, after which nobody reads the answer.
const answerTimeout = DefaultTimeout

// Serve answers listing requests on Subject with l's sockets until ctx
// ends.
func Serve(ctx context.Context, nc *nats.Conn, l Lister, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	sub, err := nc.Subscribe(Subject, func(m *nats.Msg) {
		if m.Reply == "" {
			return
		}
		var a Answer
		var q Query
		if err := json.Unmarshal(m.Data, &q); err != nil {
			a.Error = "the listing request could not be read; the asking node may need an upgrade"
		} else {
			qctx, cancel := context.WithTimeout(ctx, answerTimeout)
			a = l.Sockets(qctx, q)
			cancel()
		}
		data := encodeWithin(a, int(nc.MaxPayload())-1024)
		if err := m.Respond(data); err != nil {
			log.Warn("answer a websocket listing", "err", err)
		}
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", Subject, err)
	}
	go func() {
		<-ctx.Done()
		_ = sub.Unsubscribe()
	}()
	return nil
}

// encodeWithin encodes a, halving its sockets (and setting More) until it
// fits in limit bytes; the first socket always stays, so paging always
// moves on. A socket is at most a few tens of KiB (bindings per connection
// are bounded), far below NATS's max_payload.
func encodeWithin(a Answer, limit int) []byte {
	data, _ := json.Marshal(a) // plain structs: cannot fail
	for len(data) > limit && len(a.Sockets) > 1 {
		a.Sockets, a.More = a.Sockets[:len(a.Sockets)/2], true
		data, _ = json.Marshal(a)
	}
	return data
}

// Gatherer asks every gateway and merges their answers; the REST API
// serves GET /v2/accounts/{ACCOUNT_ID}/websockets with it.
type Gatherer struct {
	nc      *nats.Conn
	timeout time.Duration
	stall   time.Duration
	log     *slog.Logger
	listed  *prometheus.CounterVec
}

// GathererConfig tunes a Gatherer; zero values take the defaults.
type GathererConfig struct {
	Timeout    time.Duration // DefaultTimeout
	Stall      time.Duration // DefaultStall
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Outcomes counted in ccevents_websocket_listings_total.
const (
	outcomeOK           = "ok"            // every gateway that answered in time is in the page
	outcomeNoGateway    = "no_gateway"    // no gateway runs: an empty page
	outcomeTimeout      = "timeout"       // no gateway answered within the timeout: 504
	outcomeGatewayError = "gateway_error" // a gateway could not list its sockets: 503
)

// NewGatherer returns a Gatherer asking over nc.
func NewGatherer(nc *nats.Conn, cfg GathererConfig) (*Gatherer, error) {
	g := &Gatherer{nc: nc, timeout: cfg.Timeout, stall: cfg.Stall, log: cfg.Logger}
	if g.timeout <= 0 {
		g.timeout = DefaultTimeout
	}
	if g.stall <= 0 {
		g.stall = DefaultStall
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	g.listed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ccevents_websocket_listings_total",
		Help: "Websocket listings the REST API gathered from the gateways, by outcome.",
	}, []string{"outcome"})
	reg := cfg.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	if err := reg.Register(g.listed); err != nil {
		return nil, fmt.Errorf("register websocket listing metrics: %w", err)
	}
	for _, o := range []string{outcomeOK, outcomeNoGateway, outcomeTimeout, outcomeGatewayError} {
		g.listed.WithLabelValues(o)
	}
	return g, nil
}

// Page is one page of sockets, merged from every gateway that answered.
type Page struct {
	Sockets []Socket
	// NextStartKey, when set, is the StartKey of the next page.
	NextStartKey string
	// Gateways names the gateways that answered, sorted.
	Gateways []string
}

// ErrNoAnswer means no gateway answered within the timeout, though some
// listen: they are overloaded or cut off from NATS.
var ErrNoAnswer = errors.New("no websocket gateway answered")

// GatewayError is a gateway that could not list its sockets.
type GatewayError struct {
	Gateway string
	Reason  string
}

func (e *GatewayError) Error() string {
	return fmt.Sprintf("gateway %s could not list its sockets: %s", e.Gateway, e.Reason)
}

// List asks every gateway for q and merges their answers into one page of
// at most q.Limit sockets. It waits until no further gateway has answered
// for the stall interval after the last answer, or for the timeout; a
// gateway that answers later is left out of this page (Page.Gateways names
// those that are in). With no gateway running at all, the page is empty.
func (g *Gatherer) List(ctx context.Context, q Query) (Page, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultPageSize
	}
	answers, err := g.gather(ctx, q)
	switch {
	case errors.Is(err, nats.ErrNoResponders):
		g.listed.WithLabelValues(outcomeNoGateway).Inc()
		return Page{Sockets: []Socket{}, Gateways: []string{}}, nil
	case errors.Is(err, ErrNoAnswer):
		g.listed.WithLabelValues(outcomeTimeout).Inc()
		g.log.Warn("no gateway answered a websocket listing in time", "timeout", g.timeout)
		return Page{}, fmt.Errorf("%w within %s; they may be overloaded or cut off from NATS, try again", err, g.timeout)
	case err != nil:
		return Page{}, err
	}
	for _, a := range answers {
		if a.Error != "" {
			g.listed.WithLabelValues(outcomeGatewayError).Inc()
			return Page{}, &GatewayError{Gateway: a.Gateway, Reason: a.Error}
		}
	}
	g.listed.WithLabelValues(outcomeOK).Inc()
	return merge(answers, q.Limit), nil
}

// gather sends q and collects answers until they stall or time runs out.
func (g *Gatherer) gather(ctx context.Context, q Query) ([]Answer, error) {
	data, _ := json.Marshal(q) // plain struct: cannot fail
	inbox := g.nc.NewInbox()
	sub, err := g.nc.SubscribeSync(inbox)
	if err != nil {
		return nil, fmt.Errorf("subscribe for listing answers: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	msg := nats.NewMsg(Subject)
	msg.Reply, msg.Data = inbox, data
	if err := g.nc.PublishMsg(msg); err != nil {
		return nil, fmt.Errorf("ask the gateways for their sockets: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	// next waits for an answer until the deadline, or the timeout first.
	next := func(deadline time.Time) (*nats.Msg, error) {
		wait, cancel := context.WithDeadline(ctx, deadline)
		defer cancel()
		return sub.NextMsgWithContext(wait)
	}
	var answers []Answer
	deadline, _ := ctx.Deadline()
	for {
		m, err := next(deadline)
		switch {
		case errors.Is(err, nats.ErrNoResponders):
			return nil, err
		case errors.Is(err, context.DeadlineExceeded) && len(answers) > 0:
			return answers, nil // stalled, or out of time: what came is the page
		case errors.Is(err, context.DeadlineExceeded):
			return nil, ErrNoAnswer
		case err != nil:
			return nil, fmt.Errorf("wait for listing answers: %w", err)
		}
		var a Answer
		if err := json.Unmarshal(m.Data, &a); err != nil {
			g.log.Warn("unreadable websocket listing answer", "err", err)
			continue
		}
		answers = append(answers, a)
		if q.SocketID != "" && len(a.Sockets) > 0 {
			return answers, nil // ids are unique: nobody else has it
		}
		deadline = time.Now().Add(g.stall)
	}
}

// merge makes one page of answers each sorted by id: a gateway that had
// more than it sent bounds the page at its last socket, since its next
// ones may sort before other gateways' later ones.
func merge(answers []Answer, limit int) Page {
	p := Page{Sockets: []Socket{}, Gateways: []string{}}
	cutoff, more := "", false
	for _, a := range answers {
		p.Sockets = append(p.Sockets, a.Sockets...)
		p.Gateways = append(p.Gateways, a.Gateway)
		if a.More && len(a.Sockets) > 0 {
			last := a.Sockets[len(a.Sockets)-1].ID
			if cutoff == "" || last < cutoff {
				cutoff = last
			}
		}
	}
	slices.Sort(p.Gateways)
	slices.SortFunc(p.Sockets, func(a, b Socket) int { return cmp.Compare(a.ID, b.ID) })
	if cutoff != "" {
		n, _ := slices.BinarySearchFunc(p.Sockets, cutoff, func(s Socket, id string) int { return strings.Compare(s.ID, id) })
		p.Sockets, more = p.Sockets[:n+1], true
	}
	if len(p.Sockets) > limit {
		p.Sockets, more = p.Sockets[:limit], true
	}
	if more && len(p.Sockets) > 0 {
		p.NextStartKey = p.Sockets[len(p.Sockets)-1].ID
	}
	return p
}
