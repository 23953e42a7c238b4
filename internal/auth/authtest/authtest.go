// Package authtest sets up accounts and tokens for the tests of packages
// that sit behind the auth service (the gateway, the REST API, the socket
// list, the load test): the service on a test bus's auth bucket, the root
// account, child accounts and tokens, each failing the test with what it
// was doing.
//
// It is for tests only and must never be imported by a non-test package;
// it writes nothing outside the bus it is given.
package authtest

import (
	"context"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/bus"
)

// Open starts an auth service with opts on b's auth bucket and closes it
// when the test ends (Close may also be called earlier, as a test that
// restarts its bus does).
func Open(t testing.TB, ctx context.Context, b *bus.Bus, opts auth.Options) *auth.Service {
	t.Helper()
	kv, err := b.KeyValue(ctx, auth.DefaultBucket)
	if err != nil {
		t.Fatalf("open the auth bucket: %v", err)
	}
	s, err := auth.NewService(ctx, kv, opts)
	if err != nil {
		t.Fatalf("start the auth service: %v", err)
	}
	t.Cleanup(s.Close)
	return s
}

// Root returns the root account of s, named "root" when this call creates
// it, with its API key (empty when the root already existed).
func Root(t testing.TB, ctx context.Context, s *auth.Service) (auth.Account, string) {
	t.Helper()
	root, key, _, err := s.EnsureRoot(ctx, "root")
	if err != nil {
		t.Fatalf("create the root account: %v", err)
	}
	return root, key
}

// Account creates a child of parent named "test" and returns its id.
func Account(t testing.TB, ctx context.Context, s *auth.Service, parent string) string {
	t.Helper()
	a, _, err := s.CreateAccount(ctx, parent, "test")
	if err != nil {
		t.Fatalf("create an account under %s: %v", parent, err)
	}
	return a.ID
}

// Token issues a token of account valid for an hour.
func Token(t testing.TB, ctx context.Context, s *auth.Service, account string) string {
	t.Helper()
	tok, _, err := s.IssueToken(ctx, account, time.Hour)
	if err != nil {
		t.Fatalf("issue a token of account %s: %v", account, err)
	}
	return tok
}
