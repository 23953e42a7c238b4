package bus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// ExpiringKeyValue opens (creating or updating if needed) a key-value
// bucket, with the bus's storage and replica settings, whose keys the
// server removes ttl after their last write. Watchers are told of each
// removal (a purge), which needs nats-server 2.11 or later.
//
// It suits presence: a writer that stops rewriting its key (killed, cut
// off) is forgotten within ttl, judged by the server alone.
func (b *Bus) ExpiringKeyValue(ctx context.Context, bucket string, ttl time.Duration) (jetstream.KeyValue, error) {
	var kv jetstream.KeyValue
	err := retryTransient(ctx, func(ctx context.Context) error {
		var err error
		kv, err = b.js.CreateOrUpdateKeyValue(ctx, jetstream.KeyValueConfig{
			Bucket:   bucket,
			Storage:  b.storage(),
			Replicas: b.cfg.Replicas,
			History:  1,
			TTL:      ttl,
			// The marker a removal leaves must outlive a watcher's
			// reconnect, or the watcher never hears of the removal.
			LimitMarkerTTL: max(ttl, time.Minute),
		})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("open key-value bucket %s (keys expire after %s): %w", bucket, ttl, err)
	}
	return kv, nil
}
