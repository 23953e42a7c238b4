package web_test

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/chromedp/chromedp/kb"

	"github.com/ccevents/ccevents/internal/testkit"
)

var updateScreenshots = flag.Bool("update-screenshots", false, "also write the wallboard's screenshots to docs/ (go test ./web -run TestWallboardShows -update-screenshots)")

// todayOffered sums what every queue tile shows as offered today.
const todayOffered = `[...document.querySelectorAll("#queues .tile .offered")].reduce((n, el) => n + (+el.textContent || 0), 0)`

// tile is the expression of a queue's tile.
func tile(queue string) string {
	return fmt.Sprintf(`document.querySelector('#queues .tile[data-queue-id=%q]')`, queue)
}

// The wallboard as a supervisor sees it: statistics tiles that follow the
// simulated calls, thresholds that colour a tile and are remembered, the
// keyboard reaching every queue, greyed figures with their age while the
// server is down, and the layout at a phone's width, 1080p and 4K.
func TestWallboardShowsStatisticsThresholdsAndStaleness(t *testing.T) {
	browser := findChromium(t)
	root := moduleRoot(t)
	srv := startDemoServe(t, testkit.BuildCCEvents(t), 30)
	ctx := newBrowser(t, browser, 1920, 1080)
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1920, 1080)); err != nil {
		t.Fatal(err)
	}
	signIn(t, ctx, srv)
	waitJS(t, ctx, "a tile per demo queue and the account's",
		`["sales", "support", "vip"].every(q => document.querySelector('#queues .tile[data-queue-id="' + q + '"]')) && !!document.querySelector("#total .tile")`, 30*time.Second)

	// Numbers move when the simulator moves calls: the tiles' offered
	// calls grow, and say what the REST API says.
	before := evalInt(t, ctx, todayOffered)
	waitJS(t, ctx, "offered calls grow with the simulated traffic", fmt.Sprintf(`%s > %d`, todayOffered, before+1), 60*time.Second)
	waitJS(t, ctx, "the account's tile counts what its queues count",
		`+document.querySelector('#total .tile .offered').textContent === `+todayOffered, 20*time.Second)

	// Screen readers hear each tile as a sentence, and the status.
	label, err := chromedp.Run(ctx, chromedp.Evaluate[string](tile("sales")+`.getAttribute("aria-label")`))
	if err != nil || !strings.HasPrefix(label, "Queue Sales: ") || !strings.Contains(label, "waiting, longest wait") || !strings.Contains(label, "target of 80% in 20 seconds") {
		t.Errorf("the Sales tile reads %q (%v)", label, err)
	}

	// The keyboard reaches the queue tiles in order; Enter on one opens its
	// thresholds, Escape closes them and gives the focus back.
	if err := chromedp.Do(ctx, chromedp.Focus(chromedp.CSS("#account"))); err != nil {
		t.Fatal(err)
	}
	reached := false
	for range 20 {
		if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Tab)); err != nil {
			t.Fatal(err)
		}
		if ok, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.activeElement.dataset.queueId === "sales"`)); ok {
			reached = true
			break
		}
	}
	if !reached {
		t.Fatal("20 presses of Tab from the account picker did not reach the Sales tile")
	}
	if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Enter)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "Enter on a tile opens its thresholds", `document.querySelector("#thresholds").open && document.activeElement.name === "waiting.warn"`, 5*time.Second)
	if err := chromedp.Do(ctx, chromedp.KeyEvent(kb.Escape)); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "Escape closes them and the focus goes back", `!document.querySelector("#thresholds").open && document.activeElement.dataset.queueId === "sales"`, 5*time.Second)

	// Thresholds colour a tile: red from one caller waiting, and from any
	// service level under 101 %; the board remembers them across a reload.
	if err := chromedp.Do(ctx,
		chromedp.KeyEvent(kb.Enter),
		chromedp.WaitVisible(chromedp.CSS(`#thresholds input[name="waiting.warn"]`)),
		chromedp.SetValue(chromedp.CSS(`#thresholds input[name="waiting.warn"]`), "0"),
		chromedp.SetValue(chromedp.CSS(`#thresholds input[name="waiting.alert"]`), "0"),
		chromedp.SetValue(chromedp.CSS(`#thresholds input[name="sl.warn"]`), "101"),
		chromedp.SetValue(chromedp.CSS(`#thresholds input[name="sl.alert"]`), "101"),
		chromedp.Click(chromedp.CSS("#th-save")),
	); err != nil {
		t.Fatalf("set thresholds: %v", err)
	}
	red := tile("sales") + `.dataset.level === "alert" && getComputedStyle(` + tile("sales") + `.querySelector(".waiting")).color === "rgb(255, 107, 97)"`
	waitJS(t, ctx, "the Sales tile turns red", red, 5*time.Second)
	if other, _ := chromedp.Run(ctx, chromedp.Evaluate[string](tile("support")+`.querySelector('[data-metric="waiting"]').dataset.level`)); other == "alert" && evalInt(t, ctx, `+`+tile("support")+`.querySelector(".waiting").textContent`) < 5 {
		t.Error("the Support tile turned red with fewer than 5 waiting: thresholds leaked to another queue")
	}
	if err := chromedp.Do(ctx, chromedp.Reload()); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "live again after the reload", `document.querySelector("#status").dataset.state === "live"`, 30*time.Second)
	waitJS(t, ctx, "the Sales tile is still red after a reload", red, 20*time.Second)
	// Back to the defaults (from the queue's own target) for the pictures.
	if err := chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(`#queues .tile[data-queue-id="sales"] .gear`)),
		chromedp.Click(chromedp.CSS("#th-reset")),
		chromedp.Click(chromedp.CSS("#th-save")),
	); err != nil {
		t.Fatal(err)
	}
	waitJS(t, ctx, "defaults again", tile("sales")+`.querySelector('[data-metric="sl"]').dataset.level !== "alert" || +`+tile("sales")+`.querySelector(".sl").textContent.replace("%", "") < 80`, 5*time.Second)

	// Let the demo put a few people on calls for telling pictures, then
	// take them at a phone's width, 1080p and 4K (TV mode for the TVs).
	testkit.Until(ctx, 20*time.Second, func() bool {
		busy, _ := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.querySelectorAll('.cell[data-state="busy"], .cell[data-state="wrapup"]').length >= 2`))
		return busy
	})
	shots := []struct {
		name          string
		width, height int64
		tv            bool
	}{
		{"wallboard-420.png", 420, 900, false},
		{"wallboard-1080p.png", 1920, 1080, true},
		{"wallboard-4k.png", 3840, 2160, true},
	}
	for _, s := range shots {
		if err := chromedp.Do(ctx, chromedp.EmulateViewport(s.width, s.height)); err != nil {
			t.Fatal(err)
		}
		setTV(t, ctx, s.tv)
		// What a person must see at every size: the connection's state and
		// every queue's waiting callers, without scrolling sideways.
		waitJS(t, ctx, s.name+": status on screen and no sideways scrolling", `(() => {
			const r = document.querySelector("#status").getBoundingClientRect();
			return r.right <= innerWidth && r.bottom <= innerHeight && r.width > 0 &&
				document.documentElement.scrollWidth <= innerWidth;
		})()`, 5*time.Second)
		if s.tv {
			// Legible across a room: the waiting figures at least 4.5 % of
			// the screen's height at 1080p and at 4K alike.
			h := evalInt(t, ctx, `Math.round(parseFloat(getComputedStyle(document.querySelector("#queues .waiting")).fontSize))`)
			if min := int(s.height) * 45 / 1000; h < min {
				t.Errorf("%s: waiting figures %d px high, want at least %d", s.name, h, min)
			}
			waitJS(t, ctx, s.name+": the queues fit on the screen", `document.querySelector("#queues").getBoundingClientRect().bottom <= innerHeight`, 5*time.Second)
		}
		time.Sleep(300 * time.Millisecond) // let the bars finish their transition
		shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
		if err != nil {
			t.Fatalf("screenshot: %v", err)
		}
		saveScreenshot(t, root, s.name, shot)
	}
	if err := chromedp.Do(ctx, chromedp.EmulateViewport(1920, 1080)); err != nil {
		t.Fatal(err)
	}

	// The server stops: every figure greys out and the age of the last
	// update shows, and grows, until it comes back.
	srv.stop(t)
	waitJS(t, ctx, "stale when the server stops", `document.body.dataset.stale === "true" && !document.querySelector("#stale").hidden`, 20*time.Second)
	waitJS(t, ctx, "numbers greyed while stale", `[...document.querySelectorAll(".tile .num")].every(el => getComputedStyle(el).color === "rgb(110, 118, 129)")`, 5*time.Second)
	first := evalInt(t, ctx, `+document.querySelector("#stale").dataset.ageMs`)
	waitJS(t, ctx, "the age of the last update grows", fmt.Sprintf(`+document.querySelector("#stale").dataset.ageMs > %d + 1500 && /these figures are \d+:\d\d old/.test(document.querySelector("#stale").textContent)`, first), 10*time.Second)
	shot, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err == nil {
		saveScreenshot(t, root, "wallboard-stale.png", shot)
	}
	srv.start(t)
	waitJS(t, ctx, "live and current again after the restart", `document.querySelector("#status").dataset.state === "live" && document.body.dataset.stale === "false"`, 45*time.Second)
}

func setTV(t *testing.T, ctx context.Context, on bool) {
	t.Helper()
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](fmt.Sprintf(`(() => {
		if (document.documentElement.classList.contains("tv") !== %v) document.querySelector("#tv").click();
		return true;
	})()`, on))); err != nil {
		t.Fatal(err)
	}
}

// saveScreenshot writes a picture to test-artifacts/ and, with
// -update-screenshots, to docs/ where the README shows it.
func saveScreenshot(t *testing.T, root, name string, png []byte) {
	t.Helper()
	if !strings.HasPrefix(string(png), "\x89PNG") {
		t.Fatalf("%s is not a PNG", name)
	}
	dirs := []string{filepath.Join(root, "test-artifacts")}
	if *updateScreenshots && name != "wallboard-stale.png" {
		dirs = append(dirs, filepath.Join(root, "docs"))
	}
	for _, dir := range dirs {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), png, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	t.Logf("screenshot: %s", filepath.Join(dirs[len(dirs)-1], name))
}
