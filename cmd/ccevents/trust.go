package main

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/netlimit"
)

// sealKeyFile is the seal key's default place in the data dir.
const sealKeyFile = "signing.key"

// keyActivation is how long a rotated signing key waits before it signs on
// a cluster: longer than the bucket's watch takes to reach every node.
const keyActivation = 5 * time.Second

// startAuth opens the auth bucket as this process's roles may: an api node
// owns the bucket and issues tokens, so it needs the seal key; a gateway
// only verifies tokens and reads public keys. A process with neither role
// (an engine alone) needs no auth and gets nil.
func startAuth(ctx context.Context, b *bus.Bus, cfg serveConfig, log *slog.Logger) (*auth.Service, error) {
	opts := auth.Options{TokenTTL: cfg.TokenTTL, MaxTokenTTL: cfg.MaxTokenTTL, Logger: log.With("component", "auth")}
	if len(cfg.NATS) > 0 {
		// A rotated key signs only once every node has had time to learn it.
		opts.KeyActivation = keyActivation
	}
	switch {
	case cfg.has("api"):
		kv, err := b.KeyValue(ctx, authBucket)
		if err != nil {
			return nil, err
		}
		path, created, key, err := loadSealKey(cfg.SigningKeyFile, cfg.DataDir, log)
		if err != nil {
			return nil, err
		}
		opts.SealKey = key
		svc, err := auth.NewService(ctx, kv, opts)
		if errors.Is(err, auth.ErrSealKey) {
			if created {
				_ = os.Remove(path) // made just now, and not the one needed
			}
			return nil, fmt.Errorf("start auth: %w (this node's seal key is %s; copy the file from a node that runs the api role, and give it with --signing-key-file)", err, path)
		}
		if err != nil {
			return nil, fmt.Errorf("start auth: %w", err)
		}
		return svc, nil
	case cfg.has("gateway"):
		kv, err := b.EnsureKeyValue(ctx, authBucket)
		if err != nil {
			return nil, err
		}
		opts.VerifyOnly = true
		svc, err := auth.NewService(ctx, kv, opts)
		if err != nil {
			return nil, fmt.Errorf("start auth: %w", err)
		}
		return svc, nil
	}
	return nil, nil
}

// loadSealKey reads the seal key from file, or from DATA_DIR/signing.key
// when file is empty, creating it (mode 0600) when it does not exist yet:
// the first node of a deployment makes it, the others are given a copy.
func loadSealKey(file, dataDir string, log *slog.Logger) (path string, created bool, key []byte, err error) {
	path = file
	if path == "" {
		path = filepath.Join(dataDir, sealKeyFile)
	}
	raw, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		key = auth.NewSealKey()
		if err := writePrivateFile(path, auth.FormatSealKey(key)); err != nil {
			return "", false, nil, fmt.Errorf("create the seal key: %w", err)
		}
		log.Info("seal key for token signing keys created; give every node with the api role a copy (--signing-key-file)", "file", path, "seal_key_id", auth.SealKeyID(key))
		return path, true, key, nil
	case err != nil:
		return "", false, nil, fmt.Errorf("read the seal key: %w", err)
	}
	if key, err = auth.ParseSealKey(raw); err != nil {
		return "", false, nil, fmt.Errorf("seal key %s: %w", path, err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		log.Warn("the seal key file is readable by other users: chmod 600 it", "file", path, "mode", st.Mode().Perm())
	}
	return path, false, key, nil
}

// writePrivateFile writes data to path readable by the owner only.
func writePrivateFile(path string, data []byte) error {
	if err := os.WriteFile(path, data, 0o600); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	// WriteFile keeps the mode of an existing file; make sure it is private.
	if err := os.Chmod(path, 0o600); err != nil {
		return fmt.Errorf("restrict %s to its owner: %w", path, err)
	}
	return nil
}

// descriptorShares divides the process's open file limit between the
// listeners (see netlimit.Split); --max-conns, --api-max-conns and
// --nats-max-conns replace a listener's share.
func descriptorShares(cfg serveConfig, log *slog.Logger) netlimit.Shares {
	s := netlimit.Split(netlimit.OpenFileLimit())
	if cfg.MaxConns > 0 {
		s.WS = cfg.MaxConns
	}
	if cfg.APIMaxConns > 0 {
		s.API = cfg.APIMaxConns
	}
	if cfg.NATSMaxConns > 0 {
		s.NATS = cfg.NATSMaxConns
	}
	log.Info("file descriptor shares", "open_file_limit", s.Limit, "websocket", s.WS, "rest", s.API, "nats", s.NATS, "reserve", s.Reserve)
	if s.Limit > 0 && s.WS+s.API+s.NATS > s.Limit {
		log.Warn("the listeners' connection limits add up to more than the open file limit: one flood can starve the others; raise LimitNOFILE or lower --max-conns / --api-max-conns / --nats-max-conns",
			"open_file_limit", s.Limit, "websocket", s.WS, "rest", s.API, "nats", s.NATS)
	}
	return s
}
