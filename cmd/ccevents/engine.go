package main

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/engine"
)

// startEngine opens the engine's key-value bucket and loads every account
// stored there.
func startEngine(ctx context.Context, b *bus.Bus, cfg serveConfig, log *slog.Logger) (*engine.Engine, error) {
	kv, err := b.KeyValue(ctx, engine.Bucket)
	if err != nil {
		return nil, err
	}
	eng, err := engine.New(ctx, engine.Config{
		Publisher:    b,
		KV:           kv,
		SyncInterval: cfg.SyncInterval,
		Logger:       log.With("component", "engine"),
	})
	if err != nil {
		return nil, fmt.Errorf("start the engine: %w", err)
	}
	return eng, nil
}
