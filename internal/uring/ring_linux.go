package uring

import (
	"fmt"
	"sync/atomic"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Kernel ABI constants (include/uapi/linux/io_uring.h).
const (
	opSendmsg = 9
	opSend    = 26
	opRecv    = 27

	enterGetEvents = 1 << 0

	// setupSubmitAll keeps submitting a batch after one entry fails at
	// submission (a closed descriptor, say), so every entry completes.
	setupSubmitAll = 1 << 7

	featSingleMmap = 1 << 0

	offSQRing = 0 // the completion ring shares this mapping
	offSQEs   = 0x10000000
)

// params is struct io_uring_params.
type params struct {
	sqEntries    uint32
	cqEntries    uint32
	flags        uint32
	sqThreadCPU  uint32
	sqThreadIdle uint32
	features     uint32
	wqFd         uint32
	resv         [3]uint32
	sqOff        sqringOffsets
	cqOff        cqringOffsets
}

type sqringOffsets struct {
	head, tail, ringMask, ringEntries, flags, dropped, array, resv1 uint32
	userAddr                                                        uint64
}

type cqringOffsets struct {
	head, tail, ringMask, ringEntries, overflow, cqes, flags, resv1 uint32
	userAddr                                                        uint64
}

// sqe is struct io_uring_sqe (64 bytes).
type sqe struct {
	opcode      uint8
	flags       uint8
	ioprio      uint16
	fd          int32
	off         uint64
	addr        uint64
	len         uint32
	opFlags     uint32 // msg_flags for sends and receives
	userData    uint64
	bufIndex    uint16
	personality uint16
	spliceFdIn  int32
	addr3       uint64
	_           uint64
}

// cqe is struct io_uring_cqe (16 bytes without IORING_SETUP_CQE32).
type cqe struct {
	userData uint64
	res      int32
	flags    uint32
}

// Completion is the outcome of one submitted entry: the user data given
// when it was prepared, and the result, a byte count or a negated errno.
type Completion struct {
	UserData uint64
	Res      int32
}

// Err is the completion's error, nil when Res is a byte count.
func (c Completion) Err() error {
	if c.Res >= 0 {
		return nil
	}
	return syscall.Errno(-c.Res)
}

// Ring is one io_uring instance. It is not safe for concurrent use: each
// goroutine that submits has its own.
type Ring struct {
	fd int

	sqHead, sqTail *uint32
	sqMask         uint32
	sqes           []sqe
	cqHead, cqTail *uint32
	cqMask         uint32
	cqes           []cqe

	ringMem, sqeMem []byte // the rings share one mapping (IORING_FEAT_SINGLE_MMAP)

	prepared uint32 // entries written since the last submit
	inFlight int    // submitted and not yet reaped
}

// New sets up a ring with room for entries submissions at a time (a power
// of two; the kernel rounds up otherwise).
func New(entries uint32) (*Ring, error) {
	var p params
	p.flags = setupSubmitAll
	fd, _, errno := unix.Syscall(unix.SYS_IO_URING_SETUP, uintptr(entries), uintptr(unsafe.Pointer(&p)), 0)
	if errno != 0 {
		return nil, fmt.Errorf("%w: io_uring_setup: %w", ErrUnavailable, errno)
	}
	r := &Ring{fd: int(fd)}
	if err := r.mmap(&p); err != nil {
		r.Close()
		return nil, err
	}
	return r, nil
}

func (r *Ring) mmap(p *params) error {
	if p.features&featSingleMmap == 0 {
		return fmt.Errorf("%w: kernel lacks IORING_FEAT_SINGLE_MMAP", ErrUnavailable)
	}
	sqSize := uintptr(p.sqOff.array) + uintptr(p.sqEntries)*4
	cqSize := uintptr(p.cqOff.cqes) + uintptr(p.cqEntries)*unsafe.Sizeof(cqe{})
	size := max(sqSize, cqSize)
	mem, err := unix.Mmap(r.fd, offSQRing, int(size), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("map io_uring rings: %w", err)
	}
	r.ringMem = mem
	sqeMem, err := unix.Mmap(r.fd, offSQEs, int(uintptr(p.sqEntries)*unsafe.Sizeof(sqe{})), unix.PROT_READ|unix.PROT_WRITE, unix.MAP_SHARED|unix.MAP_POPULATE)
	if err != nil {
		return fmt.Errorf("map io_uring entries: %w", err)
	}
	r.sqeMem = sqeMem

	base := unsafe.Pointer(&mem[0])
	at := func(off uint32) *uint32 { return (*uint32)(unsafe.Add(base, off)) }
	r.sqHead, r.sqTail = at(p.sqOff.head), at(p.sqOff.tail)
	r.sqMask = *at(p.sqOff.ringMask)
	r.cqHead, r.cqTail = at(p.cqOff.head), at(p.cqOff.tail)
	r.cqMask = *at(p.cqOff.ringMask)
	r.sqes = unsafe.Slice((*sqe)(unsafe.Pointer(&sqeMem[0])), p.sqEntries)
	r.cqes = unsafe.Slice((*cqe)(unsafe.Add(base, p.cqOff.cqes)), p.cqEntries)
	// The submission array maps ring slots to entries; slot i is always
	// entry i, so it is filled once.
	array := unsafe.Slice((*uint32)(unsafe.Add(base, p.sqOff.array)), p.sqEntries)
	for i := range array {
		array[i] = uint32(i)
	}
	return nil
}

// Close releases the ring. Nothing may be in flight.
func (r *Ring) Close() error {
	for _, m := range [][]byte{r.sqeMem, r.ringMem} {
		if m != nil {
			_ = unix.Munmap(m)
		}
	}
	r.sqeMem, r.ringMem = nil, nil
	return unix.Close(r.fd)
}

// Space is how many more entries can be prepared before the next Submit.
func (r *Ring) Space() int {
	return len(r.sqes) - int(r.prepared) - r.inFlight
}

// prepare fills the next free entry with one socket operation on fd: op
// on addr, n (a buffer's length, or 1 for one message header), flags for
// the socket. It reports false when the ring is full.
func (r *Ring) prepare(op uint8, fd int, addr unsafe.Pointer, n uint32, flags int, userData uint64) bool {
	if r.Space() <= 0 {
		return false
	}
	tail := *r.sqTail + r.prepared // only this goroutine moves the tail
	r.sqes[tail&r.sqMask] = sqe{
		opcode: op, fd: int32(fd), addr: uint64(uintptr(addr)), len: n,
		opFlags: uint32(flags), userData: userData,
	}
	r.prepared++
	return true
}

// PrepareSendmsg queues a sendmsg(2) of msg on fd with flags (use
// MSG_DONTWAIT so a full socket completes at once with EAGAIN rather than
// waiting). msg, its iovecs and their buffers must stay untouched until
// the entry's completion has been reaped. It reports false when the ring
// is full.
func (r *Ring) PrepareSendmsg(fd int, msg *unix.Msghdr, flags int, userData uint64) bool {
	return r.prepare(opSendmsg, fd, unsafe.Pointer(msg), 1, flags, userData)
}

// PrepareSend queues a send(2) of buf on fd with flags: a sendmsg of one
// buffer without the message header and iovec the kernel would copy in.
// buf must stay untouched until the entry's completion has been reaped.
// It reports false when the ring is full.
func (r *Ring) PrepareSend(fd int, buf []byte, flags int, userData uint64) bool {
	return r.prepare(opSend, fd, unsafe.Pointer(unsafe.SliceData(buf)), uint32(len(buf)), flags, userData)
}

// PrepareRecv queues a recv(2) into buf on fd with flags (MSG_DONTWAIT: an
// empty socket completes at once with EAGAIN). buf must stay untouched
// until the entry's completion has been reaped. It reports false when the
// ring is full.
func (r *Ring) PrepareRecv(fd int, buf []byte, flags int, userData uint64) bool {
	return r.prepare(opRecv, fd, unsafe.Pointer(unsafe.SliceData(buf)), uint32(len(buf)), flags, userData)
}

// Submit hands the prepared entries to the kernel, in the order they were
// prepared, and returns how many it took. Sends and receives on
// non-blocking sockets (or with MSG_DONTWAIT) are carried out during the
// call, so their completions are ready when it returns. When the kernel
// takes fewer than all (out of memory, say; err says why), the first n
// are in flight and the rest were dropped: they will not complete.
//
// It is a raw syscall: the caller must only submit work that does not
// block, which is what MSG_DONTWAIT guarantees for sockets. The runtime
// then does not count the goroutine as in a syscall, and its monitor
// thread does not keep waking to hand the core to another thread.
func (r *Ring) Submit() (n int, err error) {
	want := int(r.prepared)
	if want == 0 {
		return 0, nil
	}
	atomic.StoreUint32(r.sqTail, *r.sqTail+r.prepared)
	r.prepared = 0
	for n < want {
		took, _, errno := unix.RawSyscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), uintptr(want-n), 0, 0, 0, 0)
		if errno == unix.EINTR {
			continue
		}
		if errno != 0 || took == 0 {
			// Take back what the kernel did not: its head marks where
			// it stopped, and it reads the ring only inside the call.
			atomic.StoreUint32(r.sqTail, atomic.LoadUint32(r.sqHead))
			r.inFlight += n
			if errno == 0 {
				errno = unix.EAGAIN
			}
			return n, fmt.Errorf("io_uring_enter took %d of %d entries: %w", n, want, errno)
		}
		n += int(took)
	}
	r.inFlight += n
	return n, nil
}

// Reap copies up to len(dst) completions into dst and returns them. When
// wait is true and none are ready it blocks in io_uring_enter until one
// is (an ordinary syscall, so the runtime can run other goroutines).
func (r *Ring) Reap(dst []Completion, wait bool) ([]Completion, error) {
	for {
		head := *r.cqHead // only this goroutine moves the head
		tail := atomic.LoadUint32(r.cqTail)
		n := 0
		for ; head != tail && n < len(dst); head++ {
			c := &r.cqes[head&r.cqMask]
			dst[n] = Completion{UserData: c.userData, Res: c.res}
			n++
		}
		if n > 0 || !wait || r.inFlight == 0 {
			atomic.StoreUint32(r.cqHead, head)
			r.inFlight -= n
			return dst[:n], nil
		}
		_, _, errno := unix.Syscall6(unix.SYS_IO_URING_ENTER, uintptr(r.fd), 0, 1, enterGetEvents, 0, 0)
		if errno != 0 && errno != unix.EINTR {
			return dst[:0], fmt.Errorf("io_uring_enter wait: %w", errno)
		}
	}
}

// InFlight is how many submitted entries have not been reaped yet.
func (r *Ring) InFlight() int { return r.inFlight }
