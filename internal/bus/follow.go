package bus

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// Follower delivers stored events, in stream order, as they arrive.
type Follower struct {
	b        *Bus
	cons     jetstream.Consumer
	cc       jetstream.ConsumeContext
	stopOnce sync.Once
}

// Stop ends delivery and removes the follower's consumer from the stream;
// the handler is not called after Stop returns.
func (f *Follower) Stop() {
	f.stopOnce.Do(func() {
		f.cc.Stop()
		<-f.cc.Closed()
		f.b.deleteConsumer(f.cons)
	})
}

// consumerIdle is how long the server keeps a consumer nobody pulls from.
// Followers and replays delete theirs when done; this bounds what a crash
// or a failed delete leaves behind, since a stream allows only so many.
const consumerIdle = 30 * time.Second

// deleteConsumer removes a finished consumer at once, so churn of resuming
// clients never piles consumers up against the stream's limit.
func (b *Bus) deleteConsumer(cons jetstream.Consumer) {
	info := cons.CachedInfo()
	if info == nil || info.Name == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_ = b.js.DeleteConsumer(ctx, StreamName, info.Name)
}

func (b *Bus) orderedConsumer(ctx context.Context, filters []string, afterSeq uint64) (jetstream.Consumer, error) {
	cfg := jetstream.OrderedConsumerConfig{FilterSubjects: filters, InactiveThreshold: consumerIdle}
	if afterSeq == 0 {
		cfg.DeliverPolicy = jetstream.DeliverAllPolicy
	} else {
		cfg.DeliverPolicy = jetstream.DeliverByStartSequencePolicy
		cfg.OptStartSeq = afterSeq + 1
	}
	cons, err := b.js.OrderedConsumer(ctx, StreamName, cfg)
	if err != nil {
		return nil, fmt.Errorf("create consumer on %v after %d: %w", filters, afterSeq, err)
	}
	return cons, nil
}

// toMessage also returns how many matching messages the consumer had
// left after msg; ok is false for a message without stream metadata.
func toMessage(msg jetstream.Msg) (m Message, pending uint64, ok bool) {
	md, err := msg.Metadata()
	if err != nil {
		return Message{}, 0, false
	}
	return Message{Subject: msg.Subject(), Data: msg.Data(), Sequence: md.Sequence.Stream, Time: md.Timestamp}, md.NumPending, true
}

// Follow calls fn, one message at a time and in stream order, for every
// stored event matching filters whose sequence is greater than afterSeq,
// then for each new one as it is stored, until Stop. afterSeq 0 starts at the
// beginning of history; use FollowNew to start at the current end.
func (b *Bus) Follow(ctx context.Context, filters []string, afterSeq uint64, fn func(Message)) (*Follower, error) {
	cons, err := b.orderedConsumer(ctx, filters, afterSeq)
	if err != nil {
		return nil, err
	}
	cc, err := cons.Consume(func(msg jetstream.Msg) {
		if m, _, ok := toMessage(msg); ok {
			fn(m)
		}
	})
	if err != nil {
		return nil, fmt.Errorf("consume %v: %w", filters, err)
	}
	return &Follower{b: b, cons: cons, cc: cc}, nil
}

// FollowNew is Follow from the current end of the stream. It returns the
// sequence it started after, so a caller can join history and live events
// without a gap.
func (b *Bus) FollowNew(ctx context.Context, filters []string, fn func(Message)) (*Follower, uint64, error) {
	bounds, err := b.Bounds(ctx)
	if err != nil {
		return nil, 0, err
	}
	f, err := b.Follow(ctx, filters, bounds.Last, fn)
	if err != nil {
		return nil, 0, err
	}
	return f, bounds.Last, nil
}

// Replay calls fn for every stored event matching filters with a sequence in
// (afterSeq, untilSeq], in order, and returns when it has passed untilSeq or
// reached the end of what is stored. An error from fn stops the replay and is
// returned.
func (b *Bus) Replay(ctx context.Context, filters []string, afterSeq, untilSeq uint64, fn func(Message) error) error {
	if untilSeq <= afterSeq {
		return nil
	}
	r, err := b.OpenReplay(ctx, filters, afterSeq, untilSeq)
	if err != nil {
		return err
	}
	defer r.Close()
	return r.Run(ctx, fn)
}

// A Reader reads stored events in stream order from a position fixed when
// it is opened. Opening first tells the caller whether history still
// reaches back far enough before it promises its client anything, with no
// second request whose answer could be out of date by the time it reads.
type Reader struct {
	b       *Bus
	cons    jetstream.Consumer
	filters []string
	after   uint64
	until   uint64
	start   uint64
	pending uint64
}

// OpenReplay positions a Reader on the stored events matching filters with
// a sequence in (afterSeq, untilSeq]. Close releases it.
func (b *Bus) OpenReplay(ctx context.Context, filters []string, afterSeq, untilSeq uint64) (*Reader, error) {
	var r *Reader
	// A stream busy with many resumes at once answers late or not at all:
	// worth waiting for until ctx ends.
	err := retryTransient(ctx, func(ctx context.Context) error {
		cons, err := b.orderedConsumer(ctx, filters, afterSeq)
		if err != nil {
			return err
		}
		// The create reply carried the consumer's state: no second request.
		// The server starts a consumer at the oldest stored message when
		// the one asked for is gone, and reports the sequence before its
		// start.
		info := cons.CachedInfo()
		if info == nil {
			b.deleteConsumer(cons)
			return fmt.Errorf("replay %v: the consumer was created without its state", filters)
		}
		r = &Reader{
			b: b, cons: cons, filters: filters, after: afterSeq, until: untilSeq,
			start: info.Delivered.Stream + 1, pending: info.NumPending,
		}
		return nil
	})
	return r, err
}

// Complete reports whether history still holds everything after the
// sequence the Reader was opened after: nothing in between has aged out.
func (r *Reader) Complete() bool { return r.start <= r.after+1 }

// Start is the first sequence the Reader can deliver: the one after the
// sequence it was opened after, or the oldest stored when that one is gone.
func (r *Reader) Start() uint64 { return r.start }

// replayPrefetch bounds how many messages a replay asks the server for at
// once, so that thousands of clients resuming together do not each buffer
// the default 500.
const replayPrefetch = 128

// Run calls fn for each event in order until it has passed the upper bound
// or reached the end of what is stored. An error from fn stops it and is
// returned.
func (r *Reader) Run(ctx context.Context, fn func(Message) error) error {
	if r.pending == 0 || r.until <= r.after {
		return nil // nothing to read: Next would wait
	}
	it, err := r.cons.Messages(jetstream.PullMaxMessages(int(min(r.pending, replayPrefetch))))
	if err != nil {
		return fmt.Errorf("replay %v: %w", r.filters, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			// A done ctx comes back as ctx.Err() itself.
			return fmt.Errorf("replay %v after %d: %w", r.filters, r.after, err)
		}
		m, pending, ok := toMessage(msg)
		if !ok {
			continue
		}
		if m.Sequence > r.until {
			return nil
		}
		if err := fn(m); err != nil {
			return err
		}
		if m.Sequence >= r.until || pending == 0 {
			return nil
		}
	}
}

// Close removes the Reader's consumer from the stream.
func (r *Reader) Close() { r.b.deleteConsumer(r.cons) }
