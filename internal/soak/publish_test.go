package soak

import (
	"cmp"
	"context"
	"fmt"
	"hash/fnv"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/event"
)

// streamName is the JetStream stream ccevents keeps its events in.
const streamName = "QUBICLE"

// pubEvent is one event the stream acknowledged: its sequence, its kind
// and a hash of its event_id, to catch a frame that carries the right
// sequence but someone else's payload.
type pubEvent struct {
	seq  uint64
	kind *evKind
	id   uint32
}

func idHash(eventID string) uint32 {
	h := fnv.New32a()
	_, _ = h.Write([]byte(eventID))
	return h.Sum32()
}

// newPayload builds a valid catalogue event of kind k for account acc, or
// nil for a kind it does not know.
func newPayload(acc string, k *evKind, rng *rand.Rand) event.Payload {
	session := soakEntities["session"][rng.IntN(len(soakEntities["session"]))]
	switch k.family + "." + k.name {
	case "queue.join":
		return &event.QueueJoin{Envelope: event.Envelope{AccountID: acc, QueueID: k.entity, SessionID: session},
			CallerIDName: "Soak Caller", CallerIDNumber: "+15550100", Position: 1 + rng.IntN(10), EstimatedWaitS: rng.IntN(300)}
	case "queue.leave":
		return &event.QueueLeave{Envelope: event.Envelope{AccountID: acc, QueueID: k.entity, SessionID: session},
			Reason: event.LeaveAbandoned, Position: 1 + rng.IntN(10), WaitDurationMS: rng.Int64N(600_000)}
	case "recipient.ready":
		return &event.RecipientReady{Envelope: event.Envelope{AccountID: acc, RecipientID: k.entity},
			Transition: event.Transition{State: event.StateReady, PreviousState: event.StateAway}}
	case "recipient.away":
		return &event.RecipientAway{Envelope: event.Envelope{AccountID: acc, RecipientID: k.entity},
			Transition: event.Transition{State: event.StateAway, PreviousState: event.StateReady}, Reason: "break"}
	case "session.create":
		return &event.SessionCreate{Envelope: event.Envelope{AccountID: acc, SessionID: k.entity, QueueID: "sales"},
			CallerIDName: "Soak Caller", CallerIDNumber: "+15550100", Callee: "+15550199", Direction: event.Inbound}
	case "session.delete":
		return &event.SessionDelete{Envelope: event.Envelope{AccountID: acc, SessionID: k.entity},
			DisconnectCauseCode: 16, DisconnectCause: event.CauseNormalClearing, HangupBy: event.PartyCaller, DurationMS: rng.Int64N(600_000)}
	}
	return nil
}

// publisher publishes valid events straight to JetStream on the gateway's
// embedded NATS, at a steady rate, as the engine does. Each publish carries
// its event_id as the message id and is retried until acknowledged, so a
// publish caught by a restart is stored exactly once and its sequence is
// known: the acknowledgements are the truth every client is checked
// against.
type publisher struct {
	nc    *nats.Conn
	js    jetstream.JetStream
	accts []*account

	mu     sync.Mutex
	events [][]pubEvent // per account, in publish order
	errs   []string

	published, retries, duplicates atomic.Int64
}

// newPublisher signs in as ccevents with the seed in seedFile: only
// ccevents may publish events straight into the stream.
func newPublisher(url, seedFile string, accts []*account) (*publisher, error) {
	creds, err := nats.NkeyOptionFromSeed(seedFile)
	if err != nil {
		return nil, fmt.Errorf("NATS credentials: %w", err)
	}
	nc, err := nats.Connect(url, nats.Name("ccevents-soak"), creds,
		nats.MaxReconnects(-1), nats.ReconnectWait(100*time.Millisecond),
		// Publishing while disconnected fails at once instead of being
		// buffered: the retry loop below owns every attempt.
		nats.ReconnectBufSize(-1))
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s: %w", url, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, err
	}
	return &publisher{nc: nc, js: js, accts: accts, events: make([][]pubEvent, len(accts))}, nil
}

func (p *publisher) close() { p.nc.Close() }

// run publishes rate events per second, over accts by their weights, until
// stop is closed. A publish held up by a restart delays the next ones; the
// missed slots are skipped, not caught up, so the rate stays steady.
func (p *publisher) run(rate float64, accts []*account, seed uint64, stop <-chan struct{}) {
	rng := rand.New(rand.NewPCG(seed, 1))
	interval := time.Duration(float64(time.Second) / rate)
	next := time.Now()
	for {
		select {
		case <-stop:
			return
		case <-time.After(time.Until(next)):
		}
		p.publishOne(pickAccount(rng, accts), rng, nil)
		next = next.Add(interval)
		if now := time.Now(); now.Sub(next) > interval {
			next = now
		}
	}
}

