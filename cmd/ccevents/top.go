package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ccevents/ccevents/client"
)

// topConfig is every setting of `ccevents top`.
type topConfig struct {
	gatewayFlags
	Window   string
	Interval time.Duration
	Once     bool
	Color    string
}

func newTopCommand(stdout, stderr io.Writer) *ffcli.Command {
	var cfg topConfig
	fs := flag.NewFlagSet("ccevents top", flag.ContinueOnError)
	cfg.register(fs, "REST API, for the statistics' starting point and --api-key")
	fs.StringVar(&cfg.Window, "window", "15m", "window of the rates and averages (service level, abandon rate, ASA, AHT, occupancy): 15m, 1h or today")
	fs.DurationVar(&cfg.Interval, "interval", time.Second, "how often a terminal table is redrawn (the longest wait moves on its own)")
	fs.BoolVar(&cfg.Once, "once", false, "print the table once and exit")
	fs.StringVar(&cfg.Color, "color", "auto", "colors: auto (when writing to a terminal and NO_COLOR is unset), always or never")
	return &ffcli.Command{
		Name:       "top",
		ShortUsage: "ccevents top [--url ws://HOST:5555] (--api-key KEY | --token TOKEN) [--account ID] [--window 15m|1h|today] [--once]",
		ShortHelp:  "show live queue statistics, refreshing, like top",
		LongHelp: "Shows every queue of an account with its callers waiting, longest wait,\n" +
			"service level against its target, abandon rate, average speed of answer and\n" +
			"handle time, occupancy, today's counts and its agents by state, plus the\n" +
			"account's total, updated the moment the engine publishes new statistics.\n" +
			"In a terminal it redraws in place; piped or on a dumb terminal it prints a new\n" +
			"table whenever the figures change; --once prints one and exits.\n\n" +
			"  ccevents top --api-key $KEY\n" +
			"  ccevents top --api-key $KEY --once --window today\n\n" +
			"Each flag may also be set as CCEVENTS_<NAME> (CCEVENTS_API_KEY, CCEVENTS_TOKEN, …).",
		FlagSet: fs,
		Options: []ff.Option{ff.WithEnvVarPrefix("CCEVENTS")},
		Exec: flagsOnly("top", "", func(ctx context.Context) error {
			return top(ctx, cfg, stdout, stderr)
		}),
	}
}

func (c *topConfig) validate() error {
	if err := c.check(); err != nil {
		return err
	}
	switch {
	case c.Window != "15m" && c.Window != "1h" && c.Window != "today":
		return fmt.Errorf("--window must be 15m, 1h or today, got %q", c.Window)
	case c.Interval < 100*time.Millisecond:
		return fmt.Errorf("--interval must be at least 100ms, got %v", c.Interval)
	case c.Color != "auto" && c.Color != "always" && c.Color != "never":
		return fmt.Errorf("--color must be auto, always or never, got %q", c.Color)
	}
	return nil
}

// top runs until ctx ends (or after one table with --once).
func top(ctx context.Context, cfg topConfig, stdout, stderr io.Writer) error {
	if err := cfg.validate(); err != nil {
		return err
	}
	terminal := isTerminal(stdout) && os.Getenv("TERM") != "dumb" && !cfg.Once
	board := &topBoard{window: cfg.Window, color: useColor(cfg.Color, stdout), queues: map[string]client.QueueFigures{}}
	opts := client.Options{
		URL: cfg.URL, Token: cfg.Token, APIKey: cfg.APIKey, APIURL: cfg.APIURL,
		OnConnState: func(ev client.ConnEvent) { board.setConn(ev) },
	}
	c, account, err := cfg.dial(ctx, opts)
	if err != nil {
		return err
	}
	defer closeClient(c)
	board.account = account
	snap, err := c.Snapshot(ctx, account)
	if err != nil {
		return err
	}
	board.load(snap, time.Now())
	out := bufio.NewWriter(stdout)
	draw := func() error {
		if terminal {
			out.WriteString("\x1b[H\x1b[2J") // home, clear: redraw in place
		}
		board.render(out, time.Now())
		if !terminal {
			out.WriteByte('\n')
		}
		return out.Flush()
	}
	if cfg.Once {
		return draw()
	}

	changed := make(chan struct{}, 1)
	handle := func(ev client.Event) {
		if board.apply(ev, time.Now()) {
			select {
			case changed <- struct{}{}:
			default:
			}
		}
	}
	subCtx, cancelSub := context.WithTimeout(ctx, 30*time.Second)
	bindings := []string{"qubicle.stats." + account + ".*", "qubicle.queue." + account + ".*.delete"}
	_, err = c.SubscribeBindings(subCtx, account, bindings, handle, client.Since(snap.Position()), client.OnResync(func(client.Resync) {
		// History no longer reaches back: start again from a fresh snapshot.
		if s, err := c.Snapshot(ctx, account); err == nil {
			board.load(s, time.Now())
			handle(client.Event{})
		}
	}))
	cancelSub()
	if err != nil {
		return explainSubscribe(err)
	}
	if err := draw(); err != nil {
		return err
	}
	tick := time.NewTicker(cfg.Interval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-c.Done():
			return c.Err()
		case <-changed:
		case <-tick.C:
			if !terminal {
				continue // a new table only when the figures change
			}
		}
		if err := draw(); err != nil {
			return fmt.Errorf("write: %w", err)
		}
	}
}

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

