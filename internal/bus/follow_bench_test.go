package bus_test

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/natstest"
)

// BenchmarkLiveAccounts compares ways for one gateway to receive the live
// events of many accounts (docs/decisions.md, "Live events: one consumer
// per gateway"). Each op is one event, published round robin over the
// accounts and received by the account's follower; the metrics say what
// the followers hold:
//
//	consumers     JetStream consumers on the stream
//	subs          core NATS subscriptions of the client
//	B/account     heap of the whole process (client and embedded server)
//	              per account after the followers are set up
//
// Designs:
//
//	per-account   an ordered consumer per account, filtered to it (the
//	              gateway before issue 14); the stream allows 1,000
//	wide          one ordered consumer on the whole stream, the account
//	              looked up in a map for each event (the gateway now)
//	republish     the stream republishes every stored event to a core
//	              subject, one core subscription per account; a gap can
//	              only be seen per subject, not per account
func BenchmarkLiveAccounts(b *testing.B) {
	for _, design := range []string{"per-account", "wide", "republish"} {
		for _, accounts := range []int{10, 900, 10000} {
			if design == "per-account" && accounts > 900 {
				continue // beyond the stream's 1,000 consumers
			}
			b.Run(fmt.Sprintf("design=%s/accounts=%d", design, accounts), func(b *testing.B) {
				benchmarkLiveAccounts(b, design, accounts)
			})
		}
	}
}

func benchmarkLiveAccounts(b *testing.B, design string, accounts int) {
	ctx := context.Background()
	bs := natstest.Bus(b, bus.Config{Memory: true, Name: "bench"})
	js := bs.JetStream()
	accs := make([]string, accounts)
	for i := range accs {
		accs[i] = fmt.Sprintf("%032x", i+1)
	}
	var got atomic.Int64
	count := func(bus.Message) { got.Add(1) }
	heap0 := heapInUse()
	var stop []func()
	subs := 0
	switch design {
	case "per-account":
		for _, a := range accs {
			f, err := bs.Follow(ctx, []string{"qubicle.*." + a + ".>"}, 0, count)
			if err != nil {
				b.Fatal(err)
			}
			stop = append(stop, f.Stop)
		}
	case "wide":
		seen := make(map[string]func(bus.Message), accounts)
		for _, a := range accs {
			seen[a] = count
		}
		f, err := bs.Follow(ctx, []string{bus.StreamSubjects}, 0, func(m bus.Message) {
			if fn := seen[strings.Split(m.Subject, ".")[2]]; fn != nil {
				fn(m)
			}
		})
		if err != nil {
			b.Fatal(err)
		}
		stop = append(stop, f.Stop)
	case "republish":
		s, err := js.Stream(ctx, bus.StreamName)
		if err != nil {
			b.Fatal(err)
		}
		cfg := s.CachedInfo().Config
		cfg.RePublish = &jetstream.RePublish{Source: bus.StreamSubjects, Destination: "live.>"}
		if _, err := js.UpdateStream(ctx, cfg); err != nil {
			b.Fatal(err)
		}
		for _, a := range accs {
			// "qubicle.>" republished to "live.>" keeps the tokens after qubicle.
			sub, err := bs.Conn().Subscribe("live.*."+a+".>", func(*nats.Msg) { got.Add(1) })
			if err != nil {
				b.Fatal(err)
			}
			stop = append(stop, func() { _ = sub.Unsubscribe() })
			subs++
		}
	}
	defer func() {
		for _, s := range stop {
			s()
		}
	}()
	heap1 := heapInUse()
	s, err := js.Stream(ctx, bus.StreamName)
	if err != nil {
		b.Fatal(err)
	}
	info, err := s.Info(ctx)
	if err != nil {
		b.Fatal(err)
	}

	payload := []byte(`{"account_id":"x","event":"queue.join","pad":"` + strings.Repeat("x", 250) + `"}`)
	pub, err := jetstream.New(bs.Conn(), jetstream.WithPublishAsyncMaxPending(4096))
	if err != nil {
		b.Fatal(err)
	}
	b.ResetTimer()
	for i := range b.N {
		subject := fmt.Sprintf("qubicle.queue.%s.Q%d.join", accs[i%accounts], i%7)
		for {
			_, err := pub.PublishAsync(subject, payload)
			if err == nil {
				break
			}
			if !errors.Is(err, jetstream.ErrTooManyStalledMsgs) {
				b.Fatal(err)
			}
			<-pub.PublishAsyncComplete()
		}
	}
	deadline := time.Now().Add(time.Minute + time.Duration(b.N)*time.Millisecond)
	for got.Load() < int64(b.N) {
		if time.Now().After(deadline) {
			b.Fatalf("received %d of %d events", got.Load(), b.N)
		}
		time.Sleep(time.Millisecond)
	}
	b.StopTimer()
	b.ReportMetric(float64(info.State.Consumers), "consumers")
	b.ReportMetric(float64(subs), "subs")
	b.ReportMetric(float64(int64(heap1)-int64(heap0))/float64(accounts), "B/account")
}

func heapInUse() uint64 {
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return ms.HeapInuse
}
