package gateway

import (
	"encoding/binary"
	"encoding/json"
	"strings"

	"github.com/ccevents/ccevents/internal/binding"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/protocol"
	"github.com/gobwas/ws"
)

// The per-event hot path, in the order an event takes it (in this file
// unless a file is named):
//
//	live.onMessage      one bus follower for the whole stream, called in
//	                    stream order on one goroutine (live.go); it checks
//	                    the sequence follows on the one before
//	live.fanOut         every binding of every connection is in one index
//	index.Match         visits only the bindings that match the subject: the
//	                    subject's account segment picks the account's branch
//	                    (internal/binding)
//	pick                one binding per connection: its first-subscribed match
//	live.frame          the complete websocket frame for (event, binding)
//	                    (its JSON is protocol.AppendEvent's),
//	                    encoded once and shared by every connection with that
//	                    binding (server frames are not masked)
//	connAccount.deliver skips what the connection already has, holds events
//	                    while the connection catches up on history
//	conn.enqueueLive    into the connection's outbox (write.go)
//	outbox.enqueue      bounded, never blocks: a frame beyond the limits
//	                    closes the connection with 4008 (conn.overflow); the
//	                    first frame in an idle outbox starts a writer
//	                    (outbox.go)
//	Server.schedule     plain TCP connections line up for a flusher, which
//	                    takes each one's frames (outbox.take) and writes
//	                    them with one non-blocking writev, or on Linux up to
//	                    32 connections with one io_uring_enter (flush.go,
//	                    flush_ring_linux.go); a full socket or TLS gets
//	conn.writeLoop      a goroutine only while frames wait, writing all of
//	                    them with writev (write.go)
//	conn.wrote          each live frame written is one sample of the
//	                    delivery latency, stored → on the socket (write.go,
//	                    latency.go)

// bindingKey is one binding subscribed by one or more connections; it
// holds the frame of the event being fanned out while that lasts.
type bindingKey struct {
	// text is the binding as clients wrote it, their subscribed_key; b is
	// what it means (a short qubicle.<family> is the subscribed account's
	// qubicle.<family>.<account>.*).
	text string
	b    binding.Binding
	refs int // guarded by live.keysMu

	// Owned by the fan-out.
	seq   uint64
	frame []byte
}

// sub is one binding of one connection, the value stored in the index.
type sub struct {
	ca      *connAccount
	key     *bindingKey
	order   uint64 // subscribe order on the connection: lower wins the pick
	removed bool   // unsubscribed; guarded by ca.mu
}

// delivery is one stored event, checked once and ready to be framed.
type delivery struct {
	seq     uint64
	subject string
	stored  int64  // when the stream stored it (Unix ns), for the delivery latency
	name    string // the subject's last segment
	rest    []byte // the payload after its opening brace, through its closing one
	empty   bool   // the payload is {}
}

// fanOut hands one event to every connection with a matching binding. It
// never blocks on a connection. The caller holds dispatchMu.
func (l *live) fanOut(m bus.Message) {
	s := l.srv
	l.matches = l.index.Match(m.Subject, l.matches[:0])
	if len(l.matches) == 0 {
		return
	}
	s.m.eventsIn.Inc()
	d, ok := newDelivery(m)
	if !ok {
		s.m.error(errBadEvent)
		s.m.dropped.WithLabelValues(dropBadEvent).Inc()
		s.log.Warn("stored event cannot be delivered: subject or payload malformed", "subject", m.Subject, "sequence", m.Sequence)
		clear(l.matches)
		return
	}
	// A connection gets the event once, however many of its bindings match,
	// under the binding it subscribed first.
	picked := l.picked[:0]
	for _, sb := range l.matches {
		ca := sb.ca
		if ca.seen != d.seq {
			ca.seen, ca.pick = d.seq, sb
			picked = append(picked, ca)
		} else if sb.order < ca.pick.order {
			ca.pick = sb
		}
	}
	n := 0
	for _, ca := range picked {
		if ca.deliver(l, &d) {
			n++
		}
	}
	s.m.eventsOut.Add(float64(n))
	// The connections' queues hold the frames now: let the keys forget
	// them, so an account between two events holds none. Forget the
	// connections too, so a closed one is not kept reachable.
	for _, sb := range l.matches {
		sb.key.frame = nil
	}
	clear(picked)
	clear(l.matches)
	l.picked = picked[:0]
}

