package loadtest

import (
	"bytes"
	"io"
	"testing"

	"github.com/gobwas/ws"
)

func TestFrameReaderReadsEveryLengthFormInAnySplit(t *testing.T) {
	var stream bytes.Buffer
	lengths := []int{0, 5, 125, 126, 1000, 65535, 65536, 200000}
	for _, n := range lengths {
		if err := ws.WriteFrame(&stream, ws.MaskFrame(ws.NewTextFrame(bytes.Repeat([]byte{'a' + byte(n%26)}, n)))); err != nil {
			t.Fatal(err)
		}
	}
	for _, chunk := range []int{1, 7, 4096, 1 << 20} {
		fr := newFrameReader(&chunkReader{data: stream.Bytes(), n: chunk})
		for _, n := range lengths {
			h, p, err := fr.next()
			if err != nil {
				t.Fatalf("chunks of %d, frame of %d: %v", chunk, n, err)
			}
			ws.Cipher(p, h.mask, 0)
			if h.length != n || len(p) != n || !h.fin || h.op != ws.OpText || !h.masked || (n > 0 && p[n-1] != 'a'+byte(n%26)) {
				t.Fatalf("chunks of %d, frame of %d: header %+v, payload of %d", chunk, n, h, len(p))
			}
		}
		if _, _, err := fr.next(); err != io.EOF {
			t.Fatalf("after the last frame: %v, want EOF", err)
		}
	}
}

// chunkReader returns at most n bytes per Read, like a socket under load.
type chunkReader struct {
	data []byte
	n    int
}

func (c *chunkReader) Read(p []byte) (int, error) {
	if len(c.data) == 0 {
		return 0, io.EOF
	}
	k := copy(p[:min(len(p), c.n)], c.data)
	c.data = c.data[k:]
	return k, nil
}

func TestFrameReaderRefusesHugeFrames(t *testing.T) {
	var buf bytes.Buffer
	_ = ws.WriteHeader(&buf, ws.Header{Fin: true, OpCode: ws.OpBinary, Length: maxFrameBytes + 1})
	if _, _, err := newFrameReader(&buf).next(); err == nil || err == io.EOF {
		t.Fatalf("a frame above the limit: %v", err)
	}
}
