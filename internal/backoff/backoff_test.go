package backoff

import (
	"context"
	"errors"
	"math"
	"testing"
	"time"
)

func TestWaitsDoubleUpToTheLimit(t *testing.T) {
	for _, tc := range []struct {
		name         string
		first, limit time.Duration
		attempt      int           // from 1
		full         time.Duration // the wait before jitter
	}{
		{"first attempt", 100 * time.Millisecond, 2 * time.Second, 1, 100 * time.Millisecond},
		{"second doubles", 100 * time.Millisecond, 2 * time.Second, 2, 200 * time.Millisecond},
		{"third doubles again", 100 * time.Millisecond, 2 * time.Second, 3, 400 * time.Millisecond},
		{"fifth", 100 * time.Millisecond, 2 * time.Second, 5, 1600 * time.Millisecond},
		{"sixth reaches the limit", 100 * time.Millisecond, 2 * time.Second, 6, 2 * time.Second},
		{"the limit holds", 100 * time.Millisecond, 2 * time.Second, 60, 2 * time.Second},
		{"a limit that is no power of two is reached exactly", 3 * time.Millisecond, 10 * time.Millisecond, 4, 10 * time.Millisecond},
		{"a limit below first is first", time.Second, time.Millisecond, 3, time.Second},
		{"a huge limit never overflows", time.Hour, math.MaxInt64, 200, math.MaxInt64},
		{"a first wait of zero is a nanosecond", 0, time.Microsecond, 1, time.Nanosecond},
	} {
		t.Run(tc.name+"/no jitter", func(t *testing.T) {
			b := New(tc.first, tc.limit, NoJitter)
			var d time.Duration
			for range tc.attempt {
				d = b.Next()
			}
			if d != tc.full {
				t.Fatalf("attempt %d: wait %s, want exactly %s", tc.attempt, d, tc.full)
			}
			if b.Attempt() != tc.attempt {
				t.Fatalf("Attempt() = %d after %d waits", b.Attempt(), tc.attempt)
			}
		})
		t.Run(tc.name+"/equal jitter", func(t *testing.T) {
			for range 200 {
				b := New(tc.first, tc.limit, EqualJitter)
				var d time.Duration
				for range tc.attempt {
					d = b.Next()
				}
				if d < tc.full/2 || d > tc.full {
					t.Fatalf("attempt %d: wait %s, want between %s and %s", tc.attempt, d, tc.full/2, tc.full)
				}
				if b.Attempt() != tc.attempt {
					t.Fatalf("Attempt() = %d after %d waits", b.Attempt(), tc.attempt)
				}
			}
		})
	}
}

func TestEqualJitterSpreadsRetriersOverTheWholeUpperHalf(t *testing.T) {
	seen := map[time.Duration]bool{}
	lowest, highest := time.Duration(math.MaxInt64), time.Duration(0)
	for range 2000 {
		b := New(time.Second, time.Minute, EqualJitter)
		b.Next()
		b.Next()
		d := b.Next() // 4s before jitter
		seen[d] = true
		lowest, highest = min(lowest, d), max(highest, d)
	}
	if len(seen) < 1000 {
		t.Fatalf("2000 retriers got only %d distinct waits; they would return together", len(seen))
	}
	// Uniform over [2s, 4s]: 2000 draws come within 100ms of either end
	// except with a probability below 1e-40.
	if lowest > 2100*time.Millisecond || highest < 3900*time.Millisecond {
		t.Fatalf("waits spread over [%s, %s], want close to all of [2s, 4s]", lowest, highest)
	}
}

func TestResetStartsOverFromTheFirstWait(t *testing.T) {
	for _, jitter := range []Jitter{NoJitter, EqualJitter} {
		b := New(time.Millisecond, time.Hour, jitter)
		for range 10 {
			b.Next()
		}
		b.Reset()
		if b.Attempt() != 0 {
			t.Fatalf("Attempt() = %d after Reset, want 0", b.Attempt())
		}
		if d := b.Next(); d > time.Millisecond || b.Attempt() != 1 {
			t.Fatalf("jitter %v, after Reset: wait %s at attempt %d, want at most 1ms at attempt 1", jitter, d, b.Attempt())
		}
	}
}

func TestSleepAndWaitEndWithTheirContext(t *testing.T) {
	ended, cancel := context.WithCancel(t.Context())
	cancel()
	sleep := func(d time.Duration) func(context.Context) error {
		return func(ctx context.Context) error { return Sleep(ctx, d) }
	}
	wait := func(first time.Duration) func(context.Context) error {
		b := New(first, first, EqualJitter)
		return b.Wait
	}
	for _, tc := range []struct {
		name  string
		ctx   context.Context
		sleep func(context.Context) error
		want  error
	}{
		{"Sleep returns once d is over", t.Context(), sleep(time.Microsecond), nil},
		{"Sleep of zero returns at once", t.Context(), sleep(0), nil},
		{"Sleep of less than zero returns at once", t.Context(), sleep(-time.Second), nil},
		{"Sleep ends with its context", ended, sleep(time.Hour), context.Canceled},
		{"Sleep of zero on an ended context says so", ended, sleep(0), context.Canceled},
		{"Wait returns once its wait is over", t.Context(), wait(time.Microsecond), nil},
		{"Wait ends with its context", ended, wait(time.Hour), context.Canceled},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.sleep(tc.ctx); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestWaitCountsAnAttempt(t *testing.T) {
	b := New(time.Microsecond, time.Microsecond, NoJitter)
	if err := b.Wait(t.Context()); err != nil || b.Attempt() != 1 {
		t.Fatalf("Wait = %v, Attempt() = %d after one Wait, want nil and 1", err, b.Attempt())
	}
}
