package loadtest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math"
	"time"

	"github.com/ccevents/ccevents/internal/shorten"
	"github.com/gobwas/ws"
)

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

// benchMarker starts the bench's own object inside an event's "custom"
// field: {"~bench":{"a":ACCOUNT_INDEX,"e":ENTITY_INDEX,"k":ENTITY,"n":ACCOUNT,"t":SENT_UNIX_NS,"z":"padding"}}.
// The "~" is a byte no other part of an event contains, so finding the
// stamp is one vectorised IndexByte instead of a substring search that
// stops at every quote (450 → 65 ns per event; the tool parses up to a million events a
// second on the same two cores as the server). Inner keys are in sorted order
// so a server that re-encodes objects with sorted keys yields the same bytes.
var benchMarker = []byte(`~bench":{"a":`)

// stamp is what the publisher put into one event.
type stamp struct {
	account uint64 // 1-based index of the event among all events of the account
	entity  uint64 // 1-based index among the events of its entity
	k       int    // the entity: a queue, a recipient, or the account's sessions
	n       int    // the account: its place in the run's list
	sentNS  int64  // publisher's wall clock just before publishing
}

// nextStamp finds the next bench object in p and returns it with the rest of
// p after it. ok is false when p holds no further marker; bad is true when a
// marker was found but what followed was not a well-formed stamp.
func nextStamp(p []byte) (s stamp, rest []byte, ok, bad bool) {
	for {
		i := bytes.IndexByte(p, benchMarker[0])
		if i < 0 {
			return stamp{}, nil, false, false
		}
		if bytes.HasPrefix(p[i:], benchMarker) {
			p = p[i+len(benchMarker):]
			break
		}
		p = p[i+1:]
	}
	var good bool
	if s.account, p, good = parseUintField(p, nil); !good {
		return stamp{}, p, true, true
	}
	if s.entity, p, good = parseUintField(p, []byte(`,"e":`)); !good {
		return stamp{}, p, true, true
	}
	var k, n uint64
	if k, p, good = parseUintField(p, []byte(`,"k":`)); !good || k > math.MaxInt32 {
		return stamp{}, p, true, true
	}
	if n, p, good = parseUintField(p, []byte(`,"n":`)); !good || n > math.MaxInt32 {
		return stamp{}, p, true, true
	}
	s.k, s.n = int(k), int(n)
	var t uint64
	if t, p, good = parseUintField(p, []byte(`,"t":`)); !good {
		return stamp{}, p, true, true
	}
	s.sentNS = int64(t)
	return s, p, true, false
}

// parseUintField expects key (if any) at the start of p, then a decimal
// number, and returns the number and what follows it.
func parseUintField(p, key []byte) (uint64, []byte, bool) {
	if key != nil {
		if !bytes.HasPrefix(p, key) {
			return 0, p, false
		}
		p = p[len(key):]
	}
	var n uint64
	i := 0
	for ; i < len(p) && i < 20 && p[i] >= '0' && p[i] <= '9'; i++ {
		n = n*10 + uint64(p[i]-'0')
	}
	if i == 0 {
		return 0, p, false
	}
	return n, p[i:], true
}

// natsEvent is what natsParse reports for each protocol message it consumes.
type natsEvent int

const (
	natsMsg natsEvent = iota
	natsPing
	natsPong
	natsErr
	natsOther
)

// errNATSProto is a protocol line the tool cannot parse.
var errNATSProto = errors.New("malformed NATS protocol line")

// natsParse consumes complete NATS protocol messages from p (as received
// over the websocket, in any framing), calling fn for each with the payload
// of a MSG/HMSG (headers stripped) or the line itself. It returns the
// incomplete tail, which the caller must keep and prepend to the next data.
func natsParse(p []byte, fn func(ev natsEvent, data []byte)) ([]byte, error) {
	for len(p) > 0 {
		eol := bytes.IndexByte(p, '\n')
		if eol < 0 {
			if len(p) > 4096 {
				return nil, fmt.Errorf("%w: no line end in %d bytes", errNATSProto, len(p))
			}
			return p, nil
		}
		line := bytes.TrimRight(p[:eol], "\r")
		switch {
		case hasPrefixFold(line, "MSG ") || hasPrefixFold(line, "HMSG "):
			hdr, size, err := msgSizes(line)
			if err != nil {
				return nil, err
			}
			end := eol + 1 + size + 2
			if len(p) < end {
				return p, nil
			}
			fn(natsMsg, p[eol+1+hdr:eol+1+size])
			p = p[end:]
			continue
		case hasPrefixFold(line, "PING"):
			fn(natsPing, line)
		case hasPrefixFold(line, "PONG"):
			fn(natsPong, line)
		case hasPrefixFold(line, "-ERR"):
			fn(natsErr, line)
		default: // INFO, +OK
			fn(natsOther, line)
		}
		p = p[eol+1:]
	}
	return p, nil
}

// msgSizes reads the header and total payload sizes of a MSG or HMSG line:
// "MSG subject sid [reply] size" / "HMSG subject sid [reply] hdr_size size".
// It runs once per delivered message, so it splits the line by hand rather
// than allocate fields.
func msgSizes(line []byte) (hdr, size int, err error) {
	isH := hasPrefixFold(line, "HMSG ")
	want := 4
	if isH {
		want = 5
	}
	var fields [6][]byte
	n := 0
	for rest := line; len(rest) > 0; {
		i := 0
		for i < len(rest) && (rest[i] == ' ' || rest[i] == '\t') {
			i++
		}
		rest = rest[i:]
		if len(rest) == 0 {
			break
		}
		j := 0
		for j < len(rest) && rest[j] != ' ' && rest[j] != '\t' {
			j++
		}
		if n == len(fields) {
			return 0, 0, fmt.Errorf("%w: %q", errNATSProto, shortBytes(line))
		}
		fields[n], n = rest[:j], n+1
		rest = rest[j:]
	}
	if n < want || n > want+1 {
		return 0, 0, fmt.Errorf("%w: %q", errNATSProto, shortBytes(line))
	}
	var ok bool
	if size, ok = atoiSmall(fields[n-1]); !ok || size > maxFrameBytes {
		return 0, 0, fmt.Errorf("%w: %q", errNATSProto, shortBytes(line))
	}
	if isH {
		if hdr, ok = atoiSmall(fields[n-2]); !ok || hdr > size {
			return 0, 0, fmt.Errorf("%w: %q", errNATSProto, shortBytes(line))
		}
	}
	return hdr, size, nil
}

// atoiSmall parses a non-negative decimal of at most 9 digits.
func atoiSmall(b []byte) (int, bool) {
	if len(b) == 0 || len(b) > 9 {
		return 0, false
	}
	n := 0
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int(c-'0')
	}
	return n, true
}

func hasPrefixFold(b []byte, prefix string) bool {
	return len(b) >= len(prefix) && bytes.EqualFold(b[:len(prefix)], []byte(prefix))
}

// shortBytes cuts a protocol line for quoting in an error.
func shortBytes(b []byte) string { return shorten.String(string(b), 80) }

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
