package deploy_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

// tool finds a command the test needs. scripts/install-test-deps.sh
// installs every one on Debian; on CI (CI set) a missing one fails the
// test, elsewhere it skips it with the reason.
func tool(t *testing.T, name string, paths ...string) string {
	t.Helper()
	for _, p := range append([]string{name}, paths...) {
		if path, err := exec.LookPath(p); err == nil {
			return path
		}
	}
	msg := fmt.Sprintf("%s is not installed: run scripts/install-test-deps.sh", name)
	if os.Getenv("CI") != "" {
		t.Fatal(msg)
	}
	t.Skip(msg)
	return ""
}

// run runs a tool and fails the test, with its output, unless it exits 0.
func run(t *testing.T, dir, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", filepath.Base(name), strings.Join(args, " "), err, out)
	}
	return string(out)
}

func TestAlertRulesPassPromtoolChecksAndUnitTests(t *testing.T) {
	promtool := tool(t, "promtool")
	run(t, "prometheus", promtool, "check", "rules", "ccevents-rules.yml")
	run(t, "prometheus", promtool, "check", "config", "prometheus.yml")
	run(t, "prometheus", promtool, "test", "rules", "ccevents-rules.test.yml")
}

// TestSystemdUnitsVerify runs systemd-analyze verify on each unit. verify
// also checks that ExecStart's program exists; this machine has no
// /usr/local/bin/ccevents, so the copy verified names an executable that
// exists here instead, and nothing else differs. systemd-analyze reports
// unknown keys and bad values but still exits 0, so any output fails.
func TestSystemdUnitsVerify(t *testing.T) {
	analyze, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not on this machine (Debian's systemd package has it)")
	}
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	units, _ := filepath.Glob("systemd/*.service")
	if len(units) != 2 {
		t.Fatalf("want the ccevents and nats-server units in deploy/systemd, found %v", units)
	}
	for _, unit := range units {
		t.Run(filepath.Base(unit), func(t *testing.T) {
			raw, err := os.ReadFile(unit)
			if err != nil {
				t.Fatal(err)
			}
			exec := regexp.MustCompile(`(?m)^ExecStart=(\S+)`)
			if !exec.Match(raw) {
				t.Fatal("no ExecStart")
			}
			local := exec.ReplaceAll(raw, []byte("ExecStart="+self))
			path := filepath.Join(t.TempDir(), filepath.Base(unit))
			if err := os.WriteFile(path, local, 0o644); err != nil {
				t.Fatal(err)
			}
			if out := run(t, "", analyze, "verify", path); strings.TrimSpace(out) != "" {
				t.Errorf("systemd-analyze verify %s:\n%s", unit, out)
			}
		})
	}
}

// linter is a command installed into tools/node_modules by
// scripts/install-test-deps.sh.
func linter(t *testing.T, name string) string {
	t.Helper()
	path, _ := filepath.Abs(filepath.Join("..", "tools", "node_modules", ".bin", name))
	if _, err := os.Stat(path); err != nil {
		tool(t, path) // skips, or fails on CI, with the hint
	}
	return path
}

func TestComposeFileLints(t *testing.T) {
	// dclint exits 0 even on errors; it prints nothing for a clean file.
	if out := run(t, ".", linter(t, "dclint"), "compose.yaml"); strings.TrimSpace(out) != "" {
		t.Errorf("dclint compose.yaml:\n%s", out)
	}
	// The NATS configuration it mounts is one the server accepts.
	if _, err := server.ProcessConfigFile(filepath.Join("compose", "nats.conf")); err != nil {
		t.Errorf("compose/nats.conf: %v", err)
	}
}

