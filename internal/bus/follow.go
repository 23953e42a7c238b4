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
// Followers delete theirs when done; this bounds what a crash or a failed
// delete leaves behind, since a stream allows only so many.
const consumerIdle = 30 * time.Second

// deleteConsumer removes a finished consumer at once, so churn never piles
// consumers up against the stream's limit.
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

// toMessage reads a consumer's message; ok is false for a message without
// stream metadata.
func toMessage(msg jetstream.Msg) (m Message, ok bool) {
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
	}, jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
		// The ordered consumer recreates itself after each of these.
		b.log.Warn("following the event stream", "filters", filters, "err", err)
	}))
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
