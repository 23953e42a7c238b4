package bus

import (
	"context"
	"errors"
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

func toMessage(msg jetstream.Msg) (Message, bool) {
	md, err := msg.Metadata()
	if err != nil {
		return Message{}, false
	}
	return Message{Subject: msg.Subject(), Data: msg.Data(), Sequence: md.Sequence.Stream, Time: md.Timestamp}, true
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
		if m, ok := toMessage(msg); ok {
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
	cons, err := b.orderedConsumer(ctx, filters, afterSeq)
	if err != nil {
		return err
	}
	defer b.deleteConsumer(cons)
	// Nothing to read when no stored message matches: Next would wait.
	info, err := cons.Info(ctx)
	if err != nil {
		return fmt.Errorf("replay %v: read consumer state: %w", filters, err)
	}
	if info.NumPending == 0 {
		return nil
	}
	it, err := cons.Messages()
	if err != nil {
		return fmt.Errorf("replay %v: %w", filters, err)
	}
	defer it.Stop()
	for {
		msg, err := it.Next(jetstream.NextContext(ctx))
		if err != nil {
			if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
				return fmt.Errorf("replay %v after %d: %w", filters, afterSeq, ctx.Err())
			}
			return fmt.Errorf("replay %v after %d: %w", filters, afterSeq, err)
		}
		m, ok := toMessage(msg)
		if !ok {
			continue
		}
		md, _ := msg.Metadata()
		if m.Sequence > untilSeq {
			return nil
		}
		if err := fn(m); err != nil {
			return err
		}
		if m.Sequence >= untilSeq || md.NumPending == 0 {
			return nil
		}
	}
}
