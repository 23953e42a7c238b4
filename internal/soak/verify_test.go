package soak

import (
	"fmt"
	"strings"
	"sync/atomic"
)

// rec is one event a client received: its sequence and event_id hash.
type rec struct {
	seq uint64
	id  uint32
}

// stream is one client's subscription to one account: its bindings, where
// it started, and every event it received, across all its connections.
// Only one goroutine at a time touches it (the connection's reader, or the
// SDK's handler); last is also read by the coordinator.
type stream struct {
	acct     *account
	specs    []spec
	bindings []string // specs as sent, in subscribe order

	started bool   // the first subscribe was answered
	start   uint64 // the reply's sequence: every later matching event is owed
	got     []rec
	last    atomic.Uint64 // highest sequence received, or start
	// early is the highest sequence at or before start received before any
	// owed event: allowed (the reply says "live from", not "nothing at"),
	// but only in order.
	early uint64
}

func newStream(a *account, specs []spec, form func() int) *stream {
	s := &stream{acct: a, specs: specs}
	for _, sp := range specs {
		s.bindings = append(s.bindings, sp.text(a.id, form()))
	}
	return s
}

// begin records the sequence the first subscribe went live from.
func (s *stream) begin(seq uint64) {
	s.started, s.start = true, seq
	s.last.Store(seq)
}

// accept checks one delivered event against the protocol's promises: it
// matches one of the bindings, arrives under the first-subscribed binding
// that matches, and comes after everything before it (once, in order). It
// records the event and returns "" or what was wrong.
func (s *stream) accept(routingKey, subscribedKey string, seq uint64, eventID string) string {
	parts := strings.Split(routingKey, ".")
	if len(parts) != 5 || parts[0] != "qubicle" || parts[2] != s.acct.id {
		return fmt.Sprintf("event %d has routing key %q, not one of account %s", seq, routingKey, s.acct.id)
	}
	k := evKind{family: parts[1], entity: parts[3], name: parts[4]}
	first := -1
	for i, sp := range s.specs {
		if sp.matches(&k) {
			first = i
			break
		}
	}
	switch {
	case first < 0:
		return fmt.Sprintf("event %d (%s) matches none of the bindings %q", seq, routingKey, s.bindings)
	case subscribedKey != s.bindings[first]:
		return fmt.Sprintf("event %d (%s) came under subscribed_key %q; the first binding it matches is %q", seq, routingKey, subscribedKey, s.bindings[first])
	}
	last := s.last.Load()
	if seq <= last {
		if len(s.got) == 0 && seq <= s.start && seq > s.early {
			s.early = seq
			return ""
		}
		return fmt.Sprintf("event %d (%s) after %d: a duplicate or out of order", seq, routingKey, last)
	}
	s.got = append(s.got, rec{seq: seq, id: idHash(eventID)})
	s.last.Store(seq)
	return ""
}

// owed lists the acknowledged events of the stream's account that its
// bindings select, after its start.
func (s *stream) owed(acked []pubEvent) []pubEvent {
	var out []pubEvent
	for _, e := range acked {
		if e.seq <= s.start {
			continue
		}
		for _, sp := range s.specs {
			if sp.matches(e.kind) {
				out = append(out, e)
				break
			}
		}
	}
	return out
}

// target is the last sequence the stream is owed, or its start.
func (s *stream) target(acked []pubEvent) uint64 {
	if o := s.owed(acked); len(o) > 0 {
		return o[len(o)-1].seq
	}
	return s.start
}

// diff compares what arrived with what was owed.
type diff struct {
	owed, got        int
	missing, unowned []uint64 // sequences
	wrongID          []uint64 // right sequence, someone else's payload
}

func (d diff) ok() bool { return len(d.missing)+len(d.unowned)+len(d.wrongID) == 0 }

func (s *stream) compare(acked []pubEvent) diff {
	owed := s.owed(acked)
	d := diff{owed: len(owed), got: len(s.got)}
	i, j := 0, 0
	for i < len(owed) || j < len(s.got) {
		switch {
		case j == len(s.got) || (i < len(owed) && owed[i].seq < s.got[j].seq):
			d.missing = append(d.missing, owed[i].seq)
			i++
		case i == len(owed) || s.got[j].seq < owed[i].seq:
			d.unowned = append(d.unowned, s.got[j].seq)
			j++
		default:
			if owed[i].id != s.got[j].id {
				d.wrongID = append(d.wrongID, owed[i].seq)
			}
			i++
			j++
		}
	}
	return d
}

func (d diff) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "received %d of %d owed events", d.got-len(d.unowned), d.owed)
	if len(d.missing) > 0 {
		fmt.Fprintf(&b, "; missing %d, first %v", len(d.missing), first(d.missing, 8))
	}
	if len(d.unowned) > 0 {
		fmt.Fprintf(&b, "; %d not owed (unpublished or not matching), first %v", len(d.unowned), first(d.unowned, 8))
	}
	if len(d.wrongID) > 0 {
		fmt.Fprintf(&b, "; %d with another event's event_id, first %v", len(d.wrongID), first(d.wrongID, 8))
	}
	return b.String()
}

func first[T any](s []T, n int) []T { return s[:min(n, len(s))] }
