// Package backoff spaces out the attempts of a retry loop: each wait
// doubles from a first one up to a cap. With EqualJitter a random part of
// each wait, up to half, is taken away, so that many processes retrying at
// once (clients dropped by one gateway restart) spread out instead of
// returning in one burst, yet none retries at once.
//
// backoff only computes waits and sleeps through them (Sleep is the one
// context-aware sleep of the project). It must never import
// anything of the project nor keep state between loops, so every package,
// the public Go SDK in client/ included, may use it.
package backoff

import (
	"context"
	"math/rand/v2"
	"time"
)

// Jitter says whether a retry loop's waits are randomised.
type Jitter bool

const (
	// NoJitter waits exactly the doubled wait: for a loop that one process
	// runs on its own, where the wait is part of its contract.
	NoJitter Jitter = false
	// EqualJitter takes a random part, up to half, off each wait: for
	// loops that many processes run at the same moment.
	EqualJitter Jitter = true
)

// Backoff hands out the waits of one retry loop. Make one with New for
// each loop; it is not safe for concurrent use.
type Backoff struct {
	first, limit time.Duration
	jitter       Jitter
	attempt      int // waits handed out since New or Reset
}

// New returns a Backoff whose waits double from first (at least a
// nanosecond) up to limit (at least first), randomised as jitter says.
func New(first, limit time.Duration, jitter Jitter) Backoff {
	first = max(first, time.Nanosecond)
	return Backoff{first: first, limit: max(limit, first), jitter: jitter}
}

// Next counts an attempt and returns the wait before it: the first wait
// doubled once for each wait handed out before, capped at the limit, less
// a random part of up to half with EqualJitter.
func (b *Backoff) Next() time.Duration {
	d := b.first
	for i := 0; i < b.attempt && d < b.limit; i++ {
		if d > b.limit/2 {
			d = b.limit // doubling would pass it, or overflow
		} else {
			d *= 2
		}
	}
	b.attempt++
	if b.jitter == NoJitter {
		return d
	}
	half := d / 2
	return half + rand.N(d-half+1)
}

// Attempt returns how many waits Next has handed out since New or Reset.
func (b *Backoff) Attempt() int { return b.attempt }

// Reset starts the waits over from the first, after an attempt that held.
func (b *Backoff) Reset() { b.attempt = 0 }

// Wait sleeps for the wait Next returns, or until ctx ends: then it
// returns ctx's error.
func (b *Backoff) Wait(ctx context.Context) error { return Sleep(ctx, b.Next()) }

// Sleep waits for d, or until ctx ends: then it returns ctx's error. A d of
// zero or less returns at once, with ctx's error if it has ended.
func Sleep(ctx context.Context, d time.Duration) error {
	if d <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
