package limit

import (
	"strconv"
	"testing"
	"time"

	"golang.org/x/time/rate"
)

func BenchmarkBucketAllow(b *testing.B) {
	bk := NewBucket(1e9, 1000)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Nanosecond)
		bk.Allow(now)
	}
}

// BenchmarkRateLimiterAllow is the x/time/rate equivalent of
// BenchmarkBucketAllow, for comparison.
func BenchmarkRateLimiterAllow(b *testing.B) {
	l := rate.NewLimiter(1e9, 1000)
	now := time.Now()
	b.ReportAllocs()
	for b.Loop() {
		now = now.Add(time.Nanosecond)
		l.AllowN(now, 1)
	}
}

func BenchmarkBackoffAllowUnknown(b *testing.B) {
	bo := NewBackoff(BackoffConfig{})
	for i := range 10_000 {
		bo.Failure("10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256))
	}
	b.ReportAllocs()
	for b.Loop() {
		bo.Allow("192.0.2.1")
	}
}

func BenchmarkBackoffFailure(b *testing.B) {
	keys := make([]string, 100_000)
	for i := range keys {
		keys[i] = "10." + strconv.Itoa(i>>16) + "." + strconv.Itoa(i>>8&255) + "." + strconv.Itoa(i&255)
	}
	bo := NewBackoff(BackoffConfig{MaxTracked: 10_000})
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		bo.Failure(keys[i%len(keys)])
		i++
	}
}

func BenchmarkCounterAcquireRelease(b *testing.B) {
	c := NewCounter(1<<20, 0)
	b.ReportAllocs()
	for b.Loop() {
		release, _ := c.Acquire("203.0.113.9")
		release()
	}
}

func BenchmarkCounterTryAcquireReleaseParallel(b *testing.B) {
	c := NewCounter(1<<20, 0)
	keys := make([]string, 1024)
	for i := range keys {
		keys[i] = "10.0." + strconv.Itoa(i/256) + "." + strconv.Itoa(i%256)
	}
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		i := 0
		for pb.Next() {
			k := keys[i%len(keys)]
			c.TryAcquire(k)
			c.Release(k)
			i++
		}
	})
}

func BenchmarkClientKeyIPv4(b *testing.B) {
	b.ReportAllocs()
	for b.Loop() {
		ClientKey("203.0.113.9:51234")
	}
}
