package origin

import (
	"strings"
	"testing"
)

func TestAllowed(t *testing.T) {
	tests := []struct {
		name     string
		patterns []string
		origin   string
		want     bool
	}{
		// No list: every origin, and clients that send none.
		{"empty list allows any origin", nil, "https://evil.example.net", true},
		{"blank patterns allow any origin", []string{"", "  "}, "https://evil.example.net", true},
		{"star allows any origin", []string{"*"}, "null", true},
		{"no Origin header is allowed", []string{"https://app.example.com"}, "", true},

		// Exact origins.
		{"exact match", []string{"https://app.example.com"}, "https://app.example.com", true},
		{"other host refused", []string{"https://app.example.com"}, "https://evil.example.com", false},
		{"scheme differs", []string{"https://app.example.com"}, "http://app.example.com", false},
		{"case of scheme and host ignored", []string{"https://App.Example.com"}, "HTTPS://app.EXAMPLE.com", true},
		{"default port written in the origin", []string{"https://app.example.com"}, "https://app.example.com:443", true},
		{"default port written in the pattern", []string{"http://app.example.com:80"}, "http://app.example.com", true},
		{"other port refused", []string{"https://app.example.com"}, "https://app.example.com:8443", false},
		{"explicit port matches", []string{"http://127.0.0.1:8080"}, "http://127.0.0.1:8080", true},
		{"explicit port differs", []string{"http://127.0.0.1:8080"}, "http://127.0.0.1:8081", false},
		{"IPv6 origin", []string{"http://[::1]:3000"}, "http://[0:0::1]:3000", true},
		{"one of several", []string{"https://a.example.com", "https://b.example.com"}, "https://b.example.com", true},

		// Wildcards.
		{"wildcard matches a subdomain", []string{"https://*.example.com"}, "https://app.example.com", true},
		{"wildcard matches a deeper subdomain", []string{"https://*.example.com"}, "https://a.b.example.com", true},
		{"wildcard does not match the domain itself", []string{"https://*.example.com"}, "https://example.com", false},
		{"wildcard is scheme-aware", []string{"https://*.example.com"}, "http://app.example.com", false},
		{"wildcard is port-aware", []string{"https://*.example.com"}, "https://app.example.com:8443", false},
		{"wildcard with a port", []string{"https://*.example.com:8443"}, "https://app.example.com:8443", true},
		{"look-alike suffix refused", []string{"https://*.example.com"}, "https://evilexample.com", false},
		{"domain as a prefix refused", []string{"https://*.example.com"}, "https://app.example.com.evil.net", false},
		{"a wildcard sent as an origin refused", []string{"https://*.example.com"}, "https://*.example.com", false},
		{"empty label before the suffix refused", []string{"https://*.example.com"}, "https://.example.com", false},

		// Malformed or tricky origins are refused when a list is set.
		{"null origin refused", []string{"https://app.example.com"}, "null", false},
		{"path refused", []string{"https://app.example.com"}, "https://app.example.com/", false},
		{"user info refused", []string{"https://app.example.com"}, "https://evil@app.example.com", false},
		{"user info hiding the host refused", []string{"https://app.example.com"}, "https://app.example.com@evil.net", false},
		{"percent escapes refused", []string{"https://app.example.com"}, "https://app%2eexample.com", false},
		{"trailing dot refused", []string{"https://app.example.com"}, "https://app.example.com.", false},
		{"unicode look-alike refused", []string{"https://app.example.com"}, "https://аpp.example.com", false},
		{"no scheme refused", []string{"https://app.example.com"}, "app.example.com", false},
		{"empty port refused", []string{"https://app.example.com"}, "https://app.example.com:", false},
		{"port zero-padded refused", []string{"https://app.example.com:443"}, "https://app.example.com:0443", false},
		{"whitespace refused", []string{"https://app.example.com"}, " https://app.example.com", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			l, err := Parse(tt.patterns)
			if err != nil {
				t.Fatalf("Parse(%q): %v", tt.patterns, err)
			}
			if got := l.Allowed(tt.origin); got != tt.want {
				t.Fatalf("Allowed(%q) with %q = %v, want %v", tt.origin, tt.patterns, got, tt.want)
			}
		})
	}
}

func TestParseRefusesBadPatterns(t *testing.T) {
	tests := []struct{ pattern, wantErr string }{
		{"app.example.com", "scheme://host"},
		{"https://", "host is missing"},
		{"https://app.example.com/path", "no path"},
		{"https://*.com", "every site under .com"},
		{"https://*", `the pattern * on its own`},
		{"https://app.*.example.com", "whole leftmost labels"},
		{"https://*app.example.com", "whole leftmost labels"},
		{"https://app..example.com", "empty label"},
		{"https://app.example.com:99999", "port"},
		{"https://app.example.com:http", "port"},
		{"https://[::1", "closing ]"},
		{"https://[zz::1]", "IPv6"},
		{"https://bücher.example", "xn--"},
		{"1https://app.example.com", "scheme://host"},
	}
	for _, tt := range tests {
		t.Run(tt.pattern, func(t *testing.T) {
			_, err := Parse([]string{tt.pattern})
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Parse(%q) = %v, want an error mentioning %q", tt.pattern, err, tt.wantErr)
			}
			if !strings.Contains(err.Error(), tt.pattern) {
				t.Fatalf("error %q does not name the pattern", err)
			}
		})
	}
}

func TestStringListsNormalisedPatterns(t *testing.T) {
	tests := []struct {
		patterns []string
		want     string
	}{
		{nil, "*"},
		{[]string{"*", "https://a.example.com"}, "*"},
		{[]string{"HTTPS://A.example.com:443", "https://*.Example.org:8443", " http://x.example.com:80 "},
			"http://x.example.com,https://*.example.org:8443,https://a.example.com"},
	}
	for _, tt := range tests {
		l, err := Parse(tt.patterns)
		if err != nil {
			t.Fatal(err)
		}
		if got := l.String(); got != tt.want {
			t.Errorf("Parse(%q).String() = %q, want %q", tt.patterns, got, tt.want)
		}
		if got := l.AllowsAll(); got != (tt.want == "*") {
			t.Errorf("Parse(%q).AllowsAll() = %v", tt.patterns, got)
		}
	}
}

func TestZeroAndNilListAllowEverything(t *testing.T) {
	var zero List
	var nilList *List
	for _, l := range []*List{&zero, nilList} {
		if !l.Allowed("https://anything.example") || !l.Allowed("null") {
			t.Fatalf("%#v refused an origin", l)
		}
	}
}

func FuzzAllowed(f *testing.F) {
	for _, s := range []string{"https://app.example.com", "https://a.b.example.com:443", "null", "http://[::1]:80", "https://app.example.com@evil", "https://*.example.com", ""} {
		f.Add(s)
	}
	l, err := Parse([]string{"https://app.example.com", "https://*.example.com", "http://[::1]:3000"})
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, o string) {
		ok := l.Allowed(o)
		if !ok || o == "" {
			return
		}
		// Whatever is allowed is an https origin at example.com or the
		// local IPv6 address, never anything else.
		p, err := parse(o, false)
		if err != nil {
			t.Fatalf("Allowed(%q) but it does not parse: %v", o, err)
		}
		if !(p.scheme == "https" && p.port == "" && (p.host == "app.example.com" || strings.HasSuffix(p.host, ".example.com"))) &&
			!(p.scheme == "http" && p.host == "[::1]" && p.port == "3000") {
			t.Fatalf("Allowed(%q) = true, parsed as %+v", o, p)
		}
	})
}