// pickAccount picks an account by weight.
func pickAccount(rng *rand.Rand, accts []*account) *account {
	x := rng.Float64()
	for _, a := range accts {
		if x < a.weight {
			return a
		}
		x -= a.weight
	}
	return accts[len(accts)-1]
}

// publishOne publishes one event of a random kind to a, with custom as its
// custom data, and records its acknowledgement.
func (p *publisher) publishOne(a *account, rng *rand.Rand, custom []byte) {
	k := a.kinds[rng.IntN(len(a.kinds))]
	pl := newPayload(a.id, k, rng)
	if pl == nil {
		p.fail("no payload for %s", k.subject)
		return
	}
	event.Stamp(pl, time.Now())
	pl.Env().Custom = custom
	subject, data, err := event.Marshal(pl)
	if err != nil {
		p.fail("encode %s: %v", k.subject, err)
		return
	}
	id := pl.Env().EventID
	begin := time.Now()
	for attempt := 0; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
		ack, err := p.js.Publish(ctx, subject, data, jetstream.WithMsgID(id))
		cancel()
		if err == nil {
			if ack.Stream != streamName {
				p.fail("event %s stored in stream %q, want %s", id, ack.Stream, streamName)
				return
			}
			if ack.Duplicate {
				p.duplicates.Add(1)
			}
			p.published.Add(1)
			p.mu.Lock()
			p.events[a.idx] = append(p.events[a.idx], pubEvent{seq: ack.Sequence, kind: k, id: idHash(id)})
			p.mu.Unlock()
			return
		}
		if time.Since(begin) > 90*time.Second {
			// Its fate is unknown: clients may or may not get it, and the
			// check would blame them either way.
			p.fail("event %s on %s never acknowledged in 90s (%d attempts): %v", id, subject, attempt+1, err)
			return
		}
		p.retries.Add(1)
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *publisher) fail(format string, args ...any) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.errs = append(p.errs, fmt.Sprintf(format, args...))
}

// acked returns the acknowledged events of every account, by sequence.
func (p *publisher) acked() [][]pubEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([][]pubEvent, len(p.events))
	for i, evs := range p.events {
		out[i] = slices.Clone(evs)
		slices.SortFunc(out[i], func(a, b pubEvent) int { return cmp.Compare(a.seq, b.seq) })
	}
	return out
}

// consumers is how many JetStream consumers the stream has: the gateway
// creates them to follow accounts and to replay history.
func (p *publisher) consumers(ctx context.Context) (int, error) {
	st, err := p.js.Stream(ctx, streamName)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Consumers, nil
}

// checkStream compares what the stream holds for each account with what
// was acknowledged: a retried publish stored twice, or an event nobody
// published, would make clients look wrong for the stream's fault.
func (p *publisher) checkStream(ctx context.Context, acked [][]pubEvent) error {
	st, err := p.js.Stream(ctx, streamName)
	if err != nil {
		return err
	}
	for i, a := range p.accts {
		info, err := st.Info(ctx, jetstream.WithSubjectFilter("qubicle.*."+a.id+".>"))
		if err != nil {
			return fmt.Errorf("stream info for account %s: %w", a.id, err)
		}
		want := map[string]uint64{}
		for _, e := range acked[i] {
			want[e.kind.subject]++
		}
		for subj, n := range info.State.Subjects {
			if want[subj] != n {
				return fmt.Errorf("stream holds %d events on %s, the publisher had %d acknowledged", n, subj, want[subj])
			}
		}
		for subj, n := range want {
			if _, ok := info.State.Subjects[subj]; !ok {
				return fmt.Errorf("stream holds no event on %s, the publisher had %d acknowledged", subj, n)
			}
		}
		for j := 1; j < len(acked[i]); j++ {
			if acked[i][j].seq == acked[i][j-1].seq {
				return fmt.Errorf("sequence %d acknowledged for two events", acked[i][j].seq)
			}
		}
	}
	return nil
}

// TestSoakPayloadsAreValidEvents checks that every kind of event the soak
// publishes passes the catalogue's validation, so a refused publish is
// never mistaken for a gateway fault.
func TestSoakPayloadsAreValidEvents(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, k := range kindsFor("0123456789abcdef0123456789abcdef") {
		pl := newPayload("0123456789abcdef0123456789abcdef", k, rng)
		if pl == nil {
			t.Errorf("no payload for %s", k.subject)
			continue
		}
		event.Stamp(pl, time.Now())
		subject, data, err := event.Marshal(pl)
		if err != nil {
			t.Errorf("%s: %v", k.subject, err)
			continue
		}
		if subject != k.subject {
			t.Errorf("routing key %s, want %s", subject, k.subject)
		}
		if _, _, err := event.Validate(subject, data); err != nil {
			t.Errorf("%s: %v", k.subject, err)
		}
	}
}
