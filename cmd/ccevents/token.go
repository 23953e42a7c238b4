package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/url"
	"os"
	"path/filepath"
	"time"

	"github.com/peterbourgon/ff/v3"
	"github.com/peterbourgon/ff/v3/ffcli"

	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/event"
)

func newTokenCommand(stdout, stderr io.Writer) *ffcli.Command {
	fs := flag.NewFlagSet("ccevents token", flag.ContinueOnError)
	account := fs.String("account", "", "account id the token is for (required)")
	var nf toolNATSFlags
	nf.register(fs, "NATS URLs of the running ccevents (its --nats-listen, or its cluster)",
		"data dir of the running ccevents: its NATS credentials (nats/ccevents.nk) and seal key (signing.key)")
	sealFile := fs.String("signing-key-file", "", "seal key file of the deployment (default DATA_DIR/signing.key)")
	ttl := fs.Duration("ttl", time.Hour, "token lifetime")
	asJSON := fs.Bool("json", false, "print the token with its claims as JSON")
	return &ffcli.Command{
		Name:       "token",
		ShortUsage: "ccevents token --account ACCOUNT_ID [--ttl 1h] [--nats URL] [--data-dir DIR]",
		ShortHelp:  "mint an auth token for development",
		LongHelp: "Mints a signed auth token for an account with the signing key of the running\n" +
			"ccevents, read over NATS as ccevents' own identity and opened with the seal key.\n" +
			"The embedded server must listen (serve --nats-listen 127.0.0.1:4222); the\n" +
			"credentials and seal key come from --data-dir unless given. Production clients\n" +
			"use PUT /v2/api_auth instead.",
		FlagSet: fs,
		Options: []ff.Option{ff.WithEnvVarPrefix("CCEVENTS")},
		Exec: flagsOnly("token", "", func(ctx context.Context) error {
			if *account == "" {
				return errors.New("--account is required (see DATA_DIR/root.json for the root account id)")
			}
			if !event.ValidAccountID(*account) {
				return fmt.Errorf("--account must be 32 lowercase hex characters, got %q", *account)
			}
			if err := checkTokenTTL("--ttl", *ttl); err != nil {
				return err
			}
			natsOpts, err := nf.toolOptions(nf.URLs, nf.DataDir)
			if err != nil {
				return err
			}
			sealPath := *sealFile
			if sealPath == "" {
				sealPath = filepath.Join(nf.DataDir, sealKeyFile)
			}
			raw, err := os.ReadFile(sealPath)
			if err != nil {
				return fmt.Errorf("the seal key that opens the signing keys: %w (give --signing-key-file or --data-dir of the running ccevents)", unwrapPathError(err))
			}
			sealKey, err := auth.ParseSealKey(raw)
			if err != nil {
				return fmt.Errorf("%s: %w", sealPath, err)
			}
			ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			b, err := bus.Open(ctx, bus.Config{URLs: nf.URLs, Name: "ccevents-token", UseExistingStream: true, ConnectOptions: natsOpts})
			if err != nil {
				return fmt.Errorf("%w (is `ccevents serve --nats-listen %s` running?)", err, hostPort(nf.URLs))
			}
			defer b.Close()
			kv, err := b.EnsureKeyValue(ctx, authBucket)
			if err != nil {
				return err
			}
			svc, err := auth.NewService(ctx, kv, auth.Options{SealKey: sealKey, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				return err
			}
			defer svc.Close()
			if _, err := svc.Account(ctx, *account); err != nil {
				if errors.Is(err, auth.ErrNotFound) {
					return fmt.Errorf("account %s does not exist", *account)
				}
				return err
			}
			token, claims, err := svc.IssueToken(ctx, *account, *ttl)
			if err != nil {
				return fmt.Errorf("issue token: %w", err)
			}
			if *asJSON {
				return json.NewEncoder(stdout).Encode(map[string]any{
					"auth_token": token, "account_id": claims.AccountID, "expires_at": claims.ExpiresAt.UTC().Format(time.RFC3339),
				})
			}
			_, err = fmt.Fprintln(stdout, token)
			return err
		}),
	}
}

// checkTokenTTL refuses a token lifetime the auth service would not issue
// as asked: zero or negative (it would silently mean the default), or
// beyond the most it signs.
func checkTokenTTL(flagName string, ttl time.Duration) error {
	if ttl <= 0 || ttl > auth.DefaultMaxTokenTTL {
		return fmt.Errorf("%s must be above 0 and at most %s (e.g. 30m or 12h), got %s", flagName, auth.DefaultMaxTokenTTL, ttl)
	}
	return nil
}

// hostPort is the first URL's host:port, for advice.
func hostPort(urls []string) string {
	if len(urls) == 0 {
		return "127.0.0.1:4222"
	}
	if u, err := url.Parse(urls[0]); err == nil && u.Host != "" {
		return u.Host
	}
	return urls[0]
}

// writeJSONFile writes v to path readable by the owner only.
func writeJSONFile(path string, v any) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return writePrivateFile(path, append(data, '\n'))
}
