package loadtest

import (
	"context"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/backoff"
	"github.com/ccevents/ccevents/internal/event"
)

// publisher sends catalogue events straight to JetStream (stream QUBICLE
// captures their subjects). REST publishing would cap the rate far below
// what the gateway can fan out; NATS is how the engine publishes too.
//
// Events go round robin over the run's accounts. Within an account they
// follow a script: the single-account scenario alternates queue.join and
// recipient.ready over the queues and recipients; the multi-tenant one
// plays calls in the demo's mix (callScript).
//
// Each payload's "custom" field carries the bench stamp (see benchMarker):
// the event's 1-based index among its account's events and among its
// entity's events, the entity's number and the account's, and the
// publisher's wall clock in ns just before the publish, for latency. Every
// connection can so count gaps on its own streams.
type publisher struct {
	nc       *nats.Conn
	js       jetstream.JetStream
	accounts []string
	nq, nr   int
	script   []scriptStep
	pad      string

	acct   []accountState
	next   int // round-robin position over the accounts
	errors atomic.Uint64
}

// accountState is where one account's script stands.
type accountState struct {
	step uint64   // events published so far
	ent  []uint64 // events per entity: queues, recipients, sessions
}

// maxPendingPublishes bounds unacknowledged publishes, so a stalled stream
// slows the publisher instead of growing memory.
const maxPendingPublishes = 4096

func newPublisher(ctx context.Context, url string, opts []nats.Option, accounts []string, queues, recipients int, script []scriptStep, payloadBytes int) (*publisher, error) {
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name("ccevents-bench"), nats.Timeout(5 * time.Second)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s to publish: %w", url, err)
	}
	p := &publisher{nc: nc, accounts: accounts, nq: queues, nr: recipients, script: script}
	p.js, err = jetstream.New(nc,
		jetstream.WithPublishAsyncMaxPending(maxPendingPublishes),
		jetstream.WithPublishAsyncErrHandler(func(jetstream.JetStream, *nats.Msg, error) { p.errors.Add(1) }))
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("open JetStream: %w", err)
	}
	if _, err := p.js.Stream(ctx, "QUBICLE"); err != nil {
		nc.Close()
		return nil, fmt.Errorf("stream QUBICLE on %s: %w (is this the NATS of a running ccevents?)", url, err)
	}
	p.reset(accounts)
	// Size the padding from the largest step with realistic index widths.
	longest := 0
	for i := range p.script {
		_, sample, err := p.encode(0, i, 1_000_000, 100_000, 1_000_000, time.Now())
		if err != nil {
			nc.Close()
			return nil, err
		}
		longest = max(longest, len(sample))
	}
	if n := payloadBytes - longest; n > 0 {
		p.pad = strings.Repeat("x", n)
	}
	return p, nil
}

// encode builds step i of account a's script for call number call, with
// its stamp: the event's index among the account's events and among its
// entity's.
func (p *publisher) encode(a, i int, call, acct, ent uint64, now time.Time) (string, []byte, error) {
	st := &p.script[i]
	pl := st.payload
	env := pl.Env()
	*env = event.Envelope{AccountID: p.accounts[a]}
	k := st.entity(call, p.nq, p.nr)
	switch {
	case k < p.nq:
		env.QueueID = queueID(k)
	case k < p.nq+p.nr:
		env.RecipientID = recipientID(k - p.nq)
	default:
		env.SessionID = sessionID(call, st.session)
	}
	// Ids the event carries besides its family's own.
	if st.alsoQueue {
		env.QueueID = queueID(int(call % uint64(max(p.nq, 1))))
	}
	if st.alsoRecipient {
		env.RecipientID = recipientID(int(call % uint64(max(p.nr, 1))))
	}
	if st.alsoSession {
		env.SessionID = sessionID(call, st.session)
	}
	event.Stamp(pl, now)
	custom := make([]byte, 0, 96+len(p.pad))
	custom = append(custom, `{"`...)
	custom = append(custom, benchMarker...)
	custom = strconv.AppendUint(custom, acct, 10)
	custom = append(custom, `,"e":`...)
	custom = strconv.AppendUint(custom, ent, 10)
	custom = append(custom, `,"k":`...)
	custom = strconv.AppendInt(custom, int64(k), 10)
	custom = append(custom, `,"n":`...)
	custom = strconv.AppendInt(custom, int64(a), 10)
	custom = append(custom, `,"t":`...)
	custom = strconv.AppendInt(custom, now.UnixNano(), 10)
	custom = append(custom, `,"z":"`...)
	custom = append(custom, p.pad...)
	custom = append(custom, `"}}`...)
	env.Custom = custom
	subject, data, err := event.Marshal(pl)
	if err != nil {
		return "", nil, fmt.Errorf("encode bench event %s: %w", st.name, err)
	}
	return subject, data, nil
}

