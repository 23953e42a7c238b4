package api_test

import (
	"strings"
	"testing"

	"github.com/ccevents/ccevents/internal/promutil"
)

// requestCount is how many requests ccevents_http_request_duration_seconds
// counted with exactly these labels.
func (f *fixture) requestCount(t *testing.T, method, route, code string) uint64 {
	t.Helper()
	n, _, err := promutil.Sample(f.reg, "ccevents_http_request_duration_seconds", "method", method, "route", route, "code", code)
	if err != nil {
		t.Fatal(err)
	}
	return uint64(n)
}

func TestRequestDurationsAreLabelledWithTheRouteNeverThePath(t *testing.T) {
	f := newFixture(t)
	f.do(t, "GET", "/v2/accounts/"+f.root.ID, f.rootTok, "")
	f.do(t, "GET", "/v2/accounts/"+f.child.ID, f.childTok, "")
	f.do(t, "GET", "/v2/accounts/"+f.root.ID, f.childTok, "")
	f.do(t, "GET", "/v2/no/such/thing", "", "")
	f.do(t, "BREW", "/healthz", "", "")
	tests := []struct {
		method, route, code string
		want                uint64
	}{
		{"GET", "/v2/accounts/{ACCOUNT_ID}", "200", 2},
		{"GET", "/v2/accounts/{ACCOUNT_ID}", "403", 1},
		{"GET", "/", "404", 1},
		{"other", "/", "404", 1}, // any method reaches the catch-all
	}
	for _, tc := range tests {
		if got := f.requestCount(t, tc.method, tc.route, tc.code); got != tc.want {
			t.Errorf("%s %s %s: %d requests counted, want %d", tc.method, tc.route, tc.code, got, tc.want)
		}
	}
	mfs, _ := f.reg.Gather()
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			for _, l := range m.GetLabel() {
				if v := l.GetValue(); len(v) >= 32 && (strings.Contains(v, f.root.ID) || strings.Contains(v, f.child.ID)) {
					t.Errorf("%s has an account id in label %s=%q", mf.GetName(), l.GetName(), v)
				}
			}
		}
	}
}
