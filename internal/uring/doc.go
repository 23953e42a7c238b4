// Package uring is the small part of Linux's io_uring that ccevents uses:
// one ring per goroutine, sends and receives on non-blocking sockets
// submitted many at a time, each completing during the submission itself.
//
// On this kind of machine a syscall's entry and exit cost more than the
// work of a small send on loopback, and the gateway makes one send per
// delivery when events are sparse; one io_uring_enter carrying the sends of
// dozens of connections pays that entry once. No io_uring library for Go
// is published in a form we can take as a dependency (see
// docs/decisions.md), so this package holds exactly what is needed:
// set-up, preparing SEND, SENDMSG and RECV entries, submitting, and
// reading completions. It exists only on Linux; callers keep their plain syscall
// path for other systems and for kernels that refuse io_uring.
package uring

import "errors"

// ErrUnavailable wraps every reason a ring cannot be set up: not Linux, a
// kernel too old, io_uring turned off (kernel.io_uring_disabled), or
// forbidden by a seccomp filter, as in containers with Docker's default
// profile.
var ErrUnavailable = errors.New("io_uring is not available")
