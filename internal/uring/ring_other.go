//go:build !linux

package uring

import (
	"fmt"
	"runtime"
)

// Ring exists only on Linux.
type Ring struct{}

// New reports that io_uring is Linux's.
func New(entries uint32) (*Ring, error) {
	return nil, fmt.Errorf("%w on %s", ErrUnavailable, runtime.GOOS)
}

// Close does nothing: no ring is ever set up here.
func (r *Ring) Close() error { return nil }
