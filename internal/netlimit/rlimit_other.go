//go:build !unix

package netlimit

// OpenFileLimit is 0 where the open file limit is not a per-process number
// ccevents can read: listeners then have no share unless configured.
func OpenFileLimit() int { return 0 }
