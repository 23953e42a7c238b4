package bus

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ccevents/ccevents/internal/backoff"
)

// MinServerVersion is the oldest nats-server ccevents runs on: it relies on
// consumers with several filter subjects and on stream metadata (2.10) and
// is tested on 2.11 and later. An older server is refused before anything
// is created on it.
const MinServerVersion = "2.11.0"

// Await runs op until it succeeds, fails with an error that waiting will
// not cure, or ctx ends, logging each attempt that found NATS unreachable
// or its JetStream not ready (a cluster electing leaders, a node
// recovering). Each attempt has its own deadline of perAttempt (zero: a
// few seconds), so one request lost in an election cannot use up the
// whole wait. what names the operation in the log and the final error.
func (b *Bus) Await(ctx context.Context, what string, perAttempt time.Duration, op func(context.Context) error) error {
	if perAttempt <= 0 {
		perAttempt = attemptTimeout
	}
	start := time.Now()
	attempt := 0
	err := retryEach(ctx, perAttempt, func(ctx context.Context) error {
		attempt++
		err := op(ctx)
		if err != nil && transient(err) {
			b.log.Warn("waiting for NATS", "for", what, "attempt", attempt, "waited", time.Since(start).Round(time.Millisecond), "err", err)
		}
		return err
	})
	if err != nil && ctx.Err() != nil {
		return fmt.Errorf("%s: NATS was not ready after %d attempts in %s: %w", what, attempt, time.Since(start).Round(time.Second), err)
	}
	if err != nil {
		return fmt.Errorf("%s: %w", what, err)
	}
	return nil
}

// dial connects to the external cluster, waiting (with a log line per
// attempt) while no server answers, until ctx ends. Errors that waiting
// will not cure (credentials, TLS) end it at once.
func (b *Bus) dial(ctx context.Context, url string, opts []nats.Option) (*nats.Conn, error) {
	retry := backoff.New(250*time.Millisecond, 5*time.Second, backoff.NoJitter)
	start := time.Now()
	for attempt := 1; ; attempt++ {
		nc, err := nats.Connect(url, opts...)
		if err == nil {
			return nc, nil
		}
		if !errors.Is(err, nats.ErrNoServers) && !errors.Is(err, nats.ErrTimeout) {
			return nil, fmt.Errorf("connect to nats %s: %w", redact(b.cfg.URLs), err)
		}
		b.log.Warn("waiting for NATS", "for", "a connection", "urls", redact(b.cfg.URLs), "attempt", attempt, "waited", time.Since(start).Round(time.Millisecond), "err", err)
		if retry.Wait(ctx) != nil {
			return nil, fmt.Errorf("connect to nats %s: no server answered in %d attempts over %s (last: %v); check that the servers run and the URLs", redact(b.cfg.URLs), attempt, time.Since(start).Round(time.Second), err)
		}
	}
}

// checkServerVersion refuses a server older than MinServerVersion.
func checkServerVersion(nc *nats.Conn) error {
	v := nc.ConnectedServerVersion()
	if versionBelow(v, MinServerVersion) {
		return fmt.Errorf("nats-server %s at %s is too old: ccevents needs nats-server %s or later; upgrade the NATS servers (nothing was created on this one)", v, nc.ConnectedUrlRedacted(), MinServerVersion)
	}
	return nil
}

// versionBelow reports whether version v (2.9.10, v2.11.0-beta.1) is
// older than min; a version that cannot be read is not refused.
func versionBelow(v, min string) bool {
	have, ok1 := parseVersion(v)
	want, ok2 := parseVersion(min)
	if !ok1 || !ok2 {
		return false
	}
	for i := range have {
		if have[i] != want[i] {
			return have[i] < want[i]
		}
	}
	return false
}

func parseVersion(v string) ([3]int, bool) {
	var out [3]int
	v = strings.TrimPrefix(v, "v")
	if i := strings.IndexAny(v, "-+"); i >= 0 {
		v = v[:i]
	}
	parts := strings.Split(v, ".")
	if len(parts) != 3 {
		return out, false
	}
	for i, p := range parts {
		n, err := strconv.Atoi(p)
		if err != nil {
			return out, false
		}
		out[i] = n
	}
	return out, true
}
