package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ccevents/ccevents/client"
)

// gatewayFlags say how a command reaches the gateway and who it is: the
// flags `listen` and `top` share.
type gatewayFlags struct {
	URL     string
	APIURL  string
	Token   string
	APIKey  string
	Account string
}

// register adds the flags; apiURLUse says what the command needs the REST
// API for.
func (g *gatewayFlags) register(fs *flag.FlagSet, apiURLUse string) {
	fs.StringVar(&g.URL, "url", "ws://127.0.0.1:5555", "websocket URL of the gateway")
	fs.StringVar(&g.APIURL, "api-url", "http://127.0.0.1:8000", apiURLUse)
	fs.StringVar(&g.Token, "token", "", "auth token (prefer CCEVENTS_TOKEN: arguments are visible to other users)")
	fs.StringVar(&g.APIKey, "api-key", "", "API key; the token is obtained and renewed for you (prefer CCEVENTS_API_KEY)")
	fs.StringVar(&g.Account, "account", "", "account id (default: the account of the token or API key)")
}

// check refuses credentials given twice or not at all.
func (g *gatewayFlags) check() error {
	switch {
	case g.Token == "" && g.APIKey == "":
		return errors.New("give --api-key (or CCEVENTS_API_KEY) or --token (or CCEVENTS_TOKEN); DATA_DIR/demo.json of `ccevents serve --demo` has both")
	case g.Token != "" && g.APIKey != "":
		return errors.New("give --api-key or --token, not both")
	}
	return nil
}

// listenConfig is every setting of `ccevents listen`.
type listenConfig struct {
	gatewayFlags
	Bindings  bindingList
	Since     string
	Format    string
	Color     string
	Count     int
	Reconnect bool
}

// bindingList is a repeatable flag: each --binding adds one.
type bindingList []string

func (l *bindingList) String() string { return strings.Join(*l, " ") }

func (l *bindingList) Set(s string) error {
	s = strings.TrimSpace(s)
	if s == "" {
		return errors.New("a binding cannot be empty; e.g. --binding 'qubicle.queue.{ACCOUNT_ID}.*'")
	}
	*l = append(*l, s)
	return nil
}

func newListenCommand(stdout, stderr io.Writer) *ffcli.Command {
	var cfg listenConfig
	fs := flag.NewFlagSet("ccevents listen", flag.ContinueOnError)
	cfg.register(fs, "REST API, where --api-key is exchanged for a token")
	fs.Var(&cfg.Bindings, "binding", "binding to subscribe to, repeatable; {ACCOUNT_ID} is replaced (default: every queue, recipient and session event of the account)")
	fs.StringVar(&cfg.Since, "since", "", "resume after this position: SEQUENCE@EPOCH as printed when listen stops, or a bare SEQUENCE of the current history")
	fs.StringVar(&cfg.Format, "format", "json", "output: json (one event frame per line, for jq) or pretty (one readable line per event)")
	fs.StringVar(&cfg.Color, "color", "auto", "colors in pretty output: auto (when writing to a terminal and NO_COLOR is unset), always or never")
	fs.IntVar(&cfg.Count, "count", 0, "exit after this many events; 0 runs until interrupted")
	fs.BoolVar(&cfg.Reconnect, "reconnect", true, "reconnect and resume after the connection drops; false exits with an error instead")
	return &ffcli.Command{
		Name:       "listen",
		ShortUsage: "ccevents listen [--url ws://HOST:5555] (--api-key KEY | --token TOKEN) [--account ID] [--binding B]... [--since N] [--format json|pretty]",
		ShortHelp:  "print live events, one per line",
		LongHelp: "Subscribes to bindings and prints each event as it happens: one JSON frame per\n" +
			"line (pipe it to jq) or, with --format pretty, one readable colored line. It\n" +
			"reconnects after drops and gateway restarts and resumes where it stopped, so no\n" +
			"event is missed or printed twice. On exit it prints the --since to resume with.\n\n" +
			"  ccevents listen --api-key $KEY --format pretty\n" +
			"  ccevents listen --token $TOKEN --binding 'qubicle.queue.{ACCOUNT_ID}.*' | jq .data\n\n" +
			"Each flag may also be set as CCEVENTS_<NAME> (CCEVENTS_API_KEY, CCEVENTS_TOKEN, …).",
		FlagSet: fs,
		Options: []ff.Option{ff.WithEnvVarPrefix("CCEVENTS")},
		Exec: flagsOnly("listen", "bindings go in --binding", func(ctx context.Context) error {
			return listen(ctx, cfg, stdout, stderr)
		}),
	}
}

