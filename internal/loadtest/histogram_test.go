package loadtest

import (
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

func TestHistogramBucketsAreContiguousAndOrdered(t *testing.T) {
	prev := -1
	for _, v := range []uint64{0, 1, 127, 128, 129, 255, 256, 257, 1000, 1 << 20, 1<<20 + 1, 1 << 40, 1<<63 - 1} {
		b := bucketOf(v)
		if b < prev {
			t.Fatalf("bucketOf(%d) = %d, below the previous bucket %d", v, b, prev)
		}
		if b >= numBuckets {
			t.Fatalf("bucketOf(%d) = %d, out of range", v, b)
		}
		if hi := bucketHigh(b); hi < v {
			t.Fatalf("bucketHigh(%d) = %d, below the value %d it holds", b, hi, v)
		}
		prev = b
	}
	for i := 1; i < numBuckets-subCount; i++ {
		if bucketOf(bucketHigh(i-1)+1) != i {
			t.Fatalf("bucket %d does not start right after bucket %d ends", i, i-1)
		}
	}
}

func TestHistogramQuantilesWithinOnePercent(t *testing.T) {
	var h histogram
	r := rand.New(rand.NewPCG(1, 2))
	vals := make([]time.Duration, 100_000)
	for i := range vals {
		vals[i] = time.Duration(r.ExpFloat64() * float64(3*time.Millisecond))
		h.Record(vals[i])
	}
	slices.Sort(vals)
	for _, q := range []float64{0.5, 0.9, 0.99, 0.999} {
		exact := vals[int(q*float64(len(vals)))-1]
		got := h.Quantile(q)
		if got < exact || float64(got-exact) > 0.01*float64(exact)+1 {
			t.Errorf("q%.3f = %v, exact %v: off by more than 1%%", q, got, exact)
		}
	}
	if h.Max() != vals[len(vals)-1] {
		t.Errorf("max = %v, want %v", h.Max(), vals[len(vals)-1])
	}
	if h.Count() != uint64(len(vals)) {
		t.Errorf("count = %d, want %d", h.Count(), len(vals))
	}
}

func TestHistogramSurvivesTheTripToTheParent(t *testing.T) {
	// merged records every value itself: what the parent must end up with.
	var a, b, merged histogram
	for i := range 1000 {
		a.Record(time.Duration(i) * time.Microsecond)
		b.Record(time.Duration(i) * time.Millisecond)
		merged.Record(time.Duration(i) * time.Microsecond)
		merged.Record(time.Duration(i) * time.Millisecond)
	}
	var viaJSON histogram
	viaJSON.add(a.sparse())
	viaJSON.add(b.sparse())
	if merged.Summary() != viaJSON.Summary() {
		t.Fatalf("merged %+v, via sparse form %+v", merged.Summary(), viaJSON.Summary())
	}
	if merged.Count() != 2000 || merged.Max() != 999*time.Millisecond {
		t.Fatalf("merged count %d max %v", merged.Count(), merged.Max())
	}
}

func TestHistogramIgnoresBucketsFromNowhere(t *testing.T) {
	var h histogram
	h.add(sparseHistogram{Buckets: [][2]uint64{{numBuckets + 5, 3}, {10, 1}}, Max: 10})
	if h.Count() != 1 {
		t.Fatalf("count %d, want 1 (the out-of-range bucket dropped)", h.Count())
	}
}

func TestHistogramClampsNegativeDurations(t *testing.T) {
	var h histogram
	h.Record(-time.Second)
	if h.Quantile(1) != 0 || h.Count() != 1 {
		t.Fatalf("negative duration recorded as %v", h.Quantile(1))
	}
}

func BenchmarkHistogramRecord(b *testing.B) {
	var h histogram
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		d := time.Duration(0)
		for pb.Next() {
			d = (d + 7919) % (50 * time.Millisecond)
			h.Record(d)
		}
	})
}
