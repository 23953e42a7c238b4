package soak

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/ccevents/ccevents/client"
)

// sdkClient is a client of the Go SDK, which reconnects and resumes on its
// own: the soak checks that its handler sees every event once, in order,
// across gateway restarts.
type sdkClient struct {
	run   *soakRun
	id    int
	s     *stream
	c     *client.Client
	gate  chan struct{} // holds the handler until the start is read
	probs problems
	drops tally // why the SDK's connections ended
}

// start dials and subscribes every binding of the stream in one request.
func (sc *sdkClient) start(ctx context.Context) error {
	sc.gate = make(chan struct{})
	c, err := client.Dial(ctx, client.Options{
		URL: sc.run.gw.wsURL(), Token: sc.s.acct.token,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: 2 * time.Second,
		OnConnState: func(ev client.ConnEvent) {
			if ev.State != client.Disconnected {
				return
			}
			var ce *client.CloseError
			switch {
			case errors.As(ev.Err, &ce):
				sc.drops.add(fmt.Sprintf("close %d", ce.Code))
			case ev.Attempt == 1:
				sc.drops.add("lost")
			}
		},
	})
	if err != nil {
		return fmt.Errorf("SDK client %d: dial: %w", sc.id, err)
	}
	sc.c = c
	subs, err := c.SubscribeBindings(ctx, sc.s.acct.id, sc.s.bindings, sc.handle,
		client.OnResync(func(r client.Resync) {
			sc.probs.add("resync needed on %s: %s", r.Binding, r.Reason())
		}))
	if err != nil {
		return fmt.Errorf("SDK client %d: subscribe: %w", sc.id, err)
	}
	// No handler has run yet (they wait for the gate), so this is where
	// the subscription went live.
	p := client.LatestPosition(subs...)
	if !sc.run.sameEpoch(p.Epoch) {
		sc.probs.add("subscribed in epoch %q, the run's is %q", p.Epoch, *sc.run.epoch.Load())
	}
	sc.s.begin(p.Sequence)
	close(sc.gate)
	return nil
}

func (sc *sdkClient) handle(ev client.Event) {
	<-sc.gate
	sc.run.frames.Add(1)
	pl, err := ev.Decode()
	if err != nil {
		sc.probs.add("event %d: %v", ev.Sequence, err)
		return
	}
	env := pl.Env()
	switch {
	case env.Sequence != ev.Sequence:
		sc.probs.add("event %d: payload sequence %d", ev.Sequence, env.Sequence)
	case env.AccountID != sc.s.acct.id:
		sc.probs.add("event %d of account %s", ev.Sequence, env.AccountID)
	case !sc.run.sameEpoch(ev.Epoch):
		sc.probs.add("event %d with epoch %q", ev.Sequence, ev.Epoch)
	}
	if msg := sc.s.accept(ev.RoutingKey, ev.SubscribedKey, ev.Sequence, env.EventID); msg != "" {
		sc.probs.add("%s", msg)
	}
}

func (sc *sdkClient) close() {
	if sc.c == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if err := sc.c.Close(ctx); err != nil {
		sc.probs.add("close: %v", err)
	}
}
