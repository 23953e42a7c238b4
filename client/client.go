package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/ccevents/ccevents/internal/backoff"
	"github.com/ccevents/ccevents/protocol"
)

// Options configure a Client. URL and either Token or APIKey (with APIURL)
// are required; every other field has a useful zero value.
type Options struct {
	// URL is the gateway's websocket URL, e.g. ws://127.0.0.1:5555.
	URL string
	// Token is a fixed auth token. It is not renewed: when it expires the
	// client stops with an error. Prefer APIKey for long-lived clients.
	Token string
	// APIKey makes the client obtain its token from the REST API at APIURL
	// and renew it on the live connection before it expires.
	APIKey string
	// APIURL is the REST API, e.g. http://127.0.0.1:8000. Required with
	// APIKey and for Snapshot.
	APIURL string
	// HTTPClient makes the REST calls; nil means http.DefaultClient.
	HTTPClient *http.Client

	// MinBackoff and MaxBackoff bound the wait between reconnect attempts,
	// which doubles from MinBackoff up to MaxBackoff, with jitter so that
	// many clients of a restarted gateway do not return all at once.
	// Defaults: 250ms and 30s.
	MinBackoff, MaxBackoff time.Duration
	// PingInterval is how often the client checks that the gateway still
	// answers; a connection that does not answer within RequestTimeout is
	// replaced. Default 20s.
	PingInterval time.Duration
	// RequestTimeout bounds connecting and each request. Default 10s.
	RequestTimeout time.Duration

	// OnConnState, if set, is told about every change of the connection:
	// connected, disconnected (with why) and the wait before the next try.
	// It runs on the client's goroutine and must not block.
	OnConnState func(ConnEvent)
	// Logger receives the client's own diagnostics; nil discards them.
	Logger *slog.Logger
}

// ConnState is the state of a Client's connection.
type ConnState int

// Connection states, in the order a session goes through them.
const (
	// Connected: the websocket is up and every subscription is in place.
	Connected ConnState = iota + 1
	// Disconnected: the connection ended; Err says why and Retry how long
	// the client waits before it reconnects.
	Disconnected
	// Closed: the client stopped for good; Err is nil after Close.
	Closed
)

// String returns "connected", "disconnected" or "closed".
func (s ConnState) String() string {
	switch s {
	case Connected:
		return "connected"
	case Disconnected:
		return "disconnected"
	case Closed:
		return "closed"
	}
	return fmt.Sprintf("ConnState(%d)", int(s))
}

// ConnEvent reports a change of connection state to Options.OnConnState.
type ConnEvent struct {
	State ConnState
	// Err is why the connection ended (a *CloseError when the gateway
	// closed it) or why the client stopped.
	Err error
	// Retry is the wait before the next attempt, when Disconnected.
	Retry time.Duration
	// Attempt counts consecutive attempts: for Disconnected the one about
	// to be made (from 1), for Connected the one that succeeded (0 for the
	// connection Dial made).
	Attempt int
}

// ErrClosed is returned by calls on a Client after Close.
var ErrClosed = errors.New("client is closed")

// ErrUnknownEvent is wrapped by Event.Decode for an event the catalogue of
// this SDK version does not know.
var ErrUnknownEvent = errors.New("event not in this SDK's catalogue")

// ReplyError is the gateway's refusal of a request, with its explanation,
// e.g. binding must name account 4f2a…, got *. errors.Is(err,
// protocol.ErrAuth) holds when the gateway refused the token (its message
// begins protocol.AuthFailedPrefix): log in again.
type ReplyError struct {
	// Action is the refused request: "subscribe", "unsubscribe", "refresh".
	Action string
	// Binding is the binding concerned, if any.
	Binding string
	// Errors are the gateway's messages; the first is the main one.
	Errors []string
	// RetryAfter, when set, is how long the gateway asks the client to wait
	// before trying again (it throttles repeated auth failures).
	RetryAfter time.Duration
	// Kind is the kind of error, as far as the reply tells it
	// (protocol.KindOf); "" when it does not.
	Kind protocol.ErrorKind
}