// newDelivery checks a stored event once for all its recipients: a
// well-formed subject and a JSON object payload.
func newDelivery(m bus.Message) (delivery, bool) {
	if binding.SubjectAccount(m.Subject) == "" {
		return delivery{}, false
	}
	p := m.Data
	i := 0
	for i < len(p) && isSpace(p[i]) {
		i++
	}
	if i == len(p) || p[i] != '{' || !json.Valid(p) {
		return delivery{}, false
	}
	j := len(p)
	for isSpace(p[j-1]) {
		j--
	}
	rest := p[i+1 : j]
	k := 0
	for isSpace(rest[k]) {
		k++
	}
	var stored int64
	if !m.Time.IsZero() {
		stored = m.Time.UnixNano()
	}
	return delivery{
		seq:     m.Sequence,
		stored:  stored,
		subject: m.Subject,
		name:    m.Subject[strings.LastIndexByte(m.Subject, '.')+1:],
		rest:    rest,
		empty:   rest[k] == '}',
	}, true
}

func isSpace(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// frame returns the frame of the event for one binding, encoding it on first
// use.
func (l *live) frame(k *bindingKey, d *delivery) []byte {
	if k.seq != d.seq || k.frame == nil {
		k.frame = encodeEventFrame(k, l.srv.epochJSON, d)
		k.seq = d.seq
	}
	return k.frame
}

// encodeEventFrame returns the complete websocket text frame carrying one
// event to the subscribers of k, in one exactly sized allocation; its JSON
// is protocol.AppendEvent's.
func encodeEventFrame(k *bindingKey, epochJSON string, d *delivery) []byte {
	f := protocol.EventFrame{
		SubscribedKey: k.text, SubscriptionKey: k.b.BusFilter(), RoutingKey: d.subject, Name: d.name,
		Sequence: d.seq, EpochJSON: epochJSON, Members: d.rest, EmptyPayload: d.empty,
	}
	n := f.Len()
	dst := make([]byte, 0, frameHeaderLen(n)+n)
	dst = appendFrameHeader(dst, ws.OpText, n)
	return protocol.AppendEvent(dst, &f)
}

// frameHeaderLen is the size of a final, unmasked frame header for n
// payload bytes.
func frameHeaderLen(n int) int { return ws.HeaderSize(ws.Header{Fin: true, Length: int64(n)}) }

// appendFrameHeader appends the header of a final, unmasked server frame.
func appendFrameHeader(dst []byte, op ws.OpCode, n int) []byte {
	b0 := 0x80 | byte(op)
	switch {
	case n < 126:
		return append(dst, b0, byte(n))
	case n <= 0xffff:
		return append(dst, b0, 126, byte(n>>8), byte(n))
	}
	dst = append(dst, b0, 127)
	return binary.BigEndian.AppendUint64(dst, uint64(n))
}

// deliver hands one live event to the connection: queued, or held while the
// connection catches up on history. It reports whether it was queued.
func (ca *connAccount) deliver(l *live, d *delivery) bool {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	if d.seq <= ca.delivered {
		return false // replayed already
	}
	pick := ca.pick
	if pick.removed {
		if pick = l.livePick(ca); pick == nil {
			return false
		}
	}
	frame := l.frame(pick.key, d)
	if ca.catchUp {
		ca.hold(d.seq, frame)
		return false
	}
	ca.delivered = d.seq
	return ca.conn.enqueueLive(frame, d.stored)
}

// livePick is the pick among the event's matches of ca once the first one
// turned out to be unsubscribed in the meantime.
func (l *live) livePick(ca *connAccount) *sub {
	var best *sub
	for _, s := range l.matches {
		if s.ca == ca && !s.removed && (best == nil || s.order < best.order) {
			best = s
		}
	}
	return best
}