func (c *listenConfig) validate() (client.Position, error) {
	if err := c.check(); err != nil {
		return client.Position{}, err
	}
	if c.Format != "json" && c.Format != "pretty" {
		return client.Position{}, fmt.Errorf("--format must be json or pretty, got %q", c.Format)
	}
	if c.Color != "auto" && c.Color != "always" && c.Color != "never" {
		return client.Position{}, fmt.Errorf("--color must be auto, always or never, got %q", c.Color)
	}
	if c.Count < 0 {
		return client.Position{}, fmt.Errorf("--count must be 0 or more, got %d", c.Count)
	}
	if c.Since == "" {
		return client.Position{}, nil
	}
	p, err := client.ParsePosition(c.Since)
	if err != nil {
		return client.Position{}, fmt.Errorf("--since: %w", err)
	}
	return p, nil
}

// listen runs until ctx ends, --count events were printed, or the gateway
// refuses the client.
func listen(ctx context.Context, cfg listenConfig, stdout, stderr io.Writer) error {
	since, err := cfg.validate()
	if err != nil {
		return err
	}
	out := newPrinter(stdout, cfg.Format, useColor(cfg.Color, stdout))
	dropped := make(chan error, 1)
	opts := client.Options{
		URL: cfg.URL, Token: cfg.Token, APIKey: cfg.APIKey, APIURL: cfg.APIURL,
		OnConnState: func(ev client.ConnEvent) {
			switch ev.State {
			case client.Connected:
				if ev.Attempt == 0 {
					fmt.Fprintf(stderr, "connected to %s\n", cfg.URL)
				} else {
					fmt.Fprintf(stderr, "reconnected to %s; resuming where it stopped\n", cfg.URL)
				}
			case client.Disconnected:
				if !cfg.Reconnect {
					select {
					case dropped <- ev.Err:
					default:
					}
					return
				}
				fmt.Fprintf(stderr, "%v; reconnecting in %s\n", ev.Err, ev.Retry.Round(100*time.Millisecond))
			}
		},
	}
	c, account, err := cfg.dial(ctx, opts)
	if err != nil {
		return err
	}
	defer closeClient(c)

	if account == "" {
		return errors.New("the token names no account: is it a ccevents auth token (from PUT /v2/api_auth or `ccevents token`)? Give --account, or use --api-key")
	}
	bindings := cfg.Bindings
	if len(bindings) == 0 {
		bindings = bindingList{"qubicle.queue.{ACCOUNT_ID}.*", "qubicle.recipient.{ACCOUNT_ID}.*", "qubicle.session.{ACCOUNT_ID}.*"}
	}

	enough := make(chan struct{})
	var once sync.Once
	var (
		mu          sync.Mutex
		printed     int
		lastPrinted client.Position // what the resume hint names: events after it were not printed
	)
	handle := func(ev client.Event) {
		mu.Lock()
		defer mu.Unlock()
		if cfg.Count > 0 && printed >= cfg.Count {
			return
		}
		if err := out.print(ev); err != nil {
			fmt.Fprintf(stderr, "write: %v\n", err)
			once.Do(func() { close(enough) })
			return
		}
		printed++
		lastPrinted = ev.Position()
		if cfg.Count > 0 && printed == cfg.Count {
			once.Do(func() { close(enough) })
		}
	}
	expanded := make([]string, len(bindings))
	for i, b := range bindings {
		expanded[i] = strings.ReplaceAll(b, "{ACCOUNT_ID}", account)
	}
	if !since.IsZero() && since.Epoch == "" {
		// A bare sequence means "in the history the gateway holds now"; the
		// snapshot names that history's epoch.
		if snap, err := c.Snapshot(ctx, account); err == nil {
			since.Epoch = snap.Epoch
		}
	}
	subOpts := []client.SubscribeOption{client.OnResync(func(r client.Resync) {
		fmt.Fprintf(stderr, "warning: %s: %s\n", r.Binding, r.Reason())
	})}
	if !since.IsZero() {
		subOpts = append(subOpts, client.Since(since))
	}
	// One request for every binding, so that --since resumes them all.
	subCtx, cancelSub := context.WithTimeout(ctx, 30*time.Second)
	subs, err := c.SubscribeBindings(subCtx, account, expanded, handle, subOpts...)
	cancelSub()
	if err != nil {
		return explainSubscribe(err)
	}

	var runErr error
	select {
	case <-ctx.Done():
	case <-enough:
	case <-c.Done():
		runErr = c.Err()
	case err := <-dropped:
		runErr = fmt.Errorf("%w (and --reconnect=false)", err)
	}
	closeCtx, cancelClose := context.WithTimeout(context.Background(), 5*time.Second)
	_ = c.Close(closeCtx)
	cancelClose()
	if err := out.flush(); err != nil && runErr == nil {
		runErr = err
	}
	// The subscriptions' own positions move past events that arrived after
	// --count was reached and were not printed; the hint must not skip them.
	mu.Lock()
	p := lastPrinted
	mu.Unlock()
	if p.IsZero() {
		p = client.LatestPosition(subs...)
	}
	if !p.IsZero() {
		fmt.Fprintf(stderr, "stopped after sequence %d; resume with --since %s\n", p.Sequence, p)
	}
	return runErr
}