// Unwrap returns the error's Kind, if known.
func (e *ReplyError) Unwrap() error {
	if e.Kind == "" {
		return nil
	}
	return e.Kind
}

// Error returns e.g. `subscribe "qubicle.queue.x.*": binding must …`.
func (e *ReplyError) Error() string {
	msg := "refused"
	if len(e.Errors) > 0 {
		msg = strings.Join(e.Errors, "; ")
	}
	if e.Binding != "" {
		return fmt.Sprintf("%s %q: %s", e.Action, e.Binding, msg)
	}
	return e.Action + ": " + msg
}

func replyError(action, binding string, r reply) error {
	errs := r.data.Errors
	if len(errs) == 0 && r.data.Message != "" {
		errs = []string{r.data.Message}
	}
	var kind protocol.ErrorKind
	if len(errs) > 0 {
		kind = protocol.KindOf(errs[0])
	}
	return &ReplyError{Action: action, Binding: binding, Errors: errs, RetryAfter: time.Duration(r.data.RetryAfter) * time.Second, Kind: kind}
}

// Client is a connection to the gateway that stays up: it reconnects with
// backoff after any failure and puts every subscription back in place from
// where it stopped. Its methods are safe for concurrent use.
type Client struct {
	opts   Options
	log    *slog.Logger
	tokens *tokens

	ctx    context.Context // ends when the client stops
	cancel context.CancelFunc

	mu      sync.Mutex
	conn    *conn                    // nil while disconnected
	up      chan struct{}            // closed when conn is set; replaced when it drops
	subs    map[string]*Subscription // subscriptions by binding
	err     error                    // why the client stopped, once done
	stopped bool
	// nextOrder numbers subscriptions in creation order, which reconnects
	// keep: it decides which binding gets an event matching several.
	nextOrder uint64

	queue     chan item // events and resyncs for the dispatcher
	done      chan struct{}
	loopDone  chan struct{}
	dispDone  chan struct{}
	renewNow  chan struct{}
	renewDone chan struct{}
	closeOnce sync.Once
}

// item is one thing for the dispatcher: an event or a resync notice.
type item struct {
	sub    *Subscription
	ev     Event
	resync *Resync
}

// queueLen bounds the events read but not yet handled; when it is full the
// read loop waits, and the gateway sees a slow consumer rather than this
// process growing without bound.
const queueLen = 256

