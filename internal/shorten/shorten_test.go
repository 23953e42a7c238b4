package shorten

import (
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCutsNeverSplitACharacter(t *testing.T) {
	long := strings.Repeat("a", 70)
	for _, tc := range []struct {
		name        string
		s           string
		n           int
		prefix, str string
		quote       string
	}{
		{"short text is kept", "queue", 64, "queue", "queue", `"queue"`},
		{"text of exactly n bytes is kept", "héllo", 6, "héllo", "héllo", `"héllo"`},
		{"ASCII is cut at n", long, 64, long[:64], long[:64] + "…", `"` + long[:64] + `"…`},
		{"a two-byte character across the cut is left out", "abcé", 4, "abc", "abc…", `"abc"…`},
		{"a four-byte character across the cut is left out", "ab😀cd", 5, "ab", "ab…", `"ab"…`},
		{"a character ending at the cut is kept", "ab😀cd", 6, "ab😀", "ab😀…", `"ab😀"…`},
		{"a cut before the first character leaves nothing", "😀", 2, "", "…", `""…`},
		{"zero bytes", "abc", 0, "", "…", `""…`},
		{"a negative length is zero", "abc", -1, "", "…", `""…`},
		{"control characters are escaped when quoted", "a\nb\x00c", 3, "a\nb", "a\nb…", `"a\nb"…`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Prefix(tc.s, tc.n); got != tc.prefix {
				t.Errorf("Prefix(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.prefix)
			}
			if got := String(tc.s, tc.n); got != tc.str {
				t.Errorf("String(%q, %d) = %q, want %q", tc.s, tc.n, got, tc.str)
			}
			if got := Quote(tc.s, tc.n); got != tc.quote {
				t.Errorf("Quote(%q, %d) = %s, want %s", tc.s, tc.n, got, tc.quote)
			}
		})
	}
}

func TestPrefixOfValidTextIsValid(t *testing.T) {
	s := strings.Repeat("aé€😀", 20)
	for n := range len(s) + 2 {
		p := Prefix(s, n)
		if len(p) > n || !utf8.ValidString(p) || !strings.HasPrefix(s, p) {
			t.Fatalf("Prefix(s, %d) = %q: longer than %d bytes, invalid UTF-8 or not a prefix", n, p, n)
		}
		if n < len(s) && len(p) < n-3 {
			t.Fatalf("Prefix(s, %d) = %d bytes: cut more than one character short", n, len(p))
		}
	}
}
