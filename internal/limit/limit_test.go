package limit

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// clock is a manual clock for tests.
type clock struct{ t time.Time }

func newClock() *clock                   { return &clock{t: time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)} }
func (c *clock) Now() time.Time          { return c.t }
func (c *clock) Advance(d time.Duration) { c.t = c.t.Add(d) }

func TestBucketAllowsBurstThenRate(t *testing.T) {
	tests := []struct {
		name    string
		rate    float64
		burst   int
		steps   []time.Duration // advance before each attempt
		allowed []bool
	}{
		{
			name: "burst of three at once, then refused",
			rate: 1, burst: 3,
			steps:   []time.Duration{0, 0, 0, 0},
			allowed: []bool{true, true, true, false},
		},
		{
			name: "one token earned per second",
			rate: 1, burst: 1,
			steps:   []time.Duration{0, 0, 500 * time.Millisecond, 500 * time.Millisecond, 0},
			allowed: []bool{true, false, false, true, false},
		},
		{
			name: "idle time never saves more than the burst",
			rate: 10, burst: 2,
			steps:   []time.Duration{0, time.Hour, 0, 0},
			allowed: []bool{true, true, true, false},
		},
		{
			name: "a clock going backwards earns nothing",
			rate: 1, burst: 1,
			steps:   []time.Duration{0, -time.Hour, 0},
			allowed: []bool{true, false, false},
		},
		{
			name: "zero rate is unlimited",
			rate: 0, burst: 0,
			steps:   []time.Duration{0, 0, 0, 0, 0},
			allowed: []bool{true, true, true, true, true},
		},
		{
			name: "burst below one is one",
			rate: 5, burst: 0,
			steps:   []time.Duration{0, 0, 200 * time.Millisecond},
			allowed: []bool{true, false, true},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			b := NewBucket(tt.rate, tt.burst)
			for i, d := range tt.steps {
				clk.Advance(d)
				if got := b.Allow(clk.Now()); got != tt.allowed[i] {
					t.Fatalf("attempt %d: Allow = %v, want %v", i, got, tt.allowed[i])
				}
			}
		})
	}
}

func TestBucketRefusesRequestCostingMoreThanBurst(t *testing.T) {
	clk := newClock()
	b := NewBucket(100, 5)
	if b.AllowN(clk.Now(), 6) {
		t.Fatal("AllowN(6) on a burst of 5 was allowed")
	}
	if !b.AllowN(clk.Now(), 5) {
		t.Fatal("AllowN(5) on a full bucket of 5 was refused")
	}
	if b.AllowN(clk.Now(), 1) {
		t.Fatal("empty bucket allowed a request")
	}
}

func TestBucketRetryAfterSaysWhenTheNextTokenComes(t *testing.T) {
	clk := newClock()
	b := NewBucket(4, 1) // a token every 250ms
	if got := b.RetryAfter(clk.Now()); got != 0 {
		t.Fatalf("full bucket: RetryAfter = %v, want 0", got)
	}
	b.Allow(clk.Now())
	if got := b.RetryAfter(clk.Now()); got != 250*time.Millisecond {
		t.Fatalf("empty bucket: RetryAfter = %v, want 250ms", got)
	}
	clk.Advance(100 * time.Millisecond)
	if got := b.RetryAfter(clk.Now()); got != 150*time.Millisecond {
		t.Fatalf("after 100ms: RetryAfter = %v, want 150ms", got)
	}
	if b.Rate() != 4 || b.Burst() != 1 {
		t.Fatalf("Rate, Burst = %v, %v; want 4, 1", b.Rate(), b.Burst())
	}
}

func TestBucketDoesNotAllocate(t *testing.T) {
	b := NewBucket(1000, 10)
	now := time.Now()
	if n := testing.AllocsPerRun(100, func() { b.Allow(now); now = now.Add(time.Millisecond) }); n != 0 {
		t.Fatalf("Allow allocates %v times per call", n)
	}
}

