package binding

import "strings"

// FilterCovering returns one NATS subject filter that covers every binding
// in bs, all of account: a stream read takes a single filter. That is the
// bus filter of one of the bindings when it covers the others' (so the
// read fetches no more than it must), and the account's whole filter
// otherwise; the reader still matches each event against the bindings.
func FilterCovering(account string, bs []Binding) string {
	for _, a := range bs {
		fa := a.BusFilter()
		covers := true
		for _, b := range bs {
			if !filterCovers(fa, b.BusFilter()) {
				covers = false
				break
			}
		}
		if covers {
			return fa
		}
	}
	return AccountFilter(account)
}

// filterCovers reports whether NATS filter f matches every subject filter
// g matches: '*' in f takes any one token of g, '*' included; '>' in f
// takes one or more, '>' included; a literal takes only itself, and a
// wildcard of g only a wildcard of f as wide.
func filterCovers(f, g string) bool {
	for {
		ft, frest, fmore := strings.Cut(f, ".")
		if ft == ">" {
			return g != ""
		}
		gt, grest, gmore := strings.Cut(g, ".")
		switch {
		case g == "", gt == ">", ft != "*" && ft != gt:
			return false
		case !fmore || !gmore:
			return fmore == gmore
		}
		f, g = frest, grest
	}
}
