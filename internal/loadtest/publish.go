package loadtest

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/event"
)

// publisher sends catalogue events for one account straight to JetStream
// (stream QUBICLE captures their subjects), round robin over the bench's
// queues and recipients. REST publishing would cap the rate far below what
// the gateway can fan out; NATS is how the engine publishes too.
//
// Each payload's "custom" field carries the bench stamp (see benchMarker):
// the publisher's wall clock in ns just before the publish, for latency, and
// the event's 1-based index among the account's events and among its
// entity's events, so every connection can count gaps on its own stream.
type publisher struct {
	nc      *nats.Conn
	js      jetstream.JetStream
	account string
	nq, nr  int
	pad     string

	acctSeq uint64
	entSeq  []uint64 // queues first, then recipients
	next    int      // round-robin position over entSeq
	errors  atomic.Uint64

	join  event.QueueJoin
	ready event.RecipientReady
}

// maxPendingPublishes bounds unacknowledged publishes, so a stalled stream
// slows the publisher instead of growing memory.
const maxPendingPublishes = 4096

func newPublisher(ctx context.Context, url string, opts []nats.Option, account string, queues, recipients, payloadBytes int) (*publisher, error) {
	nc, err := nats.Connect(url, append([]nats.Option{nats.Name("ccevents-bench"), nats.Timeout(5 * time.Second)}, opts...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s to publish: %w", url, err)
	}
	p := &publisher{nc: nc, account: account, nq: queues, nr: recipients, entSeq: make([]uint64, queues+recipients)}
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
	p.join = event.QueueJoin{CallerIDNumber: "+15555550100", Position: 1, EstimatedWaitS: 30}
	p.ready = event.RecipientReady{Transition: event.Transition{State: event.StateReady, PreviousState: event.StateAway}}
	// Size the padding from a sample with realistic index widths.
	_, sample, err := p.encode(0, 1_000_000, 100_000, time.Now())
	if err != nil {
		nc.Close()
		return nil, err
	}
	if n := payloadBytes - len(sample); n > 0 {
		p.pad = strings.Repeat("x", n)
	}
	return p, nil
}

// encode builds one event for entity k with its stamp.
func (p *publisher) encode(k int, acct, ent uint64, now time.Time) (string, []byte, error) {
	var pl event.Payload
	if k < p.nq {
		p.join.Envelope = event.Envelope{AccountID: p.account, QueueID: queueID(k), SessionID: "bench-s" + strconv.FormatUint(ent, 10)}
		p.join.Position = 1 + int(ent%20)
		pl = &p.join
	} else {
		p.ready.Envelope = event.Envelope{AccountID: p.account, RecipientID: recipientID(k - p.nq)}
		pl = &p.ready
	}
	event.Stamp(pl, now)
	custom := make([]byte, 0, 64+len(p.pad))
	custom = append(custom, `{"`...)
	custom = append(custom, benchMarker...)
	custom = strconv.AppendUint(custom, acct, 10)
	custom = append(custom, `,"e":`...)
	custom = strconv.AppendUint(custom, ent, 10)
	custom = append(custom, `,"t":`...)
	custom = strconv.AppendInt(custom, now.UnixNano(), 10)
	custom = append(custom, `,"z":"`...)
	custom = append(custom, p.pad...)
	custom = append(custom, `"}}`...)
	pl.Env().Custom = custom
	subject, data, err := event.Marshal(pl)
	if err != nil {
		return "", nil, fmt.Errorf("encode bench event: %w", err)
	}
	return subject, data, nil
}

// publishOne sends the next event; the indices advance only when the
// publish was handed to the connection, so a refused publish leaves no gap.
func (p *publisher) publishOne() error {
	k := p.next
	subject, data, err := p.encode(k, p.acctSeq+1, p.entSeq[k]+1, time.Now())
	if err != nil {
		return err
	}
	if _, err := p.js.PublishAsync(subject, data); err != nil {
		p.errors.Add(1)
		return nil
	}
	p.acctSeq++
	p.entSeq[k]++
	p.next = (k + 1) % len(p.entSeq)
	return nil
}

// run publishes at rate events/s for d, pacing by elapsed time so a slow
// moment is caught up rather than lost.
func (p *publisher) run(ctx context.Context, rate float64, d time.Duration) error {
	if rate <= 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(d):
			return nil
		}
	}
	start := time.Now()
	tick := time.NewTicker(time.Millisecond)
	defer tick.Stop()
	var sent uint64
	for {
		el := time.Since(start)
		if el >= d {
			return nil
		}
		due := uint64(rate * el.Seconds())
		for ; sent < due; sent++ {
			// A stalled stream blocks PublishAsync; never overrun the step.
			if sent%64 == 0 && time.Since(start) >= d {
				return nil
			}
			if err := p.publishOne(); err != nil {
				return err
			}
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

// counts is how many events went to the account and to each entity so far.
func (p *publisher) counts() expected {
	return expected{
		Account:    p.acctSeq,
		Queues:     append([]uint64(nil), p.entSeq[:p.nq]...),
		Recipients: append([]uint64(nil), p.entSeq[p.nq:]...),
	}
}

// reset starts the indices over for a new target's connections.
func (p *publisher) reset(account string) {
	p.account, p.acctSeq, p.next = account, 0, 0
	clear(p.entSeq)
}

func (p *publisher) close() { p.nc.Close() }
