package auth

import (
	"bytes"
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/testkit"
)

// forge signs claims with the private half of the service's current key, as
// someone holding a copy of the key would.
func forge(t *testing.T, s *Service, claims jwt.MapClaims) string {
	t.Helper()
	k, ok := s.currentKey()
	if !ok || k.priv == nil {
		t.Fatal("the service holds no signing key to forge with")
	}
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = k.id
	signed, err := tok.SignedString(k.priv)
	if err != nil {
		t.Fatal(err)
	}
	return signed
}

func TestVerifyRefusesTokensLivingLongerThanTheMaximumOrIssuedAhead(t *testing.T) {
	clock := newClock()
	s := newService(t, newKV(t, startJetStream(t)), Options{Now: clock.Now, MaxTokenTTL: 24 * time.Hour})
	tr := makeTree(t, s)
	now := clock.Now()
	claims := func(iat time.Time, life time.Duration) jwt.MapClaims {
		return jwt.MapClaims{
			"iss": "ccevents", "sub": tr.root.ID, "account_id": tr.root.ID, "jti": "forged",
			"iat": iat.Unix(), "exp": iat.Add(life).Unix(),
		}
	}
	tests := []struct {
		name   string
		claims jwt.MapClaims
		reason string // "" when the token is valid
	}{
		{"ten years", claims(now, 10*365*24*time.Hour), "lifetime of 87600h0m0s"},
		{"a second over the maximum", claims(now, 24*time.Hour+time.Second), "the 24h0m0s this service allows"},
		{"exactly the maximum", claims(now, 24*time.Hour), ""},
		{"expiry before issue", claims(now.Add(time.Hour), -30*time.Minute), "lifetime of -30m0s"},
		{"issued an hour ahead", claims(now.Add(time.Hour), time.Hour), "issued 1h0m0s in the future"},
		{"issued within the clock margin", claims(now.Add(30*time.Second), time.Hour), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := s.Verify(forge(t, s, tt.claims))
			switch {
			case tt.reason == "" && err != nil:
				t.Fatalf("Verify refused a valid token: %v", err)
			case tt.reason != "" && (!errors.Is(err, ErrTokenInvalid) || !strings.Contains(err.Error(), tt.reason)):
				t.Fatalf("Verify error %v, want ErrTokenInvalid saying %q", err, tt.reason)
			}
		})
	}
}

// signingEntries returns the raw records of every signing key in kv, as any
// client allowed to read the bucket sees them.
func signingEntries(t *testing.T, kv jetstream.KeyValue) map[string][]byte {
	t.Helper()
	ctx := t.Context()
	keys, err := kv.ListKeysFiltered(ctx, signingPrefix+"*")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string][]byte{}
	for k := range keys.Keys() {
		e, err := kv.Get(ctx, k)
		if err != nil {
			t.Fatal(err)
		}
		out[k] = e.Value()
	}
	return out
}

