package socketlist

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
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
	// DefaultTimeout bounds the wait for every gateway in the registry to
	// answer; a gateway that has not answered by then is named as missing.
	DefaultTimeout = 5 * time.Second
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

// Gatherer asks every gateway in the registry and merges their answers;
// the REST API serves GET /v2/accounts/{ACCOUNT_ID}/websockets with it.
type Gatherer struct {
	nc       *nats.Conn
	registry *registry
	timeout  time.Duration
	log      *slog.Logger

	listed   *prometheus.CounterVec
	missing  prometheus.Counter
	waiting  prometheus.Gauge
	duration prometheus.Histogram
}

// GathererConfig tunes a Gatherer; zero values take the defaults.
type GathererConfig struct {
	// Registry is the registry bucket (RegistryBucket, opened with
	// bus.ExpireAfter(RegistryTTL)). Required.
	Registry   jetstream.KeyValue
	Timeout    time.Duration // DefaultTimeout
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Outcomes counted in ccevents_websocket_listings_total.
const (
	outcomeOK              = "ok"                   // every gateway in the registry answered
	outcomePartial         = "partial"              // some did not; the caller accepted a partial page
	outcomeMissingGateway  = "missing_gateway"      // some did not: an error naming them
	outcomeNoGateway       = "no_gateway"           // no gateway is registered: an empty page
	outcomeGatewayError    = "gateway_error"        // a gateway could not list its sockets
	outcomeTooManyGateways = "too_many_gateways"    // more than MaxGateways registered
	outcomeRegistryDown    = "registry_unavailable" // the registry could not be read in time
	outcomeCouldNotAsk     = "failed"               // NATS refused the request itself
	outcomeCallerGone      = "canceled"             // the caller went away first
)

// NewGatherer returns a Gatherer asking over nc. It watches the registry
// until Close.
func NewGatherer(ctx context.Context, nc *nats.Conn, cfg GathererConfig) (*Gatherer, error) {
	if cfg.Registry == nil {
		return nil, errors.New("list websockets: the gatherer needs the gateway registry bucket")
	}
	g := &Gatherer{nc: nc, timeout: cfg.Timeout, log: cfg.Logger}
	if g.timeout <= 0 {
		g.timeout = DefaultTimeout
	}
	if g.log == nil {
		g.log = slog.New(slog.DiscardHandler)
	}
	g.listed = prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "ccevents_websocket_listings_total",
		Help: "Websocket listings the REST API gathered from the gateways, by outcome.",
	}, []string{"outcome"})
	g.missing = prometheus.NewCounter(prometheus.CounterOpts{
		Name: "ccevents_websocket_listing_missing_gateways_total",
		Help: "Gateways in the registry that did not answer a websocket listing within its timeout.",
	})
	g.waiting = prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ccevents_websocket_listings_waiting",
		Help: "Websocket listings waiting for the gateways' answers.",
	})
	g.duration = prometheus.NewHistogram(prometheus.HistogramOpts{
		Name:    "ccevents_websocket_listing_duration_seconds",
		Help:    "How long websocket listings waited for the gateways' answers.",
		Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
	})
	registered := prometheus.NewGauge(prometheus.GaugeOpts{
		Name: "ccevents_websocket_listing_gateways",
		Help: "Gateways in the gateway registry, as this REST API node sees it: those a listing waits for.",
	})
	reg := cfg.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	for _, c := range []prometheus.Collector{g.listed, g.missing, g.waiting, g.duration, registered} {
		if err := reg.Register(c); err != nil {
			return nil, fmt.Errorf("register websocket listing metrics: %w", err)
		}
	}
	for _, o := range []string{outcomeOK, outcomePartial, outcomeMissingGateway, outcomeNoGateway, outcomeGatewayError,
		outcomeTooManyGateways, outcomeRegistryDown, outcomeCouldNotAsk, outcomeCallerGone} {
		g.listed.WithLabelValues(o)
	}
	r, err := watchRegistry(ctx, cfg.Registry, registered, g.log)
	if err != nil {
		return nil, err
	}
	g.registry = r
	return g, nil
}

// Close stops watching the registry.
func (g *Gatherer) Close() { g.registry.stop() }

// Registered returns the names of the gateways a listing would wait for
// now, sorted.
func (g *Gatherer) Registered() []string {
	names, _ := g.registry.live()
	return names
}

// Page is one page of sockets, merged from every gateway that answered.
type Page struct {
	Sockets []Socket
	// NextStartKey, when set, is the StartKey of the next page.
	NextStartKey string
	// Gateways names the gateways that answered, sorted.
	Gateways []string
	// Missing names the gateways in the registry that did not answer in
	// time, sorted; only a page listed with Options.AllowPartial has any.
	Missing []string
}

// Options change what List accepts.
type Options struct {
	// AllowPartial returns the sockets of the gateways that answered,
	// naming in Page.Missing those that did not, instead of a
	// *MissingError.
	AllowPartial bool
}

// ErrRegistryUnavailable means the registry of gateways could not be read
// in time: the listing cannot know whom to wait for.
var ErrRegistryUnavailable = errors.New("the registry of websocket gateways cannot be read right now (NATS unreachable?); try again")

// MissingError names the gateways in the registry that did not answer: a
// listing without them would be incomplete.
type MissingError struct {
	Missing  []string
	Answered []string
	Timeout  time.Duration
}

func (e *MissingError) Error() string {
	return fmt.Sprintf("websocket gateway %s did not answer within %s (overloaded, paused, or cut off from NATS); "+
		"its sockets would be missing from the listing, so none is given: try again, or add allow_partial=true for the other gateways' sockets",
		strings.Join(e.Missing, ", "), e.Timeout)
}

