package uring

import (
	"bytes"
	"errors"
	"net"
	"syscall"
	"testing"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/ccevents/ccevents/internal/testkit"
)

// newRing sets a ring up or skips the test where the kernel refuses
// io_uring (a seccomp filter, kernel.io_uring_disabled).
func newRing(t testing.TB, entries uint32) *Ring {
	t.Helper()
	r, err := New(entries)
	if errors.Is(err, ErrUnavailable) {
		t.Skipf("io_uring refused here: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return r
}

// socketPair returns the two ends of a loopback TCP connection as raw
// non-blocking descriptors, closed when the test ends.
func socketPair(t testing.TB) (a, b int) {
	t.Helper()
	dialed, accepted := testkit.TCPPair(t)
	fd := func(c *net.TCPConn) int {
		f, err := c.File() // a blocking duplicate
		if err != nil {
			t.Fatal(err)
		}
		c.Close()
		n := int(f.Fd())
		if err := unix.SetNonblock(n, true); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { f.Close() })
		return n
	}
	return fd(dialed), fd(accepted)
}

func iovecs(bufs ...[]byte) []unix.Iovec {
	iov := make([]unix.Iovec, len(bufs))
	for i, b := range bufs {
		iov[i].Base = unsafe.SliceData(b)
		iov[i].SetLen(len(b))
	}
	return iov
}

func msghdr(iov []unix.Iovec) *unix.Msghdr {
	m := &unix.Msghdr{Iov: &iov[0]}
	m.SetIovlen(len(iov))
	return m
}

func submitAndReap(t *testing.T, r *Ring, want int) []Completion {
	t.Helper()
	var got []Completion
	submitAll(t, r, make([]Completion, 8), func(c Completion) { got = append(got, c) })
	if len(got) != want {
		t.Fatalf("%d completions, want %d", len(got), want)
	}
	return got
}

// submitAll submits what is prepared and hands every completion to each,
// reaping into buf.
func submitAll(tb testing.TB, r *Ring, buf []Completion, each func(Completion)) {
	tb.Helper()
	want := int(r.prepared)
	if n, err := r.Submit(); err != nil || n != want {
		tb.Fatalf("Submit = %d, %v; want %d", n, err, want)
	}
	for r.InFlight() > 0 {
		cs, err := r.Reap(buf, true)
		if err != nil {
			tb.Fatal(err)
		}
		for _, c := range cs {
			each(c)
		}
	}
}

func TestSendsThenRecvMoveTheBytesInOrder(t *testing.T) {
	r := newRing(t, 8)
	a, b := socketPair(t)
	first, second := []byte("hello, "), []byte("websocket")
	iov := iovecs(first, second)
	if !r.PrepareSendmsg(a, msghdr(iov), unix.MSG_DONTWAIT, 7) {
		t.Fatal("ring full with nothing prepared")
	}
	third := []byte("!")
	r.PrepareSend(a, third, unix.MSG_DONTWAIT, 8)
	got := map[uint64]int32{}
	for _, c := range submitAndReap(t, r, 2) {
		got[c.UserData] = c.Res
	}
	if int(got[7]) != len(first)+len(second) || int(got[8]) != len(third) {
		t.Fatalf("send completions = %v", got)
	}

	in := make([]byte, 64)
	var n int
	for n < len(first)+len(second)+len(third) { // loopback delivers at once, but may split
		r.PrepareRecv(b, in[n:], unix.MSG_DONTWAIT, 9)
		c := submitAndReap(t, r, 1)[0]
		if c.Err() != nil && !errors.Is(c.Err(), syscall.EAGAIN) {
			t.Fatalf("recv: %v", c.Err())
		}
		n += max(int(c.Res), 0)
	}
	if !bytes.Equal(in[:n], []byte("hello, websocket!")) {
		t.Fatalf("received %q", in[:n])
	}
}

func TestCompletionsTellEachEntryWhatHappened(t *testing.T) {
	r := newRing(t, 8)
	a, b := socketPair(t)
	payload := []byte("x")
	iov := iovecs(payload)
	empty := make([]byte, 16)
	r.PrepareRecv(b, empty, unix.MSG_DONTWAIT, 1)              // nothing sent yet
	r.PrepareSendmsg(1<<20, msghdr(iov), unix.MSG_DONTWAIT, 2) // no such descriptor
	r.PrepareSendmsg(a, msghdr(iov), unix.MSG_DONTWAIT, 3)     // still sent
	got := map[uint64]error{}
	for _, c := range submitAndReap(t, r, 3) {
		got[c.UserData] = c.Err()
	}
	for _, tc := range []struct {
		entry uint64
		want  error
	}{
		{1, syscall.EAGAIN},
		{2, syscall.EBADF},
		{3, nil},
	} {
		if !errors.Is(got[tc.entry], tc.want) {
			t.Errorf("entry %d: %v, want %v", tc.entry, got[tc.entry], tc.want)
		}
	}
}

func TestAFullSocketCompletesWithEAGAINInsteadOfWaiting(t *testing.T) {
	r := newRing(t, 8)
	a, _ := socketPair(t)
	if err := unix.SetsockoptInt(a, unix.SOL_SOCKET, unix.SO_SNDBUF, 4096); err != nil {
		t.Fatal(err)
	}
	chunk := make([]byte, 64<<10)
	iov := iovecs(chunk)
	for i := 0; ; i++ {
		if i == 1000 {
			t.Fatal("the socket never filled")
		}
		r.PrepareSendmsg(a, msghdr(iov), unix.MSG_DONTWAIT, uint64(i))
		c := submitAndReap(t, r, 1)[0]
		if errors.Is(c.Err(), syscall.EAGAIN) {
			return
		}
		if c.Err() != nil {
			t.Fatal(c.Err())
		}
	}
}

func TestPrepareRefusesBeyondTheRingsSize(t *testing.T) {
	r := newRing(t, 4)
	_, b := socketPair(t)
	buf := make([]byte, 1)
	for i := range 4 {
		if !r.PrepareRecv(b, buf, unix.MSG_DONTWAIT, uint64(i)) {
			t.Fatalf("entry %d refused in a ring of 4", i)
		}
	}
	if r.PrepareRecv(b, buf, unix.MSG_DONTWAIT, 4) {
		t.Fatal("a fifth entry was accepted in a ring of 4")
	}
	submitAndReap(t, r, 4)
	if r.Space() != 4 {
		t.Fatalf("Space = %d after reaping, want 4", r.Space())
	}
}

// BenchmarkSendmsg compares one sendmsg syscall per socket with one
// io_uring_enter carrying the sends of every socket, for a 300-byte frame
// to each of 64 loopback sockets.
func BenchmarkSendmsg(b *testing.B) {
	frame, senders, receivers := benchSockets(b)
	drain := func() { drainSockets(receivers) }
	iov := iovecs(frame)
	msg := msghdr(iov)
	b.Run("syscall", func(b *testing.B) {
		for i := 0; b.Loop(); i++ {
			if _, err := unix.SendmsgBuffers(senders[i%benchConns], [][]byte{frame}, nil, nil, unix.MSG_DONTWAIT); err != nil {
				b.Fatal(err)
			}
			if i%benchConns == benchConns-1 && i%(benchConns*64) == benchConns*64-1 {
				drain()
			}
		}
	})
	b.Run("io_uring", func(b *testing.B) {
		r := newRing(b, benchConns)
		cs := make([]Completion, benchConns)
		sent := func(c Completion) {
			if c.Err() != nil {
				b.Fatal(c.Err())
			}
		}
		for i := 0; b.Loop(); i++ {
			if i%benchConns == 0 {
				if i%(benchConns*64) == 0 {
					drain()
				}
				for _, fd := range senders {
					r.PrepareSendmsg(fd, msg, unix.MSG_DONTWAIT, 0)
				}
				submitAll(b, r, cs, sent)
			}
		}
	})
}

// BenchmarkRecv compares one read syscall per socket with one
// io_uring_enter carrying the receives of every socket, each socket
// holding one 300-byte frame, as a client of the gateway finds it.
func BenchmarkRecv(b *testing.B) {
	frame, senders, receivers := benchSockets(b)
	fill := func() {
		for _, fd := range senders {
			if _, err := unix.Write(fd, frame); err != nil {
				b.Fatal(err)
			}
		}
	}
	bufs := make([][]byte, benchConns)
	for i := range bufs {
		bufs[i] = make([]byte, 4096)
	}
	b.Run("syscall", func(b *testing.B) {
		drainSockets(receivers)
		for i := 0; b.Loop(); i++ {
			if i%benchConns == 0 {
				b.StopTimer()
				fill()
				b.StartTimer()
			}
			if n, err := unix.Read(receivers[i%benchConns], bufs[i%benchConns]); n != len(frame) || err != nil {
				b.Fatalf("read %d, %v", n, err)
			}
		}
	})
	b.Run("io_uring", func(b *testing.B) {
		drainSockets(receivers)
		r := newRing(b, benchConns)
		cs := make([]Completion, benchConns)
		received := func(c Completion) {
			if int(c.Res) != len(frame) {
				b.Fatalf("recv %d: %v", c.Res, c.Err())
			}
		}
		for i := 0; b.Loop(); i++ {
			if i%benchConns != 0 {
				continue
			}
			b.StopTimer()
			fill()
			b.StartTimer()
			for j, fd := range receivers {
				r.PrepareRecv(fd, bufs[j], unix.MSG_DONTWAIT, uint64(j))
			}
			submitAll(b, r, cs, received)
		}
	})
}

// drainSockets reads whatever the sockets hold.
func drainSockets(fds []int) {
	buf := make([]byte, 64<<10)
	for _, fd := range fds {
		for {
			if n, err := unix.Read(fd, buf); n <= 0 || err != nil {
				break
			}
		}
	}
}

// A submit the kernel refuses hands nothing over and leaves the ring as
// before it was prepared: nothing in flight, every entry free again.
func TestARefusedSubmitTakesNothing(t *testing.T) {
	r := newRing(t, 4)
	_, b := socketPair(t)
	buf := make([]byte, 1)
	r.PrepareRecv(b, buf, unix.MSG_DONTWAIT, 1)
	r.PrepareRecv(b, buf, unix.MSG_DONTWAIT, 2)
	ringFd := r.fd
	r.fd = -1 // the kernel refuses io_uring_enter on it
	n, err := r.Submit()
	r.fd = ringFd
	if n != 0 || !errors.Is(err, syscall.EBADF) {
		t.Fatalf("Submit = %d, %v; want 0, EBADF", n, err)
	}
	if r.InFlight() != 0 || r.Space() != 4 {
		t.Fatalf("after the refusal: InFlight %d, Space %d; want 0 and 4", r.InFlight(), r.Space())
	}
	r.PrepareRecv(b, buf, unix.MSG_DONTWAIT, 3)
	if cs := submitAndReap(t, r, 1); cs[0].UserData != 3 {
		t.Fatalf("the next submit completed entry %d, want only 3", cs[0].UserData)
	}
}

// The structs shared with the kernel must have its layout.
func TestStructsMatchTheKernelsSizes(t *testing.T) {
	for _, tc := range []struct {
		name      string
		got, want uintptr
	}{
		{"io_uring_sqe", unsafe.Sizeof(sqe{}), 64},
		{"io_uring_cqe", unsafe.Sizeof(cqe{}), 16},
		{"io_uring_params", unsafe.Sizeof(params{}), 120},
		{"io_uring_sqe.user_data offset", unsafe.Offsetof(sqe{}.userData), 32},
		{"io_uring_params.sq_off offset", unsafe.Offsetof(params{}.sqOff), 40},
	} {
		if tc.got != tc.want {
			t.Errorf("%s: %d bytes, the kernel's is %d", tc.name, tc.got, tc.want)
		}
	}
}

// benchConns is how many loopback sockets the benchmarks spread over.
const benchConns = 64

// benchSockets returns a 300-byte frame, like one event of the gateway,
// and the two ends of benchConns loopback connections.
func benchSockets(b *testing.B) (frame []byte, senders, receivers []int) {
	senders, receivers = make([]int, benchConns), make([]int, benchConns)
	for i := range benchConns {
		senders[i], receivers[i] = socketPair(b)
	}
	return bytes.Repeat([]byte("x"), 300), senders, receivers
}