// Dial authenticates (logging in first when Options.APIKey is set), opens
// the first connection and returns a Client that keeps it up until Close.
// Errors before the first connection are returned as they are: a refused
// API key, a bad URL or a gateway that cannot be reached.
func Dial(ctx context.Context, opts Options) (*Client, error) {
	if err := opts.setDefaults(); err != nil {
		return nil, err
	}
	tk := &tokens{apiURL: opts.APIURL, apiKey: opts.APIKey, hc: opts.HTTPClient}
	if opts.APIKey != "" {
		if _, err := tk.renew(ctx); err != nil {
			return nil, err
		}
	} else {
		tk.cur = tokenInfo(opts.Token)
		if exp := tk.cur.ExpiresAt; !exp.IsZero() && time.Now().After(exp) {
			return nil, fmt.Errorf("the auth token expired at %s; get a fresh one (PUT /v2/api_auth) or use an API key", exp.Local().Format(time.DateTime))
		}
	}
	cn, err := dialConn(ctx, opts.URL, opts.RequestTimeout)
	if err != nil {
		return nil, err
	}
	c := &Client{
		opts: opts, log: opts.Logger, tokens: tk,
		up: make(chan struct{}), subs: make(map[string]*Subscription),
		queue: make(chan item, queueLen), done: make(chan struct{}),
		loopDone: make(chan struct{}), dispDone: make(chan struct{}),
		renewNow: make(chan struct{}, 1), renewDone: make(chan struct{}),
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	c.startReading(cn)
	if err := c.setConn(cn); err != nil {
		c.cancel()
		cn.closeGracefully(err)
		return nil, fmt.Errorf("connect to %s: %w", opts.URL, err)
	}
	go c.dispatch()
	go c.run(cn)
	if tk.renewable() {
		go c.renewLoop()
	} else {
		close(c.renewDone)
	}
	return c, nil
}

func (o *Options) setDefaults() error {
	if o.URL == "" {
		return errors.New("client: Options.URL is required, e.g. ws://127.0.0.1:5555")
	}
	if !strings.HasPrefix(o.URL, "ws://") && !strings.HasPrefix(o.URL, "wss://") {
		return fmt.Errorf("client: Options.URL must start with ws:// or wss://, got %q", o.URL)
	}
	switch {
	case o.Token == "" && o.APIKey == "":
		return errors.New("client: set Options.Token or Options.APIKey")
	case o.Token != "" && o.APIKey != "":
		return errors.New("client: set Options.Token or Options.APIKey, not both")
	case o.APIKey != "" && o.APIURL == "":
		return errors.New("client: Options.APIURL is required with an API key, e.g. http://127.0.0.1:8000")
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 250 * time.Millisecond
	}
	if o.MaxBackoff < o.MinBackoff {
		o.MaxBackoff = max(30*time.Second, o.MinBackoff)
	}
	if o.PingInterval <= 0 {
		o.PingInterval = 20 * time.Second
	}
	if o.RequestTimeout <= 0 {
		o.RequestTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return nil
}

// Token returns the auth token the client uses now, e.g. for REST calls of
// your own. With an API key it changes as the client renews it.
func (c *Client) Token() Token { return c.tokens.current() }

// Done is closed when the client has stopped: after Close, or when it gave
// up because the gateway refused it (see Err).
func (c *Client) Done() <-chan struct{} { return c.done }

// Err returns why the client stopped: nil while it runs and after Close,
// otherwise the refusal that ended it, such as a *ReplyError for a
// subscription the gateway no longer allows or an *APIError for a revoked
// API key.
func (c *Client) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Close stops the client: it closes the connection, stops reconnecting
// and waits, until ctx ends, for a running handler to return. No handler is
// called after Close returns nil.
func (c *Client) Close(ctx context.Context) error {
	c.stop(nil)
	for _, ch := range []chan struct{}{c.loopDone, c.dispDone, c.renewDone} {
		select {
		case <-ch:
		case <-ctx.Done():
			return fmt.Errorf("close: %w", ctx.Err())
		}
	}
	return nil
}

// stop ends the client once; why nil means the user closed it.
func (c *Client) stop(why error) {
	c.closeOnce.Do(func() {
		c.mu.Lock()
		c.err = why
		c.stopped = true
		cn := c.conn
		c.mu.Unlock()
		c.cancel()
		if cn != nil {
			cn.closeGracefully(ErrClosed)
		}
		close(c.done)
		c.notify(ConnEvent{State: Closed, Err: why})
		if why != nil {
			c.log.Error("ccevents client stopped", "err", why)
		}
	})
}

func (c *Client) notify(ev ConnEvent) {
	if c.opts.OnConnState != nil {
		c.opts.OnConnState(ev)
	}
}

// setConn makes cn the current connection, unless the client has stopped
// or cn has already ended.
func (c *Client) setConn(cn *conn) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch {
	case c.stopped:
		return ErrClosed
	case cn.ended:
		return errConnLost
	}
	c.conn = cn
	close(c.up)
	return nil
}

// currentConn waits for a connection to be up.
func (c *Client) currentConn(ctx context.Context) (*conn, error) {
	for {
		c.mu.Lock()
		cn, up := c.conn, c.up
		c.mu.Unlock()
		if cn != nil {
			return cn, nil
		}
		select {
		case <-up:
		case <-c.done:
			return nil, ErrClosed
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// run keeps a connection up until the client stops: it serves cn, and each
// time the connection ends it waits with backoff, reconnects, and puts
// every subscription back from its last position.
func (c *Client) run(cn *conn) {
	defer close(c.loopDone)
	retry := backoff.New(c.opts.MinBackoff, c.opts.MaxBackoff, backoff.EqualJitter)
	for {
		started := time.Now()
		c.serve(cn, retry.Attempt())
		why := cn.reason()
		if c.ctx.Err() != nil {
			return
		}
		// A connection that held for a while earns a fresh backoff.
		if time.Since(started) > 10*c.opts.MinBackoff+time.Second {
			retry.Reset()
		}
		for {
			wait := retry.Next()
			c.log.Info("ccevents connection lost; reconnecting", "err", why, "retry_in", wait.Round(time.Millisecond), "attempt", retry.Attempt())
			c.notify(ConnEvent{State: Disconnected, Err: why, Retry: wait, Attempt: retry.Attempt()})
			if backoff.Sleep(c.ctx, wait) != nil {
				return
			}
			next, err := c.reconnect()
			if err == nil {
				cn = next
				break
			}
			var refused *ReplyError
			switch {
			case errors.As(err, &refused) && refused.RetryAfter > 0:
				// Throttled, not refused: wait as asked, then try again.
				if backoff.Sleep(c.ctx, refused.RetryAfter) != nil {
					return
				}
			case errors.As(err, &refused) || keyRefused(err):
				c.stop(err)
				return
			}
			why = err
		}
	}
}

// serve pings the gateway over cn until the connection ends. cn's read
// loop is already running: it was started before the subscriptions were
// put back, so that their replays flow while the others are requested.
func (c *Client) serve(cn *conn, attempts int) {
	c.notify(ConnEvent{State: Connected, Attempt: attempts})
	c.keepAlive(cn)
	<-cn.closed
}

// keepAlive pings the gateway and replaces a connection that stops
// answering: a half-open TCP connection otherwise looks alive for minutes.
func (c *Client) keepAlive(cn *conn) {
	t := time.NewTicker(c.opts.PingInterval)
	defer t.Stop()
	for {
		select {
		case <-cn.closed:
			return
		case <-t.C:
		}
		ctx, cancel := context.WithTimeout(c.ctx, c.opts.RequestTimeout)
		_, err := cn.request(ctx, protocol.Request{Action: protocol.Ping}, nil)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			cn.close(fmt.Errorf("gateway did not answer a ping within %s", c.opts.RequestTimeout))
			return
		}
	}
}

// reconnect opens a new connection and resubscribes every binding from its
// position. It returns a *ReplyError when the gateway refuses a binding
// even with a fresh token: retrying cannot help.
func (c *Client) reconnect() (*conn, error) {
	ctx, cancel := context.WithTimeout(c.ctx, 3*c.opts.RequestTimeout)
	defer cancel()
	if c.tokens.renewable() && time.Now().After(renewAt(c.tokens.current(), time.Now())) {
		if _, err := c.tokens.renew(ctx); err != nil {
			return nil, err
		}
	}
	cn, err := dialConn(ctx, c.opts.URL, c.opts.RequestTimeout)
	if err != nil {
		return nil, err
	}
	c.startReading(cn)
	if err := c.resubscribeAll(ctx, cn); err != nil {
		cn.closeGracefully(err)
		<-cn.closed
		return nil, err
	}
	if err := c.setConn(cn); err != nil {
		cn.closeGracefully(err)
		<-cn.closed
		return nil, err
	}
	return cn, nil
}

// startReading runs cn's read loop; when it ends, cn stops being the
// current connection before anyone waiting on cn.closed wakes up.
func (c *Client) startReading(cn *conn) {
	cn.onClosed = func() {
		c.mu.Lock()
		defer c.mu.Unlock()
		cn.ended = true
		if c.conn == cn {
			c.conn = nil
			c.up = make(chan struct{})
		}
	}
	go cn.readLoop(c.route)
}