func backoffConfig(clk *clock) BackoffConfig {
	return BackoffConfig{Failures: 3, Window: time.Minute, Initial: time.Second, Max: 8 * time.Second, Now: clk.Now}
}

// step is one thing that happens to an address in a back-off scenario.
type step struct {
	advance time.Duration
	op      string        // "fail", "ok" (success) or "allow"
	want    time.Duration // fail: the returned wait; allow: the wait (0 = allowed)
}

func TestBackoff(t *testing.T) {
	fails := func(n int) []step {
		var s []step
		for range n - 1 {
			s = append(s, step{op: "fail"})
		}
		return s
	}
	tests := []struct {
		name  string
		steps []step
	}{
		{
			name: "refuses after the third failure within the window",
			steps: append(fails(3),
				step{op: "allow"},
				step{op: "fail", want: time.Second},
				step{op: "allow", want: time.Second},
				step{advance: 400 * time.Millisecond, op: "allow", want: 600 * time.Millisecond},
				step{advance: 600 * time.Millisecond, op: "allow"},
			),
		},
		{
			name: "failures spread wider than the window never block",
			steps: []step{
				{op: "fail"}, {op: "fail"},
				{advance: 61 * time.Second, op: "fail"},
				{op: "allow"},
				{op: "fail"},
				{op: "fail", want: time.Second},
			},
		},
		{
			name: "each further block doubles up to the cap",
			steps: append(fails(3),
				step{op: "fail", want: time.Second},
				step{advance: time.Second, op: "fail"}, step{op: "fail"}, step{op: "fail", want: 2 * time.Second},
				step{advance: 2 * time.Second, op: "fail"}, step{op: "fail"}, step{op: "fail", want: 4 * time.Second},
				step{advance: 4 * time.Second, op: "fail"}, step{op: "fail"}, step{op: "fail", want: 8 * time.Second},
				step{advance: 8 * time.Second, op: "fail"}, step{op: "fail"}, step{op: "fail", want: 8 * time.Second},
			),
		},
		{
			name: "failures reported during a block neither extend nor count",
			steps: append(fails(3),
				step{op: "fail", want: time.Second},
				step{advance: 500 * time.Millisecond, op: "fail", want: 500 * time.Millisecond},
				step{op: "fail", want: 500 * time.Millisecond},
				step{advance: 500 * time.Millisecond, op: "allow"},
				step{op: "fail"},
				step{op: "allow"},
			),
		},
		{
			name: "a success forgets failures and past blocks",
			steps: append(fails(3),
				step{op: "fail", want: time.Second},
				step{advance: time.Second, op: "ok"},
				step{op: "fail"}, step{op: "fail"},
				step{op: "fail", want: time.Second},
			),
		},
		{
			name: "a quiet address is forgotten and starts over at the first wait",
			steps: append(fails(3),
				step{op: "fail", want: time.Second},
				// the block ended 1s in; remembered until 1s + Max (8s)
				step{advance: 9 * time.Second, op: "fail"}, step{op: "fail"},
				step{op: "fail", want: time.Second},
			),
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := newClock()
			b := NewBackoff(backoffConfig(clk))
			const ip = "192.0.2.7"
			for i, s := range tt.steps {
				clk.Advance(s.advance)
				switch s.op {
				case "fail":
					if got := b.Failure(ip); got != s.want {
						t.Fatalf("step %d: Failure = %v, want %v", i, got, s.want)
					}
				case "ok":
					b.Success(ip)
				case "allow":
					ok, wait := b.Allow(ip)
					if ok != (s.want == 0) || wait != s.want {
						t.Fatalf("step %d: Allow = %v, %v; want %v, %v", i, ok, wait, s.want == 0, s.want)
					}
				}
			}
		})
	}
}

func TestBackoffKeepsAddressesApart(t *testing.T) {
	clk := newClock()
	b := NewBackoff(backoffConfig(clk))
	for range 3 {
		b.Failure("192.0.2.1")
	}
	if ok, _ := b.Allow("192.0.2.1"); ok {
		t.Fatal("the failing address is allowed")
	}
	if ok, wait := b.Allow("192.0.2.2"); !ok || wait != 0 {
		t.Fatalf("another address: Allow = %v, %v; want true, 0", ok, wait)
	}
}

