package auth

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/event"
)

// FuzzVerify feeds arbitrary strings to Verify: it must never panic, and it
// must accept a token only if its account is well formed.
func FuzzVerify(f *testing.F) {
	ctx := f.Context()
	clock := newClock()
	s := newService(f, newKV(f, startJetStream(f)), Options{Now: clock.Now})
	root, _, _, err := s.EnsureRoot(ctx, "root")
	if err != nil {
		f.Fatal(err)
	}
	token, _, err := s.IssueToken(ctx, root.ID, time.Hour)
	if err != nil {
		f.Fatal(err)
	}
	parts := strings.Split(token, ".")
	for _, seed := range []string{
		token, "", ".", "..", "a.b.c", parts[0] + "." + parts[1] + ".",
		parts[0] + ".e30." + parts[2], "eyJhbGciOiJub25lIn0.e30.", token + "x", strings.ToUpper(token),
		"eyJhbGciOiJFZERTQSIsImtpZCI6WzFdfQ.e30.AA", // kid of the wrong type
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, tok string) {
		c, err := s.Verify(tok)
		if err != nil {
			if !errors.Is(err, ErrTokenInvalid) && !errors.Is(err, ErrTokenExpired) {
				t.Fatalf("Verify error %v wraps neither ErrTokenInvalid nor ErrTokenExpired", err)
			}
			return
		}
		if !event.ValidAccountID(c.AccountID) || c.KeyID == "" {
			t.Fatalf("Verify accepted %q with claims %+v", tok, c)
		}
	})
}
