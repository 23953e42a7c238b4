package cluster

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/backoff"
	"github.com/ccevents/ccevents/internal/event"
)

// The registry lists the accounts the engine nodes split, under
// registryPrefix in the engine's bucket (engine.Bucket), beside the keys
// of the accounts themselves.

// registryPrefix keys the accounts the engine nodes split: every account
// a command was ever sent for, and every account with stored state.
const registryPrefix = "accounts."

// registerAccount records an account in the registry; recording one twice
// is harmless.
func registerAccount(ctx context.Context, kv jetstream.KeyValue, accountID string) error {
	rec, _ := json.Marshal(map[string]string{"registered_at": time.Now().UTC().Format(event.TimestampLayout)})
	_, err := kv.Create(ctx, registryPrefix+accountID, rec)
	if err != nil && !errors.Is(err, jetstream.ErrKeyExists) {
		return fmt.Errorf("register account %s: %w", accountID, err)
	}
	return nil
}

// directory keeps the registry's account ids current from a watch.
type directory struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	mu     sync.Mutex
	ids    map[string]bool
	synced chan struct{} // closed once the watch delivered what was stored
}

func newDirectory(kv jetstream.KeyValue, log *slog.Logger) *directory {
	return &directory{kv: kv, log: log, ids: make(map[string]bool), synced: make(chan struct{})}
}

// run watches the registry until ctx ends, starting over after errors.
func (d *directory) run(ctx context.Context) {
	for ctx.Err() == nil {
		w, err := d.kv.WatchFiltered(ctx, []string{registryPrefix + ">"}, jetstream.IgnoreDeletes())
		if err != nil {
			d.log.Warn("watch the account registry; retrying", "err", err)
			_ = backoff.Sleep(ctx, time.Second)
			continue
		}
		for entry := range w.Updates() {
			if entry == nil {
				d.mu.Lock()
				select {
				case <-d.synced:
				default:
					close(d.synced)
				}
				d.mu.Unlock()
				continue
			}
			if id, ok := strings.CutPrefix(entry.Key(), registryPrefix); ok && event.ValidAccountID(id) {
				d.mu.Lock()
				d.ids[id] = true
				d.mu.Unlock()
			}
		}
		_ = w.Stop()
		_ = backoff.Sleep(ctx, 100*time.Millisecond)
	}
}

// list returns the registered accounts, sorted, once the registry is read.
func (d *directory) list(ctx context.Context) ([]string, error) {
	select {
	case <-d.synced:
	case <-ctx.Done():
		return nil, fmt.Errorf("read the account registry: %w", ctx.Err())
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	ids := make([]string, 0, len(d.ids))
	for id := range d.ids {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids, nil
}
