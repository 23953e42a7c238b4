package limit

import (
	"hash/maphash"
	"sync"
	"sync/atomic"
)

// counterShards spreads keys over independent locks so connections from
// many addresses do not queue on one mutex.
const counterShards = 32

// Counter bounds how many holders each key may have at once: connections
// per client address, connections per account. A key takes memory only
// while something holds it, and at most maxKeys keys are held at once.
// A Counter is safe for concurrent use.
type Counter struct {
	limit   int32
	maxKeys int64
	keys    atomic.Int64
	seed    maphash.Seed
	shards  [counterShards]counterShard
}

type counterShard struct {
	mu sync.Mutex
	n  map[string]int32
	// Keeps neighbouring shards' mutexes off one cache line.
	_ [40]byte
}

// NewCounter returns a Counter allowing perKey holders of each key and at
// most maxKeys distinct keys held at once (0 or less: no bound beyond what
// is held). A perKey of 0 or less allows nothing.
func NewCounter(perKey, maxKeys int) *Counter {
	c := &Counter{limit: int32(min(max(perKey, 0), 1<<30)), maxKeys: int64(maxKeys), seed: maphash.MakeSeed()}
	for i := range c.shards {
		c.shards[i].n = make(map[string]int32)
	}
	return c
}

// Acquire takes one hold of key. When key already has its limit of holders
// (or the Counter holds its limit of keys) it returns ok false and nothing
// is taken. Otherwise release gives the hold back; calling it more than
// once has no further effect.
func (c *Counter) Acquire(key string) (release func(), ok bool) {
	if !c.TryAcquire(key) {
		return nil, false
	}
	var done atomic.Bool
	return func() {
		if done.CompareAndSwap(false, true) {
			c.Release(key)
		}
	}, true
}

// TryAcquire is Acquire without the release function, for callers that
// keep the key anyway and want no allocation: each true result must be
// matched by exactly one Release(key).
func (c *Counter) TryAcquire(key string) bool {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	n, held := sh.n[key]
	if n >= c.limit {
		return false
	}
	if !held {
		if k := c.keys.Add(1); c.maxKeys > 0 && k > c.maxKeys {
			c.keys.Add(-1)
			return false
		}
	}
	sh.n[key] = n + 1
	return true
}

// Release gives back one hold of key taken by TryAcquire. Releasing a key
// that is not held does nothing.
func (c *Counter) Release(key string) {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	n, held := sh.n[key]
	if !held {
		return
	}
	if n <= 1 {
		delete(sh.n, key)
		c.keys.Add(-1)
		return
	}
	sh.n[key] = n - 1
}

// Count returns how many holds key has.
func (c *Counter) Count(key string) int {
	sh := c.shard(key)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	return int(sh.n[key])
}

// Keys returns how many distinct keys are held.
func (c *Counter) Keys() int { return int(c.keys.Load()) }

// Limit returns the most holders one key may have.
func (c *Counter) Limit() int { return int(c.limit) }

func (c *Counter) shard(key string) *counterShard {
	return &c.shards[maphash.String(c.seed, key)%counterShards]
}
