package loadtest

import (
	"math"
	"math/bits"
	"sync/atomic"
	"time"
)

// subBits sets the histogram's precision: each power of two is split into
// 2^subBits linear buckets, so a recorded value is off by at most 1/128
// (0.8%) — the "two significant digits" of an HDR histogram, in a fixed 58 KiB.
const (
	subBits    = 7
	subCount   = 1 << subBits
	numBuckets = (64 - subBits + 1) * subCount
)

// histogram is a log-linear histogram of durations in nanoseconds, safe for
// concurrent recording from many goroutines without locks. The zero value is
// ready to use.
type histogram struct {
	counts [numBuckets]atomic.Uint64
	max    atomic.Int64 // exact, since buckets round
}

func bucketOf(v uint64) int {
	if v < subCount {
		return int(v)
	}
	top := bits.Len64(v) - 1 // >= subBits
	shift := top - subBits
	return (shift+1)*subCount + int((v>>shift)&(subCount-1))
}

// bucketHigh is the largest value that falls in bucket i; quantiles report it
// so they never understate a latency.
func bucketHigh(i int) uint64 {
	if i < subCount {
		return uint64(i)
	}
	shift := i/subCount - 1
	low := uint64(subCount+i%subCount) << shift
	return low + (uint64(1) << shift) - 1
}

// Record adds one duration; negative durations (clock steps) count as zero.
func (h *histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	// No shared total counter: recorders on different cores would all
	// contend for its cache line. Count sums the buckets instead.
	h.counts[bucketOf(uint64(v))].Add(1)
	h.raiseMax(v)
}

// raiseMax makes v the maximum if it is above the current one.
func (h *histogram) raiseMax(v int64) {
	for {
		m := h.max.Load()
		if v <= m || h.max.CompareAndSwap(m, v) {
			return
		}
	}
}

// Count is the number of recorded values.
func (h *histogram) Count() uint64 {
	var n uint64
	for i := range h.counts {
		n += h.counts[i].Load()
	}
	return n
}

// Max is the largest recorded value, exactly.
func (h *histogram) Max() time.Duration { return time.Duration(h.max.Load()) }

// Quantile returns the value below or at which a fraction q (0..1) of the
// recorded values lie, rounded up to its bucket's upper edge and never above
// Max. It returns 0 for an empty histogram.
func (h *histogram) Quantile(q float64) time.Duration {
	n := h.Count()
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	if rank < 1 {
		rank = 1
	}
	var seen uint64
	for i := range h.counts {
		seen += h.counts[i].Load()
		if seen >= rank {
			v := time.Duration(bucketHigh(i))
			if m := h.Max(); v > m {
				v = m
			}
			return v
		}
	}
	return h.Max()
}

// sparseHistogram is a histogram in transit between processes: only the
// buckets that hold values, as [bucket, count] pairs.
type sparseHistogram struct {
	Buckets [][2]uint64 `json:"buckets,omitempty"`
	Max     int64       `json:"max"`
}

func (h *histogram) sparse() sparseHistogram {
	s := sparseHistogram{Max: h.max.Load()}
	for i := range h.counts {
		if c := h.counts[i].Load(); c != 0 {
			s.Buckets = append(s.Buckets, [2]uint64{uint64(i), c})
		}
	}
	return s
}

// add merges a histogram received from a child process; buckets out of range
// (a child of another version) are ignored rather than trusted.
func (h *histogram) add(s sparseHistogram) {
	for _, b := range s.Buckets {
		if b[0] < numBuckets {
			h.counts[b[0]].Add(b[1])
		}
	}
	h.raiseMax(s.Max)
}

// Latency is a latency summary in milliseconds, as reports show it.
type Latency struct {
	Count uint64  `json:"count"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }

// Summary returns the histogram's count, quantiles and max.
func (h *histogram) Summary() Latency {
	return Latency{
		Count: h.Count(),
		P50:   ms(h.Quantile(0.50)),
		P90:   ms(h.Quantile(0.90)),
		P99:   ms(h.Quantile(0.99)),
		P999:  ms(h.Quantile(0.999)),
		Max:   ms(h.Max()),
	}
}