// dial connects with opts (the flags' URL and credentials filled in by the
// caller), waiting up to 30 s, and returns the client and the account the
// command is about: --account, or else the token's own.
func (g *gatewayFlags) dial(ctx context.Context, opts client.Options) (*client.Client, string, error) {
	dialCtx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	c, err := client.Dial(dialCtx, opts)
	if err != nil {
		return nil, "", explainDial(err, *g)
	}
	account := g.Account
	if account == "" {
		account = c.Token().AccountID
	}
	return c, account, nil
}

// closeClient closes c with a close handshake of at most 5 s, also when the
// command's own context has ended.
func closeClient(c *client.Client) {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = c.Close(ctx)
}

func explainDial(err error, cfg gatewayFlags) error {
	var apiErr *client.APIError
	switch {
	case errors.As(err, &apiErr) && apiErr.StatusCode == 401:
		return fmt.Errorf("the API key was refused: %s", apiErr.Message)
	case errors.As(err, &apiErr):
		return err
	case errors.Is(err, syscall.ECONNREFUSED):
		return fmt.Errorf("%w (is `ccevents serve` running? --url is %s, --api-url %s)", err, cfg.URL, cfg.APIURL)
	}
	return err
}

func explainSubscribe(err error) error {
	var refused *client.ReplyError
	if errors.As(err, &refused) {
		msg := strings.Join(refused.Errors, "; ")
		if bs := strings.Fields(refused.Binding); len(bs) > 1 {
			return fmt.Errorf("the gateway refused the subscription to %s: %s", strings.Join(bs, ", "), msg)
		}
		return fmt.Errorf("the gateway refused binding %q: %s", refused.Binding, msg)
	}
	return err
}

func useColor(mode string, w io.Writer) bool {
	switch mode {
	case "always":
		return true
	case "never":
		return false
	}
	return os.Getenv("NO_COLOR") == "" && isTerminal(w)
}

// printer writes events in the chosen format. It is used from the client's
// single handler goroutine only.
type printer struct {
	w      *bufio.Writer
	pretty bool
	color  bool
	line   bytes.Buffer
	enc    *json.Encoder // JSON lines into line
}

