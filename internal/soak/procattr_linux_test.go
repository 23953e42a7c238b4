package soak

import "syscall"

// childAttrs makes the gateway die with the test process, so a soak
// interrupted by a signal or a timeout leaves no server holding its ports.
func childAttrs() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
