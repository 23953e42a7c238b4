package api_test

import (
	"context"
	"testing"

	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/auth/authtest"
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
	svc := authtest.Open(t, ctx, b, opts)
	root, key := authtest.Root(t, ctx, svc)
	return rootAuth{svc: svc, root: root, key: key, token: authtest.Token(t, ctx, svc, root.ID)}
}
