package auth

import (
	"context"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/testkit"
)

// A service's start context bounds only its start: after it ends, the
// service must still learn the signing keys other nodes create (nats.go
// ends a watch when the context it was made with is done).
func TestServiceKeepsLearningKeysAfterItsStartContextEnds(t *testing.T) {
	kv := newKV(t, startJetStream(t))
	issuer := newService(t, kv, Options{})
	start, cancel := context.WithCancel(t.Context())
	verifier, err := NewService(start, kv, Options{VerifyOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(verifier.Close)
	cancel()

	ctx := t.Context()
	root, _, _, err := issuer.EnsureRoot(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := issuer.RotateSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	token, _, err := issuer.IssueToken(ctx, root.ID, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the verifier to learn the signing key made after its start", func() bool {
		_, err := verifier.Verify(token)
		return err == nil
	})
}