func TestDockerfileLintsAndBuildsWithTheModulesGo(t *testing.T) {
	if out := run(t, ".", linter(t, "dockerfile-utils"), "lint", "Dockerfile"); strings.TrimSpace(out) != "" {
		t.Errorf("dockerfile-utils lint Dockerfile:\n%s", out)
	}
	df, err := os.ReadFile("Dockerfile")
	if err != nil {
		t.Fatal(err)
	}
	gomod, err := os.ReadFile(filepath.Join("..", "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	goVersion := regexp.MustCompile(`(?m)^go (\S+)`).FindSubmatch(gomod)[1]
	if want := "FROM golang:" + string(goVersion) + "-"; !bytes.Contains(df, []byte(want)) {
		t.Errorf("Dockerfile should build with the Go of go.mod: %q", want)
	}
	// The -X flags name variables that exist, or the image reports no version.
	bi, err := os.ReadFile(filepath.Join("..", "internal", "buildinfo", "buildinfo.go"))
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range regexp.MustCompile(`buildinfo\.(\w+)=`).FindAllSubmatch(df, -1) {
		if !regexp.MustCompile(`var .*\b` + string(m[1]) + `\b`).Match(bi) {
			t.Errorf("Dockerfile sets buildinfo.%s, which internal/buildinfo does not declare", m[1])
		}
	}
}

// pendingMetrics are named in the dashboard and the rules before the code
// that exports them lands (issue 14's helper adds them).
var pendingMetrics = []string{"ccevents_ws_accounts_followed", "ccevents_ws_replay_duration_seconds"}

// definedMetrics are the metric names the Go code registers.
func definedMetrics(t *testing.T) []string {
	t.Helper()
	// Opts literals, descriptors, and promutil's constructors
	// (promutil.Counter("ccevents_…", …), promutil.CounterVec[string](…)).
	def := regexp.MustCompile(`(?:Name:\s*|NewDesc\(\s*|promutil\.(?:Counter|Gauge)\w*(?:\[\w+\])?\(\s*)"(ccevents_[a-z0-9_]+)"`)
	var names []string
	for _, dir := range []string{"../internal", "../cmd"} {
		err := filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
				return err
			}
			src, err := os.ReadFile(path)
			for _, m := range def.FindAllSubmatch(src, -1) {
				names = append(names, string(m[1]))
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	slices.Sort(names)
	return slices.Compact(names)
}

// referencedMetrics are the ccevents metric families an expression names.
func referencedMetrics(expr string) []string {
	var out []string
	for _, n := range regexp.MustCompile(`ccevents_[a-z0-9_]+`).FindAllString(expr, -1) {
		for _, suffix := range []string{"_bucket", "_count", "_sum"} {
			if base, ok := strings.CutSuffix(n, suffix); ok && strings.HasSuffix(base, "_seconds") {
				n = base
			}
		}
		out = append(out, n)
	}
	return out
}

type dashboard struct {
	Panels []struct {
		Title   string `json:"title"`
		Type    string `json:"type"`
		Targets []struct {
			Expr string `json:"expr"`
		} `json:"targets"`
	} `json:"panels"`
}

func loadDashboard(t *testing.T) dashboard {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join("grafana", "ccevents-dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var d dashboard
	if err := json.Unmarshal(raw, &d); err != nil {
		t.Fatalf("grafana/ccevents-dashboard.json is not valid JSON: %v", err)
	}
	return d
}

// TestDashboardQueriesAreValidPromQL hands every panel's query, with
// Grafana's variables filled in, to promtool as a recording rule.
func TestDashboardQueriesAreValidPromQL(t *testing.T) {
	promtool := tool(t, "promtool")
	d := loadDashboard(t)
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
	n := 0
	for _, p := range d.Panels {
		for _, tg := range p.Targets {
			expr := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*").Replace(tg.Expr)
			b, _ := json.Marshal(expr)
			fmt.Fprintf(&rules, "      - record: dashboard:panel%d\n        expr: %s\n", n, b)
			n++
		}
	}
	if n < 30 {
		t.Fatalf("only %d queries in the dashboard", n)
	}
	path := filepath.Join(t.TempDir(), "dashboard-rules.yml")
	if err := os.WriteFile(path, []byte(rules.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	run(t, "", promtool, "check", "rules", path)
}

// TestDashboardAndAlertsUseMetricsTheCodeExports catches a renamed or
// misspelt metric on either side: every ccevents metric a panel or an
// alert reads is registered by the code, and every metric the code
// registers has a panel.
func TestDashboardAndAlertsUseMetricsTheCodeExports(t *testing.T) {
	defined := definedMetrics(t)
	if len(defined) < 20 {
		t.Fatalf("found only %d metric definitions in the code: %v", len(defined), defined)
	}
	known := func(n string) bool {
		_, found := slices.BinarySearch(defined, n)
		return found || slices.Contains(pendingMetrics, n)
	}
	shown := map[string]bool{}
	for _, p := range loadDashboard(t).Panels {
		for _, tg := range p.Targets {
			for _, n := range referencedMetrics(tg.Expr) {
				shown[n] = true
				if !known(n) {
					t.Errorf("dashboard panel %q reads %s, which no code registers", p.Title, n)
				}
			}
		}
	}
	rules, err := os.ReadFile(filepath.Join("prometheus", "ccevents-rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(rules), "\n") {
		if expr, ok := strings.CutPrefix(strings.TrimSpace(line), "expr:"); ok {
			for _, n := range referencedMetrics(expr) {
				if !known(n) {
					t.Errorf("alert rule %s reads %s, which no code registers", strings.TrimSpace(expr), n)
				}
			}
		}
	}
	for _, n := range defined {
		if !shown[n] {
			t.Errorf("metric %s has no panel: add one to deploy/grafana/ccevents-dashboard.json", n)
		}
	}
}