func TestBackoffRemembersAtMostMaxTracked(t *testing.T) {
	clk := newClock()
	cfg := backoffConfig(clk)
	cfg.MaxTracked = 100
	b := NewBackoff(cfg)
	for i := range 1000 {
		b.Failure(fmt.Sprintf("10.0.%d.%d", i/256, i%256))
		if n := b.Len(); n > cfg.MaxTracked {
			t.Fatalf("after %d addresses Len = %d, above MaxTracked %d", i+1, n, cfg.MaxTracked)
		}
	}
	// The most recent ones are kept, the oldest were evicted.
	b.Failure("10.0.3.231")
	b.Failure("10.0.3.231")
	if ok, _ := b.Allow("10.0.3.231"); ok {
		t.Fatal("the most recently failing address was forgotten")
	}
	b.Failure("10.0.0.0")
	b.Failure("10.0.0.0")
	if ok, _ := b.Allow("10.0.0.0"); !ok {
		t.Fatal("the oldest address kept its failures although it was evicted")
	}
}

func TestBackoffForgetsExpiredAddressesAsItGoes(t *testing.T) {
	clk := newClock()
	b := NewBackoff(backoffConfig(clk))
	for i := range 50 {
		b.Failure(fmt.Sprintf("10.0.0.%d", i))
	}
	clk.Advance(2 * time.Minute)
	for i := range 50 {
		b.Failure(fmt.Sprintf("10.1.0.%d", i))
	}
	if n := b.Len(); n != 50 {
		t.Fatalf("Len = %d after the first 50 addresses expired and 50 new ones failed; want 50", n)
	}
}

func TestBackoffAllowDoesNotAllocate(t *testing.T) {
	b := NewBackoff(BackoffConfig{})
	b.Failure("192.0.2.1")
	for _, ip := range []string{"192.0.2.1", "192.0.2.2"} {
		if n := testing.AllocsPerRun(100, func() { b.Allow(ip) }); n != 0 {
			t.Fatalf("Allow(%s) allocates %v times per call", ip, n)
		}
	}
}

func TestBackoffIsSafeForConcurrentUse(t *testing.T) {
	b := NewBackoff(BackoffConfig{Failures: 5, MaxTracked: 64})
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 2000 {
				ip := fmt.Sprintf("10.%d.0.%d", g, i%100)
				b.Allow(ip)
				if i%7 == 0 {
					b.Success(ip)
				} else {
					b.Failure(ip)
				}
			}
		})
	}
	wg.Wait()
	if n := b.Len(); n > 64 {
		t.Fatalf("Len = %d, above MaxTracked 64", n)
	}
}

func TestBackoffConfigDefaults(t *testing.T) {
	cfg := NewBackoff(BackoffConfig{}).Config()
	if cfg.Failures != DefaultBackoffFailures || cfg.Window != DefaultBackoffWindow || cfg.Initial != DefaultBackoffInitial ||
		cfg.Max != DefaultBackoffMax || cfg.MaxTracked != DefaultBackoffMaxTracked || cfg.Now == nil {
		t.Fatalf("defaults not applied: %+v", cfg)
	}
	if got := NewBackoff(BackoffConfig{Initial: time.Minute, Max: time.Second}).Config().Max; got != time.Minute {
		t.Fatalf("Max below Initial: Max = %v, want it raised to Initial (1m)", got)
	}
}

func TestCounterBoundsHoldersPerKey(t *testing.T) {
	c := NewCounter(2, 0)
	r1, ok1 := c.Acquire("a")
	_, ok2 := c.Acquire("a")
	_, ok3 := c.Acquire("a")
	if !ok1 || !ok2 || ok3 {
		t.Fatalf("three acquires with limit 2: %v %v %v, want true true false", ok1, ok2, ok3)
	}
	if _, ok := c.Acquire("b"); !ok {
		t.Fatal("another key is refused")
	}
	r1()
	r1() // a second release gives nothing back twice
	if got := c.Count("a"); got != 1 {
		t.Fatalf("Count(a) = %d after one of two holds released (twice), want 1", got)
	}
	if _, ok := c.Acquire("a"); !ok {
		t.Fatal("acquire after release is refused")
	}
	if _, ok := c.Acquire("a"); ok {
		t.Fatal("third concurrent hold allowed")
	}
}

