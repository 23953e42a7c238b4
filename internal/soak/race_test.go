//go:build race

package soak

// raceEnabled: the race detector caps a process at 8,128 live goroutines,
// fewer than thousands of connections need, so the soak test skips itself.
const raceEnabled = true
