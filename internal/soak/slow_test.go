package soak

import (
	"context"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/ccevents/ccevents/internal/backoff"
	"github.com/ccevents/ccevents/internal/testkit"
)

// slowEpisodes pauses one slow reader at a time and, meanwhile, publishes
// large events to the firehose account only slow readers subscribe to,
// until the gateway reports a slow-consumer close (or 20 s pass); then the
// reader reads again: it must find the 4008 close after what was queued,
// reconnect and resume without loss. On loopback the kernel buffers about
// 4 MiB for a reader that stops, hence the large events.
type slowEpisodes struct {
	episodes, overflowed, interrupted int
	took                              []time.Duration // pause to overflow
}

// run runs episodes, one slow reader after another, until ctx ends.
func (e *slowEpisodes) run(ctx context.Context, gw *gatewayProc, pub *publisher, firehose *account, slows []*rawClient, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 3))
	custom := []byte(`{"pad":"` + strings.Repeat("x", firehosePad) + `"}`)
	for i := 0; ctx.Err() == nil; i++ {
		c := slows[i%len(slows)]
		if !c.subscribed.Load() {
			_ = backoff.Sleep(ctx, 500*time.Millisecond)
			continue
		}
		m, err := gw.scrape(ctx)
		if err != nil {
			_ = backoff.Sleep(ctx, 500*time.Millisecond)
			continue
		}
		before, gen, sessions := m.closed4008(), gw.gen.Load(), c.sessions.Load()
		c.pause()
		paused := time.Now()
		overflowed := false
		next := paused
		for n := 1; !overflowed && time.Since(paused) < 20*time.Second && ctx.Err() == nil; n++ {
			pub.publishOne(firehose, rng, custom)
			next = next.Add(time.Second / firehoseRate)
			_ = backoff.Sleep(ctx, time.Until(next))
			if n%8 == 0 {
				if m, err := gw.scrape(ctx); err == nil && m.closed4008() > before {
					overflowed = true
				}
			}
		}
		c.resume()
		e.episodes++
		switch {
		case gw.gen.Load() != gen:
			e.interrupted++
		case overflowed:
			e.overflowed++
			e.took = append(e.took, time.Since(paused).Round(100*time.Millisecond))
		}
		// Let it read the close, reconnect and catch up before the next.
		testkit.Until(ctx, 20*time.Second, func() bool { return !overflowed || (c.sessions.Load() > sessions && c.subscribed.Load()) })
		_ = backoff.Sleep(ctx, 2*time.Second)
	}
}
