package socketlist

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// The registry of live gateways is a JetStream key-value bucket whose keys
// expire (bus.ExpireAfter): a gateway writes its key (its name) every
// third of the bucket's TTL while it answers listings, and deletes it when
// it stops. One that dies or is cut off stops writing, and the server
// removes its key TTL after its last write; watchers are told. A listing
// waits for exactly the gateways the registry holds when it starts.

// RegistryBucket is the key-value bucket of live gateways.
const RegistryBucket = "ccevents_gateways"

// RegistryTTL is how long a gateway that stopped without leaving (killed,
// frozen, cut off from NATS) stays in the registry after its last write.
// Gateways write every RegistryTTL/3, so a gateway must miss three writes
// in a row to drop out.
const RegistryTTL = 15 * time.Second

// MaxGateways bounds the gateways one listing gathers from: their answers
// are held together while the page is merged.
const MaxGateways = 64

// presence is a gateway's value in the registry.
type presence struct {
	Name string `json:"name"`
	// Instance tells apart two processes that wrote the same key: a
	// restarted gateway, or two configured with the same name.
	Instance string `json:"instance"`
	Since    string `json:"since"` // RFC 3339, when the process joined
}

// registryKey is the gateway's key: its name, with each byte a key may
// not hold written as =XX (hex), so names never collide.
func registryKey(name string) string {
	var b strings.Builder
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9', c == '-', c == '_':
			b.WriteByte(c)
		default:
			fmt.Fprintf(&b, "=%02X", c)
		}
	}
	return b.String()
}

// registryTTL reads the TTL of the registry bucket, which sets both the
// gateways' write interval and how long a silent one stays.
func registryTTL(ctx context.Context, kv jetstream.KeyValue) (time.Duration, error) {
	st, err := kv.Status(ctx)
	if err != nil {
		return 0, fmt.Errorf("read the gateway registry %s: %w", kv.Bucket(), err)
	}
	if st.TTL() <= 0 {
		return 0, fmt.Errorf("gateway registry %s has no TTL, so a dead gateway would stay in it forever; open it with bus.ExpireAfter(socketlist.RegistryTTL)", kv.Bucket())
	}
	return st.TTL(), nil
}

// registry is the API's view of the gateway registry, kept by a watcher.
type registry struct {
	ttl     time.Duration
	watcher jetstream.KeyWatcher
	log     *slog.Logger
	size    prometheus.Gauge

	ready chan struct{} // closed once the watcher has read the bucket
	done  chan struct{} // closed when the watcher stops

	mu      sync.Mutex
	members map[string]member // by key
	changed chan struct{}     // closed, then replaced, when a gateway joins or leaves
}

// member is a gateway in the registry.
type member struct {
	name string
	// seen is when this process last saw the gateway write (monotonic):
	// a safety net for a removal the watcher missed (see expire).
	seen time.Time
}

func watchRegistry(ctx context.Context, kv jetstream.KeyValue, size prometheus.Gauge, log *slog.Logger) (*registry, error) {
	ttl, err := registryTTL(ctx, kv)
	if err != nil {
		return nil, err
	}
	w, err := kv.WatchAll(ctx)
	if err != nil {
		return nil, fmt.Errorf("watch the gateway registry %s: %w", kv.Bucket(), err)
	}
	r := &registry{
		ttl: ttl, watcher: w, log: log, size: size,
		ready: make(chan struct{}), done: make(chan struct{}),
		members: map[string]member{}, changed: make(chan struct{}),
	}
	go r.run()
	return r, nil
}

// run applies the watcher's updates until it stops.
func (r *registry) run() {
	defer close(r.done)
	for e := range r.watcher.Updates() {
		if e == nil {
			close(r.ready)
			continue
		}
		var p presence
		if e.Operation() == jetstream.KeyValuePut {
			if err := json.Unmarshal(e.Value(), &p); err != nil || p.Name == "" {
				r.log.Warn("unreadable entry in the gateway registry; ignored", "key", e.Key(), "err", err)
				continue
			}
		}
		r.mu.Lock()
		_, known := r.members[e.Key()]
		if p.Name != "" {
			r.members[e.Key()] = member{name: p.Name, seen: time.Now()}
		} else {
			delete(r.members, e.Key()) // deleted when leaving, or expired
		}
		if known != (p.Name != "") {
			r.changedLocked()
		}
		r.mu.Unlock()
	}
}

// changedLocked wakes everyone waiting for a change. r.mu is held.
func (r *registry) changedLocked() {
	close(r.changed)
	r.changed = make(chan struct{})
	r.size.Set(float64(len(r.members)))
}

// stop ends the watch and waits for run to return.
func (r *registry) stop() {
	_ = r.watcher.Stop()
	<-r.done
}

// waitReady waits until the watcher has read the whole bucket.
func (r *registry) waitReady(ctx context.Context) error {
	select {
	case <-r.ready:
		return nil
	default:
	}
	select {
	case <-r.ready:
		return nil
	case <-r.done:
		return ErrRegistryUnavailable
	case <-ctx.Done():
		return ErrRegistryUnavailable
	}
}

// live returns the names of the gateways in the registry, sorted, and a
// channel closed at the next change.
func (r *registry) live() ([]string, <-chan struct{}) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expireLocked(time.Now())
	names := make([]string, 0, len(r.members))
	for _, m := range r.members {
		names = append(names, m.name)
	}
	slices.Sort(names)
	return slices.Compact(names), r.changed
}

// expireLocked drops gateways this process has not seen write for twice
// the TTL. The server removes them after one TTL and the watcher hears of
// it; this only covers a removal the watcher missed (its marker expired
// while this process was cut off from NATS). r.mu is held.
func (r *registry) expireLocked(now time.Time) {
	removed := false
	for k, m := range r.members {
		if now.Sub(m.seen) > 2*r.ttl {
			r.log.Warn("gateway left the registry unnoticed; forgetting it", "gateway", m.name, "last_seen", m.seen)
			delete(r.members, k)
			removed = true
		}
	}
	if removed {
		r.changedLocked()
	}
}
