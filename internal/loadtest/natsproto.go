package loadtest

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/ccevents/ccevents/internal/shorten"
)

// The NATS client protocol as the tool reads it over nats-server's
// websocket listener, to measure plain NATS beside the gateway.

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
