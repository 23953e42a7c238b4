package testkit

import (
	"context"
	"errors"
	"testing"
	"time"
)

// The interval between two checks starts small, so a condition that holds
// soon is seen at once, and doubles up to a cap, so a slow one (an HTTP
// round trip, a stream read) is not checked in a busy loop.
const (
	firstInterval = time.Millisecond
	maxInterval   = 100 * time.Millisecond
)

// Eventually checks cond until it holds, and fails the test if it still
// does not after limit. limit bounds a hang, it is not a speed claim: give
// it room in proportion to the work (a busy machine runs tests at a
// fraction of their quiet speed). what says what was awaited ("the renewed
// certificate to be served"); the failure message is what, after how long
// and how many checks the wait gave up.
//
// Call it from the test's goroutine: it ends the test with t.Fatalf.
func Eventually(t testing.TB, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	EventuallyNoError(t, limit, what, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
}

// EventuallyNoError is Eventually for a check that says why it does not
// hold yet: it checks until check returns nil, and the failure message
// carries the last error it returned.
func EventuallyNoError(t testing.TB, limit time.Duration, what string, check func() error) {
	t.Helper()
	start := time.Now()
	checks, err := poll(context.Background(), limit, check)
	if err == nil {
		return
	}
	if err == errNotYet {
		t.Fatalf("gave up after %s (%d checks): %s", time.Since(start).Round(time.Millisecond), checks, what)
	}
	t.Fatalf("gave up after %s (%d checks): %s: %v", time.Since(start).Round(time.Millisecond), checks, what, err)
}

// Until checks cond until it holds (true), or until limit passes or ctx
// ends (false), for waits that are not failures of their own: a soak run
// that reports what did not settle, a helper that returns an error.
func Until(ctx context.Context, limit time.Duration, cond func() bool) bool {
	_, err := poll(ctx, limit, func() error {
		if cond() {
			return nil
		}
		return errNotYet
	})
	return err == nil
}

// errNotYet is what a condition that does not hold yet reports to poll.
var errNotYet = errors.New("the condition does not hold yet")

// poll runs check until it returns nil, limit passes or ctx ends; it
// returns how many times check ran and its last error. check always runs
// at least once, and once more after the deadline is seen, so a condition
// that came true while poll slept is not reported as a failure.
func poll(ctx context.Context, limit time.Duration, check func() error) (int, error) {
	deadline := time.Now().Add(limit)
	interval := firstInterval
	for checks := 1; ; checks++ {
		err := check()
		if err == nil {
			return checks, nil
		}
		left := time.Until(deadline)
		if left <= 0 || ctx.Err() != nil {
			return checks, err
		}
		timer := time.NewTimer(min(interval, left))
		select {
		case <-ctx.Done():
		case <-timer.C:
		}
		timer.Stop()
		interval = min(2*interval, maxInterval)
	}
}
