package main

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/peterbourgon/ff/v3"
)

// byteSize is a flag value that accepts 1048576, 512KiB, 64MiB or 1GiB.
type byteSize int64

func (b *byteSize) String() string { return formatBytes(int64(*b)) }

func (b *byteSize) Set(s string) error {
	n, err := parseBytes(s)
	if err != nil {
		return err
	}
	*b = byteSize(n)
	return nil
}

var byteUnits = []struct {
	suffix string
	mult   int64
}{{"TiB", 1 << 40}, {"GiB", 1 << 30}, {"MiB", 1 << 20}, {"KiB", 1 << 10}, {"TB", 1e12}, {"GB", 1e9}, {"MB", 1e6}, {"KB", 1e3}, {"B", 1}}

func parseBytes(s string) (int64, error) {
	t := strings.TrimSpace(s)
	mult := int64(1)
	for _, u := range byteUnits {
		if strings.HasSuffix(strings.ToUpper(t), strings.ToUpper(u.suffix)) {
			t, mult = strings.TrimSpace(t[:len(t)-len(u.suffix)]), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(t, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("%q is not a size; use a number of bytes or a unit such as 64MiB or 1GiB", s)
	}
	return n * mult, nil
}

func formatBytes(n int64) string {
	for _, u := range byteUnits[:4] {
		if n >= u.mult && n%u.mult == 0 {
			return strconv.FormatInt(n/u.mult, 10) + u.suffix
		}
	}
	return strconv.FormatInt(n, 10)
}

// stringList is a comma-separated flag value.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(s string) error {
	*l = nil
	for _, part := range strings.Split(s, ",") {
		if p := strings.TrimSpace(part); p != "" {
			*l = append(*l, p)
		}
	}
	return nil
}

// configFileParser reads a --config file of "flag value" lines, as
// ff.PlainParser does (a tab may separate them too), and names the file
// and line of a line it cannot use, with the setting probably meant when
// the name is a typo.
func configFileParser(fs *flag.FlagSet) ff.ConfigFileParser {
	return func(r io.Reader, set func(name, value string) error) error {
		s := bufio.NewScanner(r)
		for n := 1; s.Scan(); n++ {
			line := strings.Replace(strings.TrimSpace(s.Text()), "\t", " ", 1)
			err := ff.PlainParser(strings.NewReader(line), func(name, value string) error {
				err := set(name, value)
				switch {
				case err == nil:
					return nil
				case fs.Lookup(name) == nil:
					return fmt.Errorf("unknown setting %q%s", name, didYouMean(fs, name))
				case errors.Unwrap(err) != nil:
					err = errors.Unwrap(err) // drop ff's "error setting flag … from config file"
				}
				return fmt.Errorf("%s: %w", name, err)
			})
			if err != nil {
				return fmt.Errorf("config file %s, line %d: %w", fs.Lookup("config").Value, n, err)
			}
		}
		if err := s.Err(); err != nil {
			return fmt.Errorf("read config file %s: %w", fs.Lookup("config").Value, err)
		}
		return nil
	}
}

// didYouMean names the flag of fs closest to a mistyped name, when one is
// close enough to be what was meant.
func didYouMean(fs *flag.FlagSet, name string) string {
	best, bestDist := "", 3 // at most two edits away
	fs.VisitAll(func(f *flag.Flag) {
		if d := editDistance(strings.ToLower(name), f.Name); d < bestDist {
			best, bestDist = f.Name, d
		}
	})
	if best == "" {
		return "; `ccevents serve --help` lists every setting"
	}
	return fmt.Sprintf("; did you mean %s?", best)
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}