func TestTheBucketHoldsNoSigningSeedInTheClear(t *testing.T) {
	ctx := t.Context()
	kv := newKV(t, startJetStream(t))
	s := newService(t, kv, Options{})
	if _, err := s.RotateSigningKey(ctx); err != nil {
		t.Fatal(err)
	}
	entries := signingEntries(t, kv)
	if len(entries) != 2 {
		t.Fatalf("bucket holds %d signing keys, want 2", len(entries))
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	for name, raw := range entries {
		k := s.keys[strings.TrimPrefix(name, signingPrefix)]
		if k.priv == nil {
			t.Fatalf("%s: the service that made it cannot sign with it", name)
		}
		var rec map[string]json.RawMessage
		if err := json.Unmarshal(raw, &rec); err != nil {
			t.Fatal(err)
		}
		if _, ok := rec["seed"]; ok {
			t.Errorf("%s stores a plain seed: %s", name, raw)
		}
		// Neither the seed nor the private key appears in any encoding.
		for _, secret := range [][]byte{k.priv.Seed(), k.priv} {
			for _, form := range [][]byte{secret, []byte(jsonBytes(secret))} {
				if bytes.Contains(raw, form) {
					t.Errorf("%s contains the private key material", name)
				}
			}
		}
		var pub []byte
		if err := json.Unmarshal(rec["public_key"], &pub); err != nil || !ed25519.PublicKey(pub).Equal(k.pub) {
			t.Errorf("%s: public key %x, want %x", name, pub, k.pub)
		}
	}
}

func jsonBytes(b []byte) string {
	out, _ := json.Marshal(b)
	return strings.Trim(string(out), `"`)
}

func TestAServiceWithAnotherSealKeyRefusesToStart(t *testing.T) {
	ctx := t.Context()
	kv := newKV(t, startJetStream(t))
	first := newService(t, kv, Options{})
	k, _ := first.currentKey()
	_, err := NewService(ctx, kv, Options{SealKey: NewSealKey()})
	if !errors.Is(err, ErrSealKey) {
		t.Fatalf("NewService with another seal key: %v, want ErrSealKey", err)
	}
	if !strings.Contains(err.Error(), k.sealedWith) || !strings.Contains(err.Error(), "same seal key") {
		t.Errorf("error %q should name the seal key the keys need (%s) and what to do", err, k.sealedWith)
	}
	if _, err := NewService(ctx, kv, Options{SealKey: []byte("short")}); !errors.Is(err, ErrSealKey) {
		t.Errorf("NewService with a 5-byte seal key: %v, want ErrSealKey", err)
	}
}

func TestAServiceWithoutASealKeySignsWithAKeyOfItsOwn(t *testing.T) {
	ctx := t.Context()
	kv := newKV(t, startJetStream(t))
	first := newService(t, kv, Options{})
	tr := makeTree(t, first)
	before, _ := first.currentKey()
	standalone, err := NewService(ctx, kv, Options{})
	if err != nil {
		t.Fatalf("NewService without a seal key on a sealed bucket: %v", err)
	}
	defer standalone.Close()
	token, c, err := standalone.IssueToken(ctx, tr.a.ID, 0)
	if err != nil || c.KeyID == before.id {
		t.Fatalf("token from the standalone service: key %s, %v; want a key of its own", c.KeyID, err)
	}
	testkit.Eventually(t, 10*time.Second, "the first service verifies it", func() bool { _, err := first.Verify(token); return err == nil })
}

func TestAVerifyOnlyServiceChecksTokensButNeverSigns(t *testing.T) {
	ctx := t.Context()
	kv := newKV(t, startJetStream(t))
	gw := newService(t, kv, Options{VerifyOnly: true})
	if n := len(signingEntries(t, kv)); n != 0 {
		t.Fatalf("a verify-only service created %d signing keys", n)
	}
	api := newService(t, kv, Options{})
	tr := makeTree(t, api)
	token, _, err := api.Login(ctx, tr.keys[tr.a.ID])
	if err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, "the verify-only service learns the signing key", func() bool { _, err := gw.Verify(token); return err == nil })
	if _, _, err := gw.IssueToken(ctx, tr.a.ID, 0); err == nil || !strings.Contains(err.Error(), "verifies tokens only") {
		t.Errorf("IssueToken on a verify-only service: %v", err)
	}
	if _, err := gw.RotateSigningKey(ctx); err == nil {
		t.Error("RotateSigningKey on a verify-only service succeeded")
	}
}

func TestPlainSigningKeysFromBeforeSealsAreSealedAndKeepWorking(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	kv := newKV(t, startJetStream(t))
	// What an older ccevents stored: the seed in plain text.
	seed := bytes.Repeat([]byte{42}, ed25519.SeedSize)
	legacy, _ := json.Marshal(map[string]any{
		"id": "00000000000000aa", "alg": "EdDSA", "seed": seed,
		"created_at": clock.Now().Add(-time.Hour), "active_from": clock.Now().Add(-time.Hour),
	})
	if _, err := kv.Create(ctx, signingPrefix+"00000000000000aa", legacy); err != nil {
		t.Fatal(err)
	}
	gw := newService(t, kv, Options{Now: clock.Now, VerifyOnly: true}) // an old gateway's view
	s := newService(t, kv, Options{Now: clock.Now})
	raw := signingEntries(t, kv)[signingPrefix+"00000000000000aa"]
	if bytes.Contains(raw, []byte(`"seed"`)) || !bytes.Contains(raw, []byte(`"sealed_seed"`)) {
		t.Fatalf("the plain key was not sealed: %s", raw)
	}
	tr := makeTree(t, s)
	token, c, err := s.IssueToken(ctx, tr.a.ID, 0)
	if err != nil || c.KeyID != "00000000000000aa" {
		t.Fatalf("IssueToken after sealing: key %s, %v; want the sealed key 00000000000000aa", c.KeyID, err)
	}
	testkit.Eventually(t, 10*time.Second, "a verify-only service still verifies with the sealed key", func() bool { _, err := gw.Verify(token); return err == nil })
	// A rotation still supersedes it: creation order survived the rewrite.
	kid, err := s.RotateSigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, c, _ := s.IssueToken(ctx, tr.a.ID, 0); c.KeyID != kid {
		t.Errorf("after rotation the token is signed by %s, want the new key %s", c.KeyID, kid)
	}
}

func TestSealKeyTextRoundTrips(t *testing.T) {
	k := NewSealKey()
	got, err := ParseSealKey(append([]byte("  "), FormatSealKey(k)...))
	if err != nil || !bytes.Equal(got, k) {
		t.Fatalf("ParseSealKey(FormatSealKey(k)) = %x, %v; want %x", got, err, k)
	}
	for _, bad := range []string{"", "zz", strings.Repeat("ab", 31)} {
		if _, err := ParseSealKey([]byte(bad)); !errors.Is(err, ErrSealKey) || !strings.Contains(err.Error(), "64 hex characters") {
			t.Errorf("ParseSealKey(%q) = %v", bad, err)
		}
	}
}
