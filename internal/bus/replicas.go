package bus

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// AssetReplicas says how one stream or bucket ccevents uses is replicated
// right now, as its leader reports it.
type AssetReplicas struct {
	// Name is the stream (QUBICLE) or bucket (ccevents_auth) name.
	Name string
	// Bucket is true for a key-value bucket.
	Bucket bool
	// Replicas is how many copies it is configured to have.
	Replicas int
	// Leader is the NATS server holding the leader copy; empty on a single
	// server without clustering, or while no leader is elected.
	Leader string
	// Peers are the other copies.
	Peers []ReplicaPeer
	// Clustered is false on a single server with JetStream not clustered
	// (the embedded default): the one copy is the server's own.
	Clustered bool
	// Err is why the asset could not be read (no leader answered).
	Err error
}

// ReplicaPeer is one non-leader copy of a stream or bucket.
type ReplicaPeer struct {
	Name    string
	Current bool          // caught up with the leader
	Offline bool          // not seen by the group recently
	Lag     uint64        // operations behind the leader
	Active  time.Duration // since the leader last heard from it
}

// Current counts the copies that are up to date: the leader and every
// current peer.
func (a AssetReplicas) Current() int {
	if a.Err != nil {
		return 0
	}
	if !a.Clustered {
		return a.Replicas
	}
	n := 0
	if a.Leader != "" {
		n++
	}
	for _, p := range a.Peers {
		if p.Current && !p.Offline {
			n++
		}
	}
	return n
}

// Problems says, in sentences, what keeps the asset from having every
// configured copy current; none when it is healthy.
func (a AssetReplicas) Problems() []string {
	what := "stream " + a.Name
	if a.Bucket {
		what = "bucket " + a.Name
	}
	switch {
	case a.Err != nil:
		return []string{fmt.Sprintf("%s could not be read (does it have a leader?): %v", what, a.Err)}
	case !a.Clustered:
		return nil
	}
	var out []string
	if a.Leader == "" {
		out = append(out, what+" has no leader: no quorum of its servers is up; nothing can be stored in it")
	}
	if have := 1 + len(a.Peers); have < a.Replicas {
		out = append(out, fmt.Sprintf("%s has %d of its %d copies assigned", what, have, a.Replicas))
	}
	for _, p := range a.Peers {
		switch {
		case p.Offline:
			out = append(out, fmt.Sprintf("%s: the copy on %s is offline (last seen %s ago)", what, p.Name, p.Active.Round(time.Second)))
		case !p.Current:
			out = append(out, fmt.Sprintf("%s: the copy on %s is not current (%d operations behind, last seen %s ago); a server that dropped its copy after a crash shows this until it has caught up", what, p.Name, p.Lag, p.Active.Round(time.Second)))
		}
	}
	return out
}

// noteBucket records a bucket this process uses, for Replicas.
func (b *Bus) noteBucket(bucket string) {
	b.bucketsMu.Lock()
	defer b.bucketsMu.Unlock()
	if !slices.Contains(b.buckets, bucket) {
		b.buckets = append(b.buckets, bucket)
	}
}

// Replicas reports, for the event stream and the key-value buckets named
// (none: those this process opened), how many copies each should have and
// which are current; a bucket that does not exist is left out. It reads
// each stream's information, which every role may, and lists nothing. A
// server that restarted after a crash may have dropped its copies while
// it still answers health checks: this is how to see it.
func (b *Bus) Replicas(ctx context.Context, buckets ...string) ([]AssetReplicas, error) {
	if len(buckets) == 0 {
		b.bucketsMu.Lock()
		buckets = slices.Clone(b.buckets)
		b.bucketsMu.Unlock()
	}
	slices.Sort(buckets)
	names := []string{StreamName}
	for _, bucket := range slices.Compact(buckets) {
		names = append(names, "KV_"+bucket)
	}
	out := make([]AssetReplicas, 0, len(names))
	for _, n := range names {
		actx, cancel := context.WithTimeout(ctx, attemptTimeout)
		s, err := b.js.Stream(actx, n)
		cancel()
		switch {
		case errors.Is(err, jetstream.ErrStreamNotFound) && n != StreamName:
			continue
		case err != nil:
			a := AssetReplicas{Name: n, Clustered: true, Err: err}
			a.Name, a.Bucket = strings.CutPrefix(n, "KV_")
			out = append(out, a)
			continue
		}
		out = append(out, assetReplicas(s.CachedInfo()))
	}
	return out, nil
}

func assetReplicas(info *jetstream.StreamInfo) AssetReplicas {
	a := AssetReplicas{Name: info.Config.Name, Replicas: max(info.Config.Replicas, 1)}
	if name, ok := strings.CutPrefix(a.Name, "KV_"); ok {
		a.Name, a.Bucket = name, true
	}
	c := info.Cluster
	if c == nil || c.Name == "" {
		return a // a server without clustering
	}
	a.Clustered, a.Leader = true, c.Leader
	for _, p := range c.Replicas {
		if p == nil {
			continue
		}
		a.Peers = append(a.Peers, ReplicaPeer{Name: p.Name, Current: p.Current, Offline: p.Offline, Lag: p.Lag, Active: p.Active})
	}
	slices.SortFunc(a.Peers, func(x, y ReplicaPeer) int { return strings.Compare(x.Name, y.Name) })
	return a
}