// topBoard holds the latest figures of an account and draws them.
type topBoard struct {
	account string
	window  string
	color   bool

	mu      sync.Mutex
	queues  map[string]client.QueueFigures
	total   client.Figures
	updated time.Time     // local time of the latest figures
	skew    time.Duration // server clock minus local clock, from the latest figures
	conn    string        // "", or why the connection is down
}

func (b *topBoard) load(s *client.Snapshot, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.queues = map[string]client.QueueFigures{}
	for _, q := range s.Stats.Queues {
		b.queues[q.QueueID] = q.QueueFigures
	}
	b.total = s.Stats.Account
	b.updated, b.skew = now, time.UnixMilli(s.TimestampMS).Sub(now)
}

// apply takes one event; it reports whether the figures changed.
func (b *topBoard) apply(ev client.Event, now time.Time) bool {
	if ev.RoutingKey == "" {
		return true // reloaded from a snapshot
	}
	p, err := ev.Decode()
	if err != nil {
		return false // newer than this program
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	switch p := p.(type) {
	case *client.StatsQueue:
		b.queues[p.QueueID] = p.QueueFigures
	case *client.StatsAccount:
		b.total = p.Figures
	case *client.QueueDelete:
		delete(b.queues, p.QueueID)
	default:
		return false
	}
	b.updated, b.skew = now, time.UnixMilli(p.Env().TimestampMS).Sub(now)
	return true
}

func (b *topBoard) setConn(ev client.ConnEvent) {
	b.mu.Lock()
	defer b.mu.Unlock()
	switch ev.State {
	case client.Connected:
		b.conn = ""
	case client.Disconnected:
		b.conn = fmt.Sprintf("disconnected (%v); reconnecting", ev.Err)
	}
}

// topColumns are the table's columns: header, width, and whether the
// value is right-aligned.
var topColumns = []struct {
	head  string
	width int
}{
	{"QUEUE", 18}, {"WAIT", 5}, {"LONGEST", 8}, {"SL", 7}, {"TARGET", 7}, {"ABAND", 7}, {"ASA", 6}, {"AHT", 6}, {"OCC", 7},
	{"OFFERED", 8}, {"ANSWERED", 9}, {"ABANDONED", 10}, {"TIMEDOUT", 9}, {"READY", 6}, {"BUSY", 5}, {"WRAP", 5}, {"AWAY", 5},
}

const (
	ansiRed    = "\x1b[31m"
	ansiGreen  = "\x1b[32m"
	ansiYellow = "\x1b[33m"
)

// render writes the table as of now.
func (b *topBoard) render(w io.Writer, now time.Time) {
	b.mu.Lock()
	defer b.mu.Unlock()
	serverNow := now.Add(b.skew)
	status := "live"
	if b.conn != "" {
		status = fmt.Sprintf("%s; figures from %s ago", b.conn, clock(now.Sub(b.updated)))
	}
	fmt.Fprintf(w, "ccevents top · account %s · %s UTC · %s\n", b.account, serverNow.UTC().Format("2006-01-02 15:04:05"), status)
	windowName := map[string]string{"15m": "the last 15 minutes", "1h": "the last hour", "today": "today"}[b.window]
	fmt.Fprintf(w, "SL, ABAND, ASA, AHT and OCC over %s; counts today (UTC)\n\n", windowName)
	var line strings.Builder
	for i, c := range topColumns {
		if i == 0 {
			fmt.Fprintf(&line, "%-*s", c.width, c.head)
		} else {
			fmt.Fprintf(&line, "%*s", c.width, c.head)
		}
	}
	b.paint(w, ansiBold, line.String())
	fmt.Fprintln(w)
	ids := make([]string, 0, len(b.queues))
	for id := range b.queues {
		ids = append(ids, id)
	}
	slices.SortFunc(ids, func(x, y string) int { return strings.Compare(b.queues[x].QueueName+x, b.queues[y].QueueName+y) })
	for _, id := range ids {
		q := b.queues[id]
		b.row(w, q.QueueName, q.Figures, q.ServiceLevelTargetPct, serverNow)
	}
	if len(ids) == 0 {
		fmt.Fprintln(w, "(no queues yet)")
	}
	b.row(w, "TOTAL", b.total, 0, serverNow)
}

func (b *topBoard) row(w io.Writer, name string, f client.Figures, target int, now time.Time) {
	win := map[string]client.StatsWindow{"15m": f.Last15m, "1h": f.Last1h, "today": f.Today}[b.window]
	longest := "—"
	if f.Waiting > 0 {
		d := time.Duration(f.LongestWaitMS) * time.Millisecond
		if t, err := time.Parse(time.RFC3339Nano, f.OldestJoinedAt); err == nil {
			d = max(d, now.Sub(t))
		}
		longest = clock(d)
	}
	targetText := "—"
	if target > 0 {
		targetText = fmt.Sprintf("%d%%", target)
	}
	cells := []string{
		truncate(name, topColumns[0].width-1), fmt.Sprint(f.Waiting), longest, pct(win.ServiceLevelPct), targetText,
		pct(win.AbandonRatePct), msClock(win.ASAMS), msClock(win.AHTMS), pct(win.OccupancyPct),
		fmt.Sprint(f.Today.Offered), fmt.Sprint(f.Today.Answered), fmt.Sprint(f.Today.Abandoned), fmt.Sprint(f.Today.TimedOut),
		fmt.Sprint(f.Recipients.Ready), fmt.Sprint(f.Recipients.Busy + f.Recipients.Offered), fmt.Sprint(f.Recipients.Wrapup), fmt.Sprint(f.Recipients.Away),
	}
	for i, c := range topColumns {
		text := fmt.Sprintf("%*s", c.width, cells[i])
		if i == 0 {
			text = fmt.Sprintf("%-*s", c.width, cells[i])
		}
		color := ""
		switch {
		case i == 1 && f.Waiting > 0:
			color = ansiYellow
		case i == 3 && win.ServiceLevelPct != nil && target > 0 && *win.ServiceLevelPct < float64(target):
			color = ansiRed
		case i == 3 && win.ServiceLevelPct != nil && target > 0:
			color = ansiGreen
		}
		b.paint(w, color, text)
	}
	fmt.Fprintln(w)
}

func (b *topBoard) paint(w io.Writer, color, s string) {
	if b.color && color != "" {
		io.WriteString(w, color+s+ansiReset)
		return
	}
	io.WriteString(w, s)
}

func pct(v *float64) string {
	if v == nil {
		return "—"
	}
	return fmt.Sprintf("%.1f%%", *v)
}

func msClock(v *int64) string {
	if v == nil {
		return "—"
	}
	return clock(time.Duration(*v) * time.Millisecond)
}

// clock writes a duration as m:ss, or h:mm:ss from an hour.
func clock(d time.Duration) string {
	s := int64(max(d, 0) / time.Second)
	if s >= 3600 {
		return fmt.Sprintf("%d:%02d:%02d", s/3600, s/60%60, s%60)
	}
	return fmt.Sprintf("%d:%02d", s/60, s%60)
}

func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}