func newPrinter(w io.Writer, format string, color bool) *printer {
	p := &printer{w: bufio.NewWriter(w), pretty: format == "pretty", color: color}
	p.enc = json.NewEncoder(&p.line)
	// Print subjects as the gateway sent them: "…*.>", not "…*.\u003e".
	p.enc.SetEscapeHTML(false)
	return p
}

func (p *printer) flush() error { return p.w.Flush() }

func (p *printer) print(ev client.Event) error {
	p.line.Reset()
	if p.pretty {
		p.prettyLine(ev)
	} else {
		// Encode ends the line.
		if err := p.enc.Encode(ev); err != nil {
			return err
		}
	}
	if p.pretty {
		p.line.WriteByte('\n')
	}
	if _, err := p.w.Write(p.line.Bytes()); err != nil {
		return err
	}
	// A line at a time, so that `listen | jq` shows events as they happen.
	return p.w.Flush()
}

const (
	ansiReset = "\x1b[0m"
	ansiDim   = "\x1b[2m"
	ansiBold  = "\x1b[1m"
)

var familyColor = map[string]string{"queue": "\x1b[36m", "recipient": "\x1b[33m", "session": "\x1b[35m"}

var stateColor = map[string]string{
	"ready": "\x1b[32m", "away": "\x1b[90m", "offered": "\x1b[33m", "busy": "\x1b[31m",
	"wrapup": "\x1b[35m", "external_call": "\x1b[34m", "logged_out": "\x1b[90m",
}

// envelopeFields are left out of pretty lines: the line already shows
// them, or they are noise when reading.
var envelopeFields = map[string]bool{
	"account_id": true, "event": true, "event_id": true, "timestamp": true,
	"timestamp_ms": true, "sequence": true,
}

// prettyLine writes "11:32:43.123 #1234 queue.join queue_id=7a1c2e3f …",
// with the payload's own fields in the order the gateway sent them.
func (p *printer) prettyLine(ev client.Event) {
	b := &p.line
	paint := func(color, s string) {
		if p.color && color != "" {
			b.WriteString(color)
			b.WriteString(s)
			b.WriteString(ansiReset)
			return
		}
		b.WriteString(s)
	}
	var ts struct {
		TimestampMS int64 `json:"timestamp_ms"`
	}
	_ = json.Unmarshal(ev.Data, &ts)
	when := time.UnixMilli(ts.TimestampMS)
	if ts.TimestampMS == 0 {
		when = time.Now()
	}
	paint(ansiDim, when.Local().Format("15:04:05.000"))
	b.WriteByte(' ')
	paint(ansiDim, fmt.Sprintf("#%d", ev.Sequence))
	b.WriteByte(' ')
	paint(ansiBold+familyColor[ev.Family()], fmt.Sprintf("%-36s", ev.Family()+"."+ev.Name))

	dec := json.NewDecoder(bytes.NewReader(ev.Data))
	dec.UseNumber()
	if t, err := dec.Token(); err != nil || t != json.Delim('{') {
		return
	}
	for dec.More() {
		kt, err := dec.Token()
		if err != nil {
			return
		}
		key, _ := kt.(string)
		var val any
		if err := dec.Decode(&val); err != nil {
			return
		}
		if envelopeFields[key] {
			continue
		}
		b.WriteByte(' ')
		paint(ansiDim, key+"=")
		text := formatValue(val)
		if strings.HasSuffix(key, "_id") && len(text) == 32 {
			text = text[:8] // a 32-hex id is unique enough in 8 for reading
		}
		if key == "state" || key == "previous_state" {
			paint(stateColor[text], text)
			continue
		}
		b.WriteString(text)
	}
}

func formatValue(v any) string {
	switch x := v.(type) {
	case string:
		if strings.ContainsAny(x, " \t\"=") || x == "" {
			q, _ := json.Marshal(x)
			return string(q)
		}
		return x
	case json.Number:
		return x.String()
	case nil:
		return "null"
	default:
		q, _ := json.Marshal(x)
		return string(q)
	}
}
