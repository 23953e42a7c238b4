package sipfront

import (
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"sync/atomic"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/diago/audio"
	"github.com/emiago/diago/media"
)

// This file moves audio: a leg is one party's RTP stream (G.711 μ-law or
// A-law, 20 ms frames); what a leg sends goes to its sink (nothing, the
// other party, a supervisor's mixer), and what it hears is written by one
// source at a time (a player, or the other party's relay).

const (
	frameDur     = 20 * time.Millisecond
	frameSamples = 160 // 20 ms at 8 kHz
	// minFrame drops RTP payloads too short to be audio (telephone-event).
	minFrame = 80
)

// leg is one party's audio.
type leg struct {
	alaw bool
	r    io.Reader
	w    io.Writer
	wmu  sync.Mutex // one write at a time (relay and player hand over)

	sink     atomic.Pointer[func(frame []byte, alaw bool)]
	lastRecv atomic.Int64 // unix nanoseconds of the last frame received
	frames   atomic.Int64 // frames received
}

func newLeg(m *diago.DialogMedia) (*leg, error) {
	var props diago.MediaProps
	r, err := m.AudioReader(diago.WithAudioReaderMediaProps(&props))
	if err != nil {
		return nil, fmt.Errorf("audio reader: %w", err)
	}
	w, err := m.AudioWriter()
	if err != nil {
		return nil, fmt.Errorf("audio writer: %w", err)
	}
	l := &leg{r: r, w: w, alaw: props.Codec.PayloadType == media.CodecAudioAlaw.PayloadType}
	l.lastRecv.Store(time.Now().UnixNano())
	return l, nil
}

// setSink says where the frames this leg sends go; nil drops them.
func (l *leg) setSink(f func(frame []byte, alaw bool)) {
	if f == nil {
		l.sink.Store(nil)
		return
	}
	l.sink.Store(&f)
}

// receive reads the leg's frames until it ends, handing each to the sink.
func (l *leg) receive() {
	buf := make([]byte, media.RTPBufSize)
	for {
		n, err := l.r.Read(buf)
		if err != nil {
			return
		}
		if n < minFrame {
			continue
		}
		l.lastRecv.Store(time.Now().UnixNano())
		l.frames.Add(1)
		if s := l.sink.Load(); s != nil {
			(*s)(buf[:n], l.alaw)
		}
	}
}

// write sends a frame coded as alaw says, converting to the leg's codec.
func (l *leg) write(frame []byte, alaw bool) error {
	var conv [1024]byte
	if alaw != l.alaw && len(frame) <= len(conv) {
		table := &ulawToAlaw
		if alaw {
			table = &alawToUlaw
		}
		for i, b := range frame {
			conv[i] = table[b]
		}
		frame = conv[:len(frame)]
	}
	l.wmu.Lock()
	defer l.wmu.Unlock()
	_, err := l.w.Write(frame)
	return err
}

// play writes μ-law audio to the leg in real time until it ends (or ctx
// does); loop plays it again and again.
func (l *leg) play(ctx context.Context, ulaw []byte, loop bool) error {
	t := time.NewTicker(frameDur)
	defer t.Stop()
	for {
		for off := 0; off+frameSamples <= len(ulaw); off += frameSamples {
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-t.C:
			}
			if err := l.write(ulaw[off:off+frameSamples], false); err != nil {
				return err
			}
		}
		if !loop {
			return nil
		}
	}
}

// silentFor reports how long the leg has sent no audio.
func (l *leg) silentFor(now time.Time) time.Duration {
	return now.Sub(time.Unix(0, l.lastRecv.Load()))
}

// mixer mixes two parties for a listen-only leg: each side's frames are
// decoded and queued; every 20 ms one frame of each is summed and sent.
type mixer struct {
	mu sync.Mutex
	q  [2][][frameSamples]int16
}

const mixerDepth = 5 // frames queued per side before the oldest is dropped

func (m *mixer) push(side int, frame []byte, alaw bool) {
	if len(frame) != frameSamples {
		return
	}
	var pcm [frameSamples]int16
	for i, b := range frame {
		if alaw {
			pcm[i] = alawPCM[b]
		} else {
			pcm[i] = ulawPCM[b]
		}
	}
	m.mu.Lock()
	if len(m.q[side]) >= mixerDepth {
		m.q[side] = m.q[side][1:]
	}
	m.q[side] = append(m.q[side], pcm)
	m.mu.Unlock()
}

// run sends the mix to out until ctx ends or out fails.
func (m *mixer) run(ctx context.Context, out *leg) {
	t := time.NewTicker(frameDur)
	defer t.Stop()
	var frame [frameSamples]byte
	var lin [2 * frameSamples]byte
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		var sum [frameSamples]int32
		m.mu.Lock()
		for side := range m.q {
			if len(m.q[side]) == 0 {
				continue
			}
			for i, v := range m.q[side][0] {
				sum[i] += int32(v)
			}
			m.q[side] = m.q[side][1:]
		}
		m.mu.Unlock()
		for i, v := range sum {
			binary.LittleEndian.PutUint16(lin[2*i:], uint16(int16(max(-32768, min(32767, v)))))
		}
		if _, err := audio.EncodeUlawTo(frame[:], lin[:]); err != nil {
			return
		}
		if err := out.write(frame[:], false); err != nil {
			return
		}
	}
}

// G.711 tables, built once from diago's codec functions.
var (
	ulawPCM, alawPCM        [256]int16
	ulawToAlaw, alawToUlaw  [256]byte
	errTablesNotInitialised = errors.New("g711 tables")
)

func init() {
	var lin [2]byte
	var one [1]byte
	for i := 0; i < 256; i++ {
		one[0] = byte(i)
		if _, err := audio.DecodeUlawTo(lin[:], one[:]); err != nil {
			panic(errTablesNotInitialised)
		}
		ulawPCM[i] = int16(binary.LittleEndian.Uint16(lin[:]))
		_, _ = audio.EncodeAlawTo(one[:], lin[:])
		ulawToAlaw[i] = one[0]
		one[0] = byte(i)
		_, _ = audio.DecodeAlawTo(lin[:], one[:])
		alawPCM[i] = int16(binary.LittleEndian.Uint16(lin[:]))
		_, _ = audio.EncodeUlawTo(one[:], lin[:])
		alawToUlaw[i] = one[0]
	}
}
