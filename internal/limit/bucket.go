package limit

import (
	"math"
	"time"
)

// Bucket is a token bucket: it allows bursts of up to its burst size and a
// sustained rate of its rate per second. It is meant to live inside one
// connection's state (a value, not a pointer) and be used by that
// connection's reader alone: it is not safe for concurrent use, holds no lock,
// and neither allocates nor reads the clock itself.
//
// The zero Bucket allows everything, so a disabled limit needs no special case.
type Bucket struct {
	perSec float64
	burst  float64
	tokens float64
	last   time.Time
}

// NewBucket returns a full bucket allowing perSecond requests per second
// with bursts of burst. A perSecond of 0 or less returns the zero Bucket,
// which allows everything; a burst below 1 is taken as 1.
func NewBucket(perSecond float64, burst int) Bucket {
	if perSecond <= 0 || math.IsNaN(perSecond) || math.IsInf(perSecond, 0) {
		return Bucket{}
	}
	b := float64(max(burst, 1))
	return Bucket{perSec: perSecond, burst: b, tokens: b}
}

// Allow takes one token at now, reporting whether there was one.
func (b *Bucket) Allow(now time.Time) bool { return b.AllowN(now, 1) }

// AllowN takes n tokens at now if they are all there, and reports whether
// they were. A request costing more than the burst is never allowed.
func (b *Bucket) AllowN(now time.Time, n int) bool {
	if b.perSec == 0 {
		return true
	}
	b.refill(now)
	if need := float64(n); b.tokens >= need {
		b.tokens -= need
		return true
	}
	return false
}

// RetryAfter returns how long from now until one token is available: zero
// when one is available already.
func (b *Bucket) RetryAfter(now time.Time) time.Duration {
	if b.perSec == 0 {
		return 0
	}
	b.refill(now)
	if b.tokens >= 1 {
		return 0
	}
	return time.Duration(math.Ceil((1 - b.tokens) / b.perSec * float64(time.Second)))
}

// Rate returns the sustained rate per second, 0 for an unlimited bucket.
func (b *Bucket) Rate() float64 { return b.perSec }

// Burst returns the burst size, 0 for an unlimited bucket.
func (b *Bucket) Burst() int { return int(b.burst) }

// refill adds the tokens earned since the last call. A clock that goes
// backwards earns nothing rather than taking tokens away.
func (b *Bucket) refill(now time.Time) {
	if b.last.IsZero() {
		b.last = now
		return
	}
	if d := now.Sub(b.last); d > 0 {
		b.tokens = min(b.burst, b.tokens+d.Seconds()*b.perSec)
		b.last = now
	}
}
