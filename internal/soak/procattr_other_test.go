//go:build !linux

package soak

import "syscall"

// childAttrs: only Linux can tie the gateway's life to the test process's.
func childAttrs() *syscall.SysProcAttr { return nil }
