package loadtest

import (
	"errors"
	"net"
	"testing"

	"golang.org/x/sys/unix"
)

// Once its poller has closed a socket, the descriptor number may belong to
// another socket: writing a close frame or shutting it down must not reach
// it.
func TestClosedSocketIsNeverWrittenOrShutDown(t *testing.T) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fds[1])
	f := &fdConn{fd: fds[0]}
	if _, err := f.Write([]byte("ok")); err != nil {
		t.Fatalf("write to an open socket: %v", err)
	}
	f.close()
	f.close() // a second close is harmless

	// Reuse the number, as the kernel would for the next socket.
	other, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(other[0])
	defer unix.Close(other[1])

	if _, err := f.Write([]byte("stray")); !errors.Is(err, net.ErrClosed) {
		t.Errorf("write after close: %v, want net.ErrClosed", err)
	}
	f.shutdown()
	if _, err := unix.Write(other[0], []byte("x")); err != nil {
		t.Errorf("a socket opened after the close was shut down: %v", err)
	}
	buf := make([]byte, 16)
	n, err := unix.Read(other[1], buf)
	if err != nil || string(buf[:n]) != "x" {
		t.Errorf("the socket opened after the close read %q, %v; want only its own byte", buf[:n], err)
	}
}