// TooManyGatewaysError means more gateways are registered than one listing
// gathers from.
type TooManyGatewaysError struct{ Registered int }

func (e *TooManyGatewaysError) Error() string {
	return fmt.Sprintf("%d websocket gateways are registered; a listing gathers from at most %d", e.Registered, MaxGateways)
}

// GatewayError is a gateway that could not list its sockets.
type GatewayError struct {
	Gateway string
	Reason  string
}

func (e *GatewayError) Error() string {
	return fmt.Sprintf("gateway %s could not list its sockets: %s", e.Gateway, e.Reason)
}

// List asks every gateway in the registry for q and merges their answers
// into one page of at most q.Limit sockets. It waits until each of them
// has answered or left the registry, for at most the timeout; a gateway
// that has not answered by then is reported: a *MissingError, or, with
// AllowPartial, in Page.Missing. A gateway that answers without being in
// the registry (it joined meanwhile) is merged if its answer comes before
// the last awaited one. With no gateway registered, the page is empty.
func (g *Gatherer) List(ctx context.Context, q Query, opt Options) (Page, error) {
	if q.Limit <= 0 {
		q.Limit = DefaultPageSize
	}
	g.waiting.Inc()
	start := time.Now()
	answers, missing, err := g.gather(ctx, q)
	g.duration.Observe(time.Since(start).Seconds())
	g.waiting.Dec()
	outcome := outcomeOK
	var tooMany *TooManyGatewaysError
	switch {
	case ctx.Err() != nil:
		outcome, err = outcomeCallerGone, ctx.Err()
	case errors.As(err, &tooMany):
		outcome = outcomeTooManyGateways
	case errors.Is(err, ErrRegistryUnavailable):
		outcome = outcomeRegistryDown
	case err != nil:
		outcome = outcomeCouldNotAsk
	}
	if err != nil {
		g.listed.WithLabelValues(outcome).Inc()
		return Page{}, err
	}
	for _, a := range answers {
		if a.Error != "" {
			g.listed.WithLabelValues(outcomeGatewayError).Inc()
			return Page{}, &GatewayError{Gateway: a.Gateway, Reason: a.Error}
		}
	}
	p := merge(answers, q.Limit)
	switch {
	case len(missing) > 0:
		g.missing.Add(float64(len(missing)))
		g.log.Warn("websocket gateways did not answer a listing in time", "missing", missing, "answered", p.Gateways, "timeout", g.timeout, "partial_allowed", opt.AllowPartial)
		if !opt.AllowPartial {
			g.listed.WithLabelValues(outcomeMissingGateway).Inc()
			return Page{}, &MissingError{Missing: missing, Answered: p.Gateways, Timeout: g.timeout}
		}
		outcome, p.Missing = outcomePartial, missing
	case len(answers) == 0:
		outcome = outcomeNoGateway
	}
	g.listed.WithLabelValues(outcome).Inc()
	return p, nil
}

// gather asks the gateways for q and collects answers until every gateway
// in the registry has answered or left it, or the timeout; missing names
// the registered gateways that did not answer.
func (g *Gatherer) gather(ctx context.Context, q Query) (answers []Answer, missing []string, err error) {
	ctx, cancel := context.WithTimeout(ctx, g.timeout)
	defer cancel()
	if err := g.registry.waitReady(ctx); err != nil {
		return nil, nil, err
	}
	live, changed := g.registry.live()
	if len(live) > MaxGateways {
		return nil, nil, &TooManyGatewaysError{Registered: len(live)}
	}
	if len(live) == 0 {
		return nil, nil, nil
	}
	pending := make(map[string]bool, len(live))
	for _, name := range live {
		pending[name] = true
	}

	// Room for every registered gateway's answer and a few unregistered
	// ones; more would be dropped by NATS (a slow consumer), not queued.
	msgs := make(chan *nats.Msg, MaxGateways+8)
	inbox := g.nc.NewInbox()
	sub, err := g.nc.ChanSubscribe(inbox, msgs)
	if err != nil {
		return nil, nil, fmt.Errorf("subscribe for listing answers: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	msg := nats.NewMsg(Subject)
	msg.Reply = inbox
	msg.Data, _ = json.Marshal(q) // plain struct: cannot fail
	if err := g.nc.PublishMsg(msg); err != nil {
		return nil, nil, fmt.Errorf("ask the gateways for their sockets: %w", err)
	}
	for len(pending) > 0 {
		select {
		case m := <-msgs:
			if noResponders(m) {
				// Nobody listens: every gateway still pending is gone
				// without having left the registry yet.
				return answers, slices.Sorted(maps.Keys(pending)), nil
			}
			var a Answer
			if err := json.Unmarshal(m.Data, &a); err != nil {
				g.log.Warn("unreadable websocket listing answer", "err", err)
				continue
			}
			answers = append(answers, a)
			delete(pending, a.Gateway)
			if q.SocketID != "" && len(a.Sockets) > 0 {
				return answers, nil, nil // ids are unique: nobody else has it
			}
		case <-changed:
			// A gateway that left the registry meanwhile stopped cleanly:
			// it will not answer, and its sockets are closed.
			live, changed = g.registry.live()
			for name := range pending {
				if _, ok := slices.BinarySearch(live, name); !ok {
					delete(pending, name)
				}
			}
		case <-ctx.Done():
			return answers, slices.Sorted(maps.Keys(pending)), nil
		}
	}
	return answers, nil, nil
}

// noResponders reports whether m is NATS's status saying nobody is
// subscribed to the request's subject.
func noResponders(m *nats.Msg) bool {
	return len(m.Data) == 0 && m.Header.Get("Status") == "503"
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
