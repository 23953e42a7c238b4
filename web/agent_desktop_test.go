package web_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/ccevents/ccevents/internal/testkit"
)

// findNode returns Node.js, which serves the agent desktop example. As
// with Chromium, CI must have it (scripts/install-test-deps.sh).
func findNode(t *testing.T) string {
	t.Helper()
	if p, err := exec.LookPath("node"); err == nil {
		return p
	}
	if os.Getenv("CI") != "" {
		t.Fatal("node is not installed; CI must install it: apt-get install -y nodejs")
	}
	t.Skip("node is not installed; install it to run the agent desktop example's browser test")
	return ""
}

// The agent desktop example of the TypeScript client
// (clients/typescript/examples/agent-desktop) in Chromium against a real
// `ccevents serve --demo`: it shows a recipient from the snapshot, their
// queues, and follows the state changes its own buttons cause through the
// websocket.
func TestAgentDesktopExampleFollowsARecipient(t *testing.T) {
	browser := findChromium(t)
	node := findNode(t)
	root := moduleRoot(t)
	bin := testkit.BuildCCEvents(t)

	dataDir := t.TempDir()
	logPath := filepath.Join(t.TempDir(), "serve.log")
	wsAddr := testkit.FreeAddr(t)
	apiAddr := testkit.FreeAddr(t)
	wsURL, apiURL := "ws://"+wsAddr, "http://"+apiAddr
	srv := startProcess(t, bin, []string{"serve", "--demo", "--demo-rate", "2", "--memory", "--data-dir", dataDir,
		"--ws-addr", wsAddr, "--api-addr", apiAddr, "--nats-listen", "", "--log-level", "warn"}, logPath)
	demo := waitReady(t, srv, apiURL, dataDir)

	pageAddr := testkit.FreeAddr(t)
	_, pagePort, _ := net.SplitHostPort(pageAddr)
	pageURL := "http://" + pageAddr + "/"
	pageLog := filepath.Join(t.TempDir(), "page.log")
	page := startProcess(t, node, []string{filepath.Join(root, "clients/typescript/examples/agent-desktop/serve.mjs"),
		"--api", apiURL, "--port", pagePort}, pageLog)
	testkit.EventuallyNoError(t, 30*time.Second, "the example's server to answer", func() error {
		page.failIfExited(t, "serve.mjs")
		return answers(pageURL)
	})

	ctx := newBrowser(t, browser, 900, 1000)
	if err := chromedp.Do(ctx,
		chromedp.Navigate(pageURL+"?ws="+wsURL),
		chromedp.WaitVisible(chromedp.CSS("#key")),
		chromedp.SendKeys(chromedp.CSS("#key"), demo.APIKey),
		chromedp.Click(chromedp.CSS("#login button[type=submit]")),
	); err != nil {
		t.Fatalf("start the desktop: %v", err)
	}
	const state = `document.querySelector("#state").dataset.state`
	waitJS(t, ctx, "a recipient and their queues shown from the snapshot",
		`!document.querySelector("#desk").hidden && !!`+state+` && document.querySelectorAll("#queues li").length > 0`, 30*time.Second)
	waitJS(t, ctx, "connected", `document.querySelector("#conn").dataset.state === "connected"`, 30*time.Second)

	// The buttons change the recipient through the REST API; the page
	// learns of it only through the websocket. The demo's simulator sends
	// agents away and back too, so go ready first, then away.
	click := func(id string) {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Click(chromedp.CSS("#"+id))); err != nil {
			t.Fatalf("click %s: %v", id, err)
		}
	}
	click("ready")
	// The simulator logs agents out for up to 30 s (a Ready clicked then
	// is refused), so this waits longer than that.
	waitJS(t, ctx, "ready after clicking Ready", state+` !== "away" && `+state+` !== "logged_out"`, 90*time.Second)
	awayByButton(t, ctx, click)
	click("ready")
	waitJS(t, ctx, "back from away after clicking Ready", state+` !== "away"`, 30*time.Second)

	shot, err := chromedp.Run(ctx, chromedp.FullScreenshot(100))
	if err != nil {
		t.Fatalf("screenshot: %v", err)
	}
	out := filepath.Join(root, "test-artifacts", "agent-desktop.png")
	if err := os.MkdirAll(filepath.Dir(out), 0o755); err == nil {
		_ = os.WriteFile(out, shot, 0o644)
		t.Logf("screenshot: %s", out)
	}
}

// awayByButton clicks Away on a recipient off calls and waits until the page
// shows the recipient.away event that click caused, and the away state.
//
// The demo's simulator moves the same recipients: it offers them calls,
// starts external calls, sends them away and brings them back. An Away
// clicked while the recipient is on a call takes effect only when the call
// ends (the engine's rule), and that may be minutes away; so the click
// waits until the recipient is off calls (ready, ringing or in wrap-up,
// where Away takes effect at once), and a click that still met a call, or
// that the simulator undid, is tried again.
func awayByButton(t *testing.T, ctx context.Context, click func(id string)) {
	t.Helper()
	const (
		state = `document.querySelector("#state").dataset.state`
		// The highest event sequence in the page's log, of one event kind
		// or of all.
		lastSeq = `((kind) => Math.max(0, ...[...document.querySelectorAll("#log li")].filter((li) => !kind || li.dataset.event === kind).map((li) => +(li.textContent.match(/#(\d+)/)?.[1] ?? 0))))`
	)
	eval := func(expr string) string {
		v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
		if err != nil {
			t.Fatalf("evaluate %s: %v", expr, err)
		}
		return v
	}
	testkit.EventuallyNoError(t, 3*time.Minute, "away after clicking Away on a recipient off calls", func() error {
		switch now := eval(state); now {
		case "ready", "offered", "wrapup":
		case "away":
			click("ready") // the simulator sent them away: bring them back first
			return errors.New("the recipient was away; clicked Ready")
		default:
			return fmt.Errorf("the recipient is %s, not off calls", now)
		}
		before := eval(`String(` + lastSeq + `(""))`)
		click("away")
		awaySeen := `(` + state + ` === "away" && ` + lastSeq + `("recipient.away") > ` + before + `)`
		if testkit.Until(ctx, 20*time.Second, func() bool { return eval(`String(`+awaySeen+`)`) == "true" }) {
			return nil
		}
		return fmt.Errorf("no recipient.away after event #%s within 20 s of the click; the recipient is %s", before, eval(state))
	})
}
