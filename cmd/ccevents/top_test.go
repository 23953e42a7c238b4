package main

import (
	"context"
	"errors"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/client"
	"github.com/ccevents/ccevents/internal/testkit"
)

func ptrTo[T any](v T) *T { return &v }

func TestTopTableShowsEachQueueAndTheTotal(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 4, 5, 0, time.UTC)
	sales := client.QueueFigures{QueueName: "Sales", ServiceLevelTargetPct: 80, Figures: client.Figures{
		Waiting: 3, LongestWaitMS: 100000, OldestJoinedAt: "2026-11-25T12:02:15.000Z",
		Recipients: client.RecipientCounts{LoggedIn: 6, Ready: 0, Busy: 2, Away: 4},
		Last15m:    client.StatsWindow{ServiceLevelPct: ptrTo(72.5), AbandonRatePct: ptrTo(8.3), ASAMS: ptrTo(int64(21000)), AHTMS: ptrTo(int64(185000)), OccupancyPct: ptrTo(78.0)},
		Today:      client.StatsWindow{Offered: 45, Answered: 40, Abandoned: 4, TimedOut: 1},
	}}
	quiet := client.QueueFigures{QueueName: "A very long queue name indeed", ServiceLevelTargetPct: 90}
	b := &topBoard{account: "0e2f648ccb689b735c41ab7cd18ec71f", window: "15m", updated: now,
		queues: map[string]client.QueueFigures{"sales": sales, "quiet": quiet}, total: sales.Figures}
	var out strings.Builder
	b.render(&out, now)
	lines := strings.Split(strings.TrimRight(out.String(), "\n"), "\n")
	if !strings.HasPrefix(lines[0], "ccevents top · account 0e2f648ccb689b735c41ab7cd18ec71f · 2026-11-25 12:04:05 UTC · live") {
		t.Errorf("header %q", lines[0])
	}
	if !strings.Contains(lines[1], "over the last 15 minutes; counts today") {
		t.Errorf("window line %q", lines[1])
	}
	fields := func(l string) []string { return strings.Fields(l) }
	if got := fields(lines[3]); strings.Join(got, " ") != "QUEUE WAIT LONGEST SL TARGET ABAND ASA AHT OCC OFFERED ANSWERED ABANDONED TIMEDOUT READY BUSY WRAP AWAY" {
		t.Errorf("columns %q", lines[3])
	}
	// Rows sorted by name; the longest wait counted from when the caller
	// joined: 12:02:15 to 12:04:05 is 1:50.
	want := []string{
		"A very long queu… 0 — — 90% — — — — 0 0 0 0 0 0 0 0",
		"Sales 3 1:50 72.5% 80% 8.3% 0:21 3:05 78.0% 45 40 4 1 0 2 0 4",
		"TOTAL 3 1:50 72.5% — 8.3% 0:21 3:05 78.0% 45 40 4 1 0 2 0 4",
	}
	for i, w := range want {
		if got := strings.Join(fields(lines[4+i]), " "); got != w {
			t.Errorf("row %d\n got %q\nwant %q", i, got, w)
		}
	}
	if strings.Contains(out.String(), "\x1b[") {
		t.Error("escape codes without color")
	}
	// Columns line up: every row is as wide as the header.
	for _, l := range lines[3:] {
		if n := len([]rune(l)); n != len(lines[3]) {
			t.Errorf("row %q is %d wide, the header %d", l, n, len(lines[3]))
		}
	}

	b.color = true
	b.setConn(client.ConnEvent{State: client.Disconnected, Err: errors.New("connection refused")})
	out.Reset()
	b.render(&out, now.Add(42*time.Second))
	text := out.String()
	if !strings.Contains(text, "disconnected (connection refused); reconnecting; figures from 0:42 ago") {
		t.Errorf("stale header: %q", strings.SplitN(text, "\n", 2)[0])
	}
	if !strings.Contains(text, ansiRed+"  72.5%"+ansiReset) {
		t.Errorf("a service level under target is not red:\n%q", text)
	}
}

func TestTopOncePrintsTheDemoQueues(t *testing.T) {
	d := startDemoServer(t)
	var out, errs syncBuffer
	args := []string{"top", "--url", d.wsURL, "--api-url", d.apiURL, "--api-key", d.apiKey, "--once", "--window", "today"}
	if code := run(args, &out, &errs); code != 0 {
		t.Fatalf("top exited %d:\n%s", code, errs.String())
	}
	text := out.String()
	for _, want := range []string{"account " + d.account, "over today", "Sales ", "Support ", "VIP line ", "TOTAL "} {
		if !strings.Contains(text, want) {
			t.Errorf("output lacks %q:\n%s", want, text)
		}
	}
	row := regexp.MustCompile(`(?m)^VIP line +\d+ +\S+ +\S+ +90% `)
	if !row.MatchString(text) {
		t.Errorf("the VIP line row does not show its 90 %% target:\n%s", text)
	}
	if strings.Contains(text, "\x1b[") {
		t.Errorf("escape codes in piped output:\n%q", text)
	}
}

func TestTopPrintsANewTableWhenTheFiguresChange(t *testing.T) {
	d := startDemoServer(t) // 60 calls a minute: figures change every few seconds
	var out, errs syncBuffer
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() {
		done <- top(ctx, topConfig{gatewayFlags: gatewayFlags{URL: d.wsURL, APIURL: d.apiURL, APIKey: d.apiKey}, Window: "15m", Interval: time.Second, Color: "auto"}, &out, &errs)
	}()
	tables := func() int { return strings.Count(out.String(), "ccevents top · ") }
	testkit.Until(ctx, 60*time.Second, func() bool { return tables() >= 3 })
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("top: %v\n%s", err, errs.String())
	}
	if n := tables(); n < 3 {
		t.Fatalf("%d tables within 60 s of live traffic:\n%s", n, out.String())
	}
	// Piped, it never draws in place, and each table is whole.
	if strings.Contains(out.String(), "\x1b[") {
		t.Error("escape codes in piped output")
	}
	for i, table := range strings.Split(out.String(), "ccevents top · ")[1:] {
		if !strings.Contains(table, "\nTOTAL ") {
			t.Errorf("table %d has no TOTAL row:\n%s", i, table)
		}
	}
}

func TestTopRefusesBadFlagsWithASentence(t *testing.T) {
	for _, tc := range []struct {
		args []string
		says string
	}{
		{[]string{"top"}, "give --api-key"},
		{[]string{"top", "--api-key", "k", "--window", "week"}, "--window must be 15m, 1h or today"},
		{[]string{"top", "--api-key", "k", "--interval", "10ms"}, "--interval must be at least 100ms"},
	} {
		var out, errs syncBuffer
		if code := run(tc.args, &out, &errs); code == 0 || !strings.Contains(errs.String(), tc.says) {
			t.Errorf("%v: exit %d, %q; want a failure saying %q", tc.args, code, errs.String(), tc.says)
		}
	}
}