// publishOne sends the next event; the indices advance only when the
// publish was handed to the connection, so a refused publish leaves no gap.
func (p *publisher) publishOne() error {
	a := p.next
	st := &p.acct[a]
	// Each account starts its script at its own place, so that the events
	// of a run have the script's mix even when every account gets only a
	// few of them.
	pos := st.step + uint64(a)
	i := int(pos % uint64(len(p.script)))
	call := pos / uint64(len(p.script))
	k := p.script[i].entity(call, p.nq, p.nr)
	subject, data, err := p.encode(a, i, call, st.step+1, st.ent[k]+1, time.Now())
	if err != nil {
		return err
	}
	if _, err := p.js.PublishAsync(subject, data); err != nil {
		p.errors.Add(1)
		return nil
	}
	st.step++
	st.ent[k]++
	p.next = (a + 1) % len(p.acct)
	return nil
}

// run publishes at rate events/s for d, pacing by elapsed time so a slow
// moment is caught up rather than lost: a step publishes rate×d events
// even when the publisher was not scheduled for part of it (a busy
// machine), unless the stream stalls past twice the step.
func (p *publisher) run(ctx context.Context, rate float64, d time.Duration) error {
	if rate <= 0 {
		return backoff.Sleep(ctx, d)
	}
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var sent uint64
	for {
		el := time.Since(start)
		due := uint64(rate * min(el, d).Seconds())
		for ; sent < due; sent++ {
			// A stalled stream blocks PublishAsync: bound the overrun.
			if sent%64 == 0 && time.Since(start) >= 2*d {
				return nil
			}
			if err := p.publishOne(); err != nil {
				return err
			}
		}
		if el >= d {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// flush waits until every publish is acknowledged, or until ctx ends.
func (p *publisher) flush(ctx context.Context) {
	select {
	case <-p.js.PublishAsyncComplete():
	case <-ctx.Done():
	}
}

// counts is how many events went to each account and each of its
// entities so far.
func (p *publisher) counts() expected {
	exp := expected{Accounts: make([]accountCounts, len(p.acct))}
	for i, st := range p.acct {
		exp.Accounts[i] = accountCounts{All: st.step, Entities: append([]uint64(nil), st.ent...)}
	}
	return exp
}

// published is how many events went out in all.
func (p *publisher) published() uint64 {
	var n uint64
	for _, st := range p.acct {
		n += st.step
	}
	return n
}

// reset starts the scripts and indices over, for a new target's
// connections in accounts.
func (p *publisher) reset(accounts []string) {
	p.accounts, p.next = accounts, 0
	p.acct = make([]accountState, len(accounts))
	for i := range p.acct {
		p.acct[i].ent = make([]uint64, entities(p.nq, p.nr))
	}
}

func (p *publisher) close() { p.nc.Close() }

// entities is how many streams an account's events are counted in: its
// queues, its recipients and its sessions (all sessions as one).
func entities(queues, recipients int) int { return queues + recipients + 1 }

// scriptStep is one event of an account's script: a catalogue event (a
// copy of its example, owned by the publisher and reused), the entity it
// is about, and the other ids it carries.
type scriptStep struct {
	name    string
	payload event.Payload
	// entity returns the entity number of the event for call number call:
	// a queue (< queues), a recipient, or queues+recipients for a session.
	entity func(call uint64, queues, recipients int) int
	// session tells apart the calls one script cycle places.
	session                               byte
	alsoQueue, alsoRecipient, alsoSession bool
}

// exampleOf returns a copy of the catalogue's example of an event.
func exampleOf(f event.Family, name string) event.Payload {
	sp, ok := event.Lookup(f, name)
	if !ok {
		panic("loadtest: no catalogue event " + string(f) + "." + name)
	}
	v := reflect.New(reflect.TypeOf(sp.Example).Elem())
	v.Elem().Set(reflect.ValueOf(sp.Example).Elem())
	return v.Interface().(event.Payload)
}

// step builds a scriptStep for event family.name about the call's queue,
// recipient or session; the event's other ids are those its catalogue
// example carries.
func step(f event.Family, name string, session byte) scriptStep {
	pl := exampleOf(f, name)
	env := pl.Env()
	s := scriptStep{name: string(f) + "." + name, payload: pl, session: session,
		alsoQueue: env.QueueID != "" && f != event.Queue, alsoRecipient: env.RecipientID != "" && f != event.Recipient,
		alsoSession: env.SessionID != "" && f != event.Session}
	switch f {
	case event.Queue:
		s.entity = func(call uint64, q, _ int) int { return int(call % uint64(max(q, 1))) }
	case event.Recipient:
		s.entity = func(call uint64, q, r int) int { return q + int(call%uint64(max(r, 1))) }
	default:
		s.entity = func(_ uint64, q, r int) int { return q + r }
	}
	return s
}

// roundRobinScript is the single-account scenario's: queue.join for every
// queue, then recipient.ready for every recipient, over and over.
func roundRobinScript(queues, recipients int) []scriptStep {
	var out []scriptStep
	for q := range queues {
		s := step(event.Queue, "join", 0)
		s.entity = func(uint64, int, int) int { return q }
		out = append(out, s)
	}
	for r := range recipients {
		s := step(event.Recipient, "ready", 0)
		s.entity = func(_ uint64, q, _ int) int { return q + r }
		out = append(out, s)
	}
	return out
}

// callScript is one cycle of the multi-tenant scenario's events, in the
// mix `ccevents serve --demo` produces (counted over 541 events of a demo
// run: session 35 %, queue 39 %, recipient 26 %): an answered call, two
// callers who give up, and a recipient's periodic sync — 17 events,
// session 6, queue 7, recipient 4.
func callScript() []scriptStep {
	return []scriptStep{
		// An answered call.
		step(event.Session, "create", 'a'),
		step(event.Queue, "join", 'a'),
		step(event.Recipient, "offer", 'a'),
		step(event.Recipient, "delivered", 'a'),
		step(event.Queue, "delivered", 'a'),
		step(event.Queue, "leave", 'a'),
		step(event.Recipient, "hangup", 'a'),
		step(event.Session, "delete", 'a'),
		// Two callers who give up waiting.
		step(event.Session, "create", 'b'),
		step(event.Queue, "join", 'b'),
		step(event.Session, "create", 'c'),
		step(event.Queue, "join", 'c'),
		step(event.Queue, "leave", 'b'),
		step(event.Session, "delete", 'b'),
		step(event.Queue, "leave", 'c'),
		step(event.Session, "delete", 'c'),
		// The recipient's periodic state.
		step(event.Recipient, "sync", 0),
	}
}

func queueID(i int) string     { return "bench-q" + strconv.Itoa(i) }
func recipientID(i int) string { return "bench-r" + strconv.Itoa(i) }

func sessionID(call uint64, which byte) string {
	id := "bench-s" + strconv.FormatUint(call, 10)
	if which != 0 {
		id += string(rune(which))
	}
	return id
}
