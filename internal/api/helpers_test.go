package api_test

import (
	"context"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/bus"
)

// rootAuth is what every API test starts from: an auth service on the
// bus's auth bucket, its root account, the root's API key and a token of
// the root valid for an hour.
type rootAuth struct {
	svc   *auth.Service
	root  auth.Account
	key   string
	token string
}

// newRootAuth starts the auth service on b with opts (closed when the test
// ends) and creates the root account; ctx bounds the setup.
func newRootAuth(t *testing.T, ctx context.Context, b *bus.Bus, opts auth.Options) rootAuth {
	t.Helper()
	kv, err := b.KeyValue(ctx, "ccevents_auth")
	if err != nil {
		t.Fatalf("open the auth bucket: %v", err)
	}
	svc, err := auth.NewService(ctx, kv, opts)
	if err != nil {
		t.Fatalf("start the auth service: %v", err)
	}
	t.Cleanup(svc.Close)
	root, key, _, err := svc.EnsureRoot(ctx, "root")
	if err != nil {
		t.Fatalf("create the root account: %v", err)
	}
	token, _, err := svc.IssueToken(ctx, root.ID, time.Hour)
	if err != nil {
		t.Fatalf("issue a token of the root account: %v", err)
	}
	return rootAuth{svc: svc, root: root, key: key, token: token}
}
