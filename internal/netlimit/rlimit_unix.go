//go:build unix

package netlimit

import "syscall"

// OpenFileLimit is the process's current limit of open files (the soft
// RLIMIT_NOFILE, which Go raises to the hard limit at start), or 0 when it
// cannot be read.
func OpenFileLimit() int {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil || rl.Cur > 1<<30 {
		return 0
	}
	return int(rl.Cur)
}
