package loadtest

import (
	"encoding/binary"
	"fmt"
	"io"
	"time"

	"github.com/gobwas/ws"
)

// The websocket frames of the load tool's connections: read straight out
// of its own buffer (the tool parses up to a million events a second on
// the same cores as the server) and written masked, as a client must.
// What the frames carry is package protocol's (conn.go).

// maxFrameBytes bounds what the tool accepts from a server in one frame, so
// a broken server cannot make it allocate without limit.
const maxFrameBytes = 16 << 20

// frameHeader is one websocket frame header as read from a server.
type frameHeader struct {
	fin    bool
	op     ws.OpCode
	masked bool
	mask   [4]byte
	length int // payload bytes
	size   int // header bytes
}

// parseFrameHeader reads a frame header at the start of b. ok is false when
// b does not yet hold the whole header.
func parseFrameHeader(b []byte) (h frameHeader, ok bool, err error) {
	if len(b) < 2 {
		return h, false, nil
	}
	h = frameHeader{fin: b[0]&0x80 != 0, op: ws.OpCode(b[0] & 0x0f), masked: b[1]&0x80 != 0, size: 2}
	l := b[1] & 0x7f
	switch l {
	case 126:
		h.size += 2
	case 127:
		h.size += 8
	default:
		h.length = int(l)
	}
	if h.masked {
		h.size += 4
	}
	if len(b) < h.size {
		return h, false, nil
	}
	off := 2
	switch l {
	case 126:
		h.length = int(binary.BigEndian.Uint16(b[2:4]))
		off = 4
	case 127:
		n := binary.BigEndian.Uint64(b[2:10])
		if n > maxFrameBytes {
			return h, false, fmt.Errorf("server sent a %d-byte frame; the tool accepts at most %d", n, maxFrameBytes)
		}
		h.length = int(n)
		off = 10
	}
	if h.masked {
		copy(h.mask[:], b[off:off+4])
	}
	if h.length > maxFrameBytes {
		return h, false, fmt.Errorf("server sent a %d-byte frame; the tool accepts at most %d", h.length, maxFrameBytes)
	}
	return h, true, nil
}

// frameReader reads websocket frames straight out of its own buffer. Unlike
// bufio it notes the wall clock once per read syscall, which is when the
// frames in that read arrived: one clock reading per read rather than per
// event. Its buffer starts small, so thousands of idle connections stay
// cheap, and grows while reads keep filling it.
type frameReader struct {
	src  io.Reader
	buf  []byte
	r, w int
	at   int64 // Unix ns when the last read returned
	want int   // bytes the frame at r needs in all, when incomplete
}

const (
	minReadBuffer = 4 << 10
	maxReadBuffer = 64 << 10
)

func newFrameReader(src io.Reader) *frameReader {
	return &frameReader{src: src, buf: make([]byte, minReadBuffer)}
}

// makeRoom compacts the buffer and grows it to hold want bytes in all.
func (f *frameReader) makeRoom(want int) {
	if f.r > 0 {
		f.w = copy(f.buf, f.buf[f.r:f.w])
		f.r = 0
	}
	if want > len(f.buf) {
		f.buf = append(f.buf[:f.w], make([]byte, want-f.w)...)[:want]
	}
}

// filled accounts for n bytes just read into the buffer.
func (f *frameReader) filled(n int) {
	f.at = time.Now().UnixNano()
	full := n > 0 && f.w+n == len(f.buf)
	f.w += n
	if full && len(f.buf) < maxReadBuffer {
		// The kernel had at least this much waiting: read more at once next time.
		grown := make([]byte, 2*len(f.buf))
		f.w = copy(grown, f.buf[:f.w])
		f.buf = grown
	}
}

// fill reads once more from src, with room for the f.want bytes the frame
// at r needs. src blocks, or (a poller's socket) returns EAGAIN when empty.
func (f *frameReader) fill() error {
	f.makeRoom(f.want)
	return f.took(f.src.Read(f.buf[f.w:]))
}

// took accounts for a read into the buffer past f.w (made room for with
// makeRoom) that returned n and err, and returns what stopped it, if
// anything.
func (f *frameReader) took(n int, err error) error {
	f.filled(max(n, 0))
	if n > 0 {
		return nil
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return err
}

// buffered returns the next frame if the buffer holds all of it. Otherwise
// ok is false and f.want says how many bytes the frame needs in all. The
// payload stays valid until the buffer is next filled.
func (f *frameReader) buffered() (h frameHeader, p []byte, ok bool, err error) {
	h, hok, err := parseFrameHeader(f.buf[f.r:f.w])
	if err != nil {
		return h, nil, false, err
	}
	if hok && f.w-f.r >= h.size+h.length {
		p = f.buf[f.r+h.size : f.r+h.size+h.length]
		f.r += h.size + h.length
		return h, p, true, nil
	}
	f.want = 14 // the longest header
	if hok {
		f.want = h.size + h.length
	}
	return h, nil, false, nil
}

// next returns the next frame, reading as needed.
func (f *frameReader) next() (frameHeader, []byte, error) {
	for {
		h, p, ok, err := f.buffered()
		if err != nil || ok {
			return h, p, err
		}
		if err := f.fill(); err != nil {
			return h, nil, err
		}
	}
}

// writeClientFrame writes one masked frame, as a client must, without
// touching payload.
func writeClientFrame(w io.Writer, op ws.OpCode, payload []byte) error {
	// MaskFrame masks a copy. One write for header and payload: two would
	// be two syscalls here and, when they arrive apart, two reads in the
	// server.
	frame, err := ws.CompileFrame(ws.MaskFrame(ws.NewFrame(op, true, payload)))
	if err != nil {
		return err
	}
	_, err = w.Write(frame)
	return err
}
