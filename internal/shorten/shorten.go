// Package shorten cuts text that a message quotes (an error naming what a
// client sent, a websocket close reason, a log line) to a bounded length,
// never in the middle of a UTF-8 encoded character, so a message stays
// readable and valid UTF-8 however long the input was.
//
// shorten only cuts strings; it imports nothing of the project, so every
// package may use it.
package shorten

import (
	"strconv"
	"unicode/utf8"
)

// Ellipsis marks where String and Quote cut text.
const Ellipsis = "…"

// Prefix returns the longest prefix of s that is at most n bytes long and
// does not end inside a UTF-8 encoded character.
func Prefix(s string, n int) string {
	if len(s) <= n {
		return s
	}
	n = max(n, 0)
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}

// String returns s when it is at most n bytes long, else its Prefix of n
// bytes followed by Ellipsis.
func String(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return Prefix(s, n) + Ellipsis
}

// Quote returns s quoted as strconv.Quote does. When s is longer than n
// bytes only its Prefix of n bytes is quoted, and Ellipsis follows the
// closing quote, so the reader sees both what was sent and that it was cut.
func Quote(s string, n int) string {
	if len(s) <= n {
		return strconv.Quote(s)
	}
	return strconv.Quote(Prefix(s, n)) + Ellipsis
}
