package gateway

import (
	"runtime"
	"sync/atomic"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus"
)

// latencyBuckets are the upper bounds, in seconds, of the delivery
// latency histogram: from well under a millisecond (the usual case on one
// host) to the seconds a stream leader election or a slow client takes.
var latencyBuckets = [...]float64{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10}

// latencyHistogram is ccevents_ws_delivery_latency_seconds: how long each
// live event took from being stored in the stream to being written to a
// client's socket, one sample per delivery. It is observed on the hot
// path, by every flusher at once, so instead of one shared histogram it
// keeps shards of plain atomic counters, each on its own cache lines, that
// a connection always adds to the same one of: an observation is two
// uncontended atomic adds and allocates nothing. A scrape sums the shards.
type latencyHistogram struct {
	desc     *prometheus.Desc
	boundsNS [len(latencyBuckets)]int64
	shards   []latencyShard
}

type latencyShard struct {
	counts [len(latencyBuckets) + 1]atomic.Uint64 // the last counts samples above every bound
	sumNS  atomic.Int64
	_      [64]byte // keeps neighbouring shards off each other's cache lines
}

func newLatencyHistogram() *latencyHistogram {
	h := &latencyHistogram{
		desc: prometheus.NewDesc("ccevents_ws_delivery_latency_seconds",
			"Time from a live event being stored in the stream to its frame being written to a client's socket, one sample per delivery (events replayed for a resume or held back behind one are not counted). Compares the NATS server's clock with the gateway's: keep them in sync.",
			nil, nil),
		shards: make([]latencyShard, 4*runtime.GOMAXPROCS(0)),
	}
	for i, b := range latencyBuckets {
		h.boundsNS[i] = int64(b * 1e9)
	}
	return h
}

// shardOf picks the shard a connection adds to: spread by its address, so
// the flushers (one per core) rarely share one.
func (h *latencyHistogram) shardOf(c *conn) *latencyShard {
	return &h.shards[(uintptr(unsafe.Pointer(c))>>7)%uintptr(len(h.shards))]
}

// observe adds one sample of ns nanoseconds; a negative one (clocks apart)
// counts as zero.
func (s *latencyShard) observe(bounds *[len(latencyBuckets)]int64, ns int64) {
	ns = max(ns, 0)
	i := 0
	for i < len(bounds) && ns > bounds[i] {
		i++
	}
	s.counts[i].Add(1)
	s.sumNS.Add(ns)
}

func (h *latencyHistogram) Describe(ch chan<- *prometheus.Desc) { ch <- h.desc }

func (h *latencyHistogram) Collect(ch chan<- prometheus.Metric) {
	var counts [len(latencyBuckets) + 1]uint64
	var sum int64
	for i := range h.shards {
		s := &h.shards[i]
		for j := range counts {
			counts[j] += s.counts[j].Load()
		}
		sum += s.sumNS.Load()
	}
	buckets := make(map[float64]uint64, len(latencyBuckets))
	var cum uint64
	for i, b := range latencyBuckets {
		cum += counts[i]
		buckets[b] = cum
	}
	ch <- prometheus.MustNewConstHistogram(h.desc, cum+counts[len(latencyBuckets)], float64(sum)/1e9, buckets)
}