func TestCounterForgetsKeysNobodyHolds(t *testing.T) {
	c := NewCounter(5, 0)
	var releases []func()
	for i := range 100 {
		r, ok := c.Acquire(fmt.Sprintf("k%d", i))
		if !ok {
			t.Fatalf("acquire k%d refused", i)
		}
		releases = append(releases, r)
	}
	if c.Keys() != 100 {
		t.Fatalf("Keys = %d, want 100", c.Keys())
	}
	for _, r := range releases {
		r()
	}
	if c.Keys() != 0 {
		t.Fatalf("Keys = %d after every release, want 0", c.Keys())
	}
	c.Release("never-held") // harmless
	if c.Keys() != 0 || c.Count("never-held") != 0 {
		t.Fatal("releasing a key nobody held changed the counts")
	}
}

func TestCounterRefusesNewKeysBeyondMaxKeys(t *testing.T) {
	c := NewCounter(10, 3)
	for _, k := range []string{"a", "b", "c"} {
		if !c.TryAcquire(k) {
			t.Fatalf("key %s refused below maxKeys", k)
		}
	}
	if c.TryAcquire("d") {
		t.Fatal("a fourth key was allowed with maxKeys 3")
	}
	if !c.TryAcquire("a") {
		t.Fatal("a held key was refused a second hold")
	}
	c.Release("b")
	if !c.TryAcquire("d") {
		t.Fatal("a new key was refused after one was released")
	}
}

func TestCounterZeroLimitAllowsNothing(t *testing.T) {
	if _, ok := NewCounter(0, 0).Acquire("a"); ok {
		t.Fatal("a counter with limit 0 allowed a hold")
	}
}

func TestCounterNeverExceedsLimitUnderConcurrency(t *testing.T) {
	const limit = 7
	c := NewCounter(limit, 0)
	var held, peak atomic.Int32
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			for range 2000 {
				release, ok := c.Acquire("shared")
				if !ok {
					continue
				}
				n := held.Add(1)
				for {
					p := peak.Load()
					if n <= p || peak.CompareAndSwap(p, n) {
						break
					}
				}
				held.Add(-1)
				release()
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > limit {
		t.Fatalf("peak concurrent holders %d, above the limit %d", p, limit)
	}
	if c.Count("shared") != 0 || c.Keys() != 0 {
		t.Fatalf("after every release: Count = %d, Keys = %d; want 0, 0", c.Count("shared"), c.Keys())
	}
}

func TestCounterTryAcquireDoesNotAllocate(t *testing.T) {
	c := NewCounter(1_000_000, 0)
	c.TryAcquire("203.0.113.9")
	if n := testing.AllocsPerRun(100, func() {
		c.TryAcquire("203.0.113.9")
		c.Release("203.0.113.9")
	}); n != 0 {
		t.Fatalf("TryAcquire+Release allocate %v times", n)
	}
}

func TestClientKey(t *testing.T) {
	tests := []struct{ in, want string }{
		{"192.0.2.1:5555", "192.0.2.1"},
		{"192.0.2.1", "192.0.2.1"},
		{"[2001:db8:1:2:3:4:5:6]:443", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::9]:443", "2001:db8:1:2::/64"},
		{"2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"[fe80::1%eth0]:80", "fe80::/64"},
		{"[::ffff:192.0.2.1]:80", "192.0.2.1"},
		{"[::1]:80", "::/64"},
		{"not an address", "not an address"},
		{"@", "@"},
	}
	for _, tt := range tests {
		if got := ClientKey(tt.in); got != tt.want {
			t.Errorf("ClientKey(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}
