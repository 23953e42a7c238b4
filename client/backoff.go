package client

import (
	"math/rand/v2"
	"time"
)

// backoff returns the wait before reconnect attempt n (from 1): lo doubled
// n-1 times, capped at hi, of which a random half is taken away ("equal
// jitter"), so clients dropped together by one gateway restart spread out
// instead of returning in one burst, yet none retries at once.
func backoff(lo, hi time.Duration, n int) time.Duration {
	d := lo
	for i := 1; i < n && d < hi; i++ {
		d *= 2
	}
	d = min(d, hi)
	half := d / 2
	return half + rand.N(d-half+1)
}
