package origin

import (
	"errors"
	"fmt"
	"net/netip"
	"slices"
	"strconv"
	"strings"
)

// List is a parsed Origin allow-list. The zero List allows every origin.
// A List is immutable and safe for concurrent use.
type List struct {
	all      bool
	exact    map[string]struct{} // normalised "scheme://host[:port]"
	suffixes []wildcard
}

// wildcard is "scheme://*.domain[:port]": any host ending in ".domain".
type wildcard struct {
	scheme, suffix, port string // suffix starts with "."
}

// Parse reads an allow-list. Each pattern is an origin, scheme and host
// with an optional port and nothing else ("https://app.example.com",
// "http://127.0.0.1:8080"), or the same with "*." in place of the leftmost
// labels of the host ("https://*.example.com"), which matches any host
// below that domain but not the domain itself. A pattern "*" allows every
// origin. Schemes and hosts compare case-insensitively and a default port
// (80 for http and ws, 443 for https and wss) may be written or left out.
// Empty and blank patterns are ignored, so no patterns at all (or only
// blank ones) make a List that allows every origin.
func Parse(patterns []string) (*List, error) {
	l := &List{exact: make(map[string]struct{})}
	for _, raw := range patterns {
		p := strings.TrimSpace(raw)
		if p == "" {
			continue
		}
		if p == "*" {
			l.all = true
			continue
		}
		o, err := parse(p, true)
		if err != nil {
			return nil, fmt.Errorf("allowed origin %q: %w", p, err)
		}
		if suffix, ok := strings.CutPrefix(o.host, "*"); ok {
			l.suffixes = append(l.suffixes, wildcard{scheme: o.scheme, suffix: suffix, port: o.port})
			continue
		}
		l.exact[o.String()] = struct{}{}
	}
	return l, nil // with no patterns, AllowsAll
}

// AllowsAll reports whether the List allows every origin.
func (l *List) AllowsAll() bool {
	return l == nil || l.all || (len(l.exact) == 0 && len(l.suffixes) == 0)
}

// Allowed reports whether a handshake carrying the Origin header value
// origin may proceed. An empty origin (a client that is not a browser) is
// always allowed. "null" (sandboxed frames, file: pages) and anything that
// is not a well-formed origin are refused unless the List allows all.
func (l *List) Allowed(origin string) bool {
	if origin == "" || l.AllowsAll() {
		return true
	}
	o, err := parse(origin, false)
	if err != nil {
		return false
	}
	key := o.String()
	if _, ok := l.exact[key]; ok {
		return true
	}
	for _, w := range l.suffixes {
		if o.scheme == w.scheme && o.port == w.port && len(o.host) > len(w.suffix) && strings.HasSuffix(o.host, w.suffix) {
			return true
		}
	}
	return false
}

// String returns the patterns of the List, normalised, comma-separated;
// "*" when it allows every origin.
func (l *List) String() string {
	if l.AllowsAll() {
		return "*"
	}
	var parts []string
	for k := range l.exact {
		parts = append(parts, k)
	}
	for _, w := range l.suffixes {
		parts = append(parts, origin{scheme: w.scheme, host: "*" + w.suffix, port: w.port}.String())
	}
	slices.Sort(parts)
	return strings.Join(parts, ",")
}

// origin is a parsed, normalised origin: lower case, default port removed.
type origin struct {
	scheme, host, port string
}

func (o origin) String() string {
	if o.port == "" {
		return o.scheme + "://" + o.host
	}
	return o.scheme + "://" + o.host + ":" + o.port
}

var defaultPorts = map[string]string{"http": "80", "https": "443", "ws": "80", "wss": "443"}

// parse reads "scheme://host[:port]" strictly: no path, query, user info,
// percent-escapes or non-ASCII. pattern allows a leading "*." in the host.
func parse(s string, pattern bool) (origin, error) {
	scheme, rest, ok := strings.Cut(s, "://")
	if !ok || !validScheme(scheme) {
		return origin{}, errors.New(`write it as scheme://host or scheme://host:port, e.g. https://app.example.com`)
	}
	if rest == "" {
		return origin{}, errors.New("the host is missing")
	}
	if i := strings.IndexAny(rest, "/?#@%\\ \t"); i >= 0 {
		return origin{}, errors.New("an origin is only scheme://host[:port]: no path, query, user or escapes")
	}
	var host, port string
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return origin{}, errors.New("the IPv6 address has no closing ]")
		}
		addr, err := netip.ParseAddr(rest[1:end])
		if err != nil || !addr.Is6() || addr.Zone() != "" {
			return origin{}, errors.New("the IPv6 address is not valid")
		}
		host, rest = "["+addr.String()+"]", rest[end+1:]
		if rest != "" {
			p, ok := strings.CutPrefix(rest, ":")
			if !ok {
				return origin{}, errors.New("only a :port may follow the host")
			}
			port = p
		}
	} else {
		host = rest
		if i := strings.LastIndexByte(rest, ':'); i >= 0 {
			host, port = rest[:i], rest[i+1:]
		}
		if err := checkHost(host, pattern); err != nil {
			return origin{}, err
		}
	}
	if port != "" || strings.HasSuffix(rest, ":") {
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 || port[0] == '0' {
			return origin{}, errors.New("the port must be a number from 1 to 65535")
		}
	}
	scheme, host = strings.ToLower(scheme), strings.ToLower(host)
	if port == defaultPorts[scheme] {
		port = ""
	}
	return origin{scheme: scheme, host: host, port: port}, nil
}

func validScheme(s string) bool {
	if s == "" || !isAlpha(s[0]) {
		return false
	}
	for i := 1; i < len(s); i++ {
		c := s[i]
		if !isAlpha(c) && !isDigit(c) && c != '+' && c != '-' && c != '.' {
			return false
		}
	}
	return true
}

// checkHost accepts DNS names (letters, digits, hyphens, underscores,
// dot-separated non-empty labels) and IPv4 addresses; in a pattern, a
// first label "*" that leaves at least two labels after it.
func checkHost(host string, pattern bool) error {
	if host == "" {
		return errors.New("the host is missing")
	}
	labels := strings.Split(host, ".")
	for i, lab := range labels {
		if lab == "*" && i == 0 && pattern {
			if len(labels) == 1 {
				return errors.New(`a host of "*" would match every site; the pattern * on its own allows every origin`)
			}
			if len(labels) < 3 {
				return fmt.Errorf("%q would match every site under .%s; name a domain you control, e.g. *.example.com", host, strings.Join(labels[1:], "."))
			}
			continue
		}
		if lab == "" {
			return errors.New("the host has an empty label (two dots, or a dot at an end)")
		}
		for j := 0; j < len(lab); j++ {
			c := lab[j]
			if !isAlpha(c) && !isDigit(c) && c != '-' && c != '_' {
				if c == '*' {
					return errors.New(`a wildcard may only stand for whole leftmost labels: "*.example.com"`)
				}
				return errors.New("a host may hold only letters, digits, '-', '_' and dots; write internationalised names in their xn-- form")
			}
		}
	}
	return nil
}

func isAlpha(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' }
func isDigit(c byte) bool { return c >= '0' && c <= '9' }
