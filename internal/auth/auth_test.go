package auth

import (
	"context"
	"encoding/base64"
	"errors"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/event"
	"github.com/golang-jwt/jwt/v5"

	"github.com/ccevents/ccevents/internal/testkit"
)

func TestEnsureRootCreatesTheRootOnce(t *testing.T) {
	ctx := t.Context()
	js := startJetStream(t)
	kv := newKV(t, js)
	s := newService(t, kv, Options{})

	root, key, created, err := s.EnsureRoot(ctx, "Vinix")
	if err != nil {
		t.Fatalf("EnsureRoot: %v", err)
	}
	if !created || key == "" || !event.ValidAccountID(root.ID) || root.Name != "Vinix" || root.ParentID != "" || len(root.Ancestors) != 0 {
		t.Fatalf("first EnsureRoot = %+v, key %q, created %v", root, key, created)
	}
	again, key2, created2, err := s.EnsureRoot(ctx, "Other name")
	if err != nil {
		t.Fatalf("second EnsureRoot: %v", err)
	}
	if created2 || key2 != "" || again.ID != root.ID || again.Name != "Vinix" {
		t.Errorf("second EnsureRoot = %+v, key %q, created %v; want the same root, no key", again, key2, created2)
	}
	// Another node on the same bucket finds the same root.
	s2 := newService(t, kv, Options{})
	other, _, created3, err := s2.EnsureRoot(ctx, "Vinix")
	if err != nil || created3 || other.ID != root.ID {
		t.Errorf("EnsureRoot on a second service = %+v, created %v, %v", other, created3, err)
	}
	if _, _, err := s.Login(ctx, key); err != nil {
		t.Errorf("root API key does not log in: %v", err)
	}
}

func TestEnsureRootRaceCreatesExactlyOneRoot(t *testing.T) {
	ctx := t.Context()
	js := startJetStream(t)
	kv := newKV(t, js)
	services := []*Service{newService(t, kv, Options{}), newService(t, kv, Options{}), newService(t, kv, Options{})}
	type result struct {
		id      string
		created bool
		err     error
	}
	results := make([]result, len(services))
	var wg sync.WaitGroup
	for i, s := range services {
		wg.Go(func() {
			a, _, created, err := s.EnsureRoot(ctx, "root")
			results[i] = result{a.ID, created, err}
		})
	}
	wg.Wait()
	createdN := 0
	for _, r := range results {
		if r.err != nil {
			t.Fatalf("EnsureRoot: %v", r.err)
		}
		if r.id != results[0].id {
			t.Errorf("roots differ: %s vs %s", r.id, results[0].id)
		}
		if r.created {
			createdN++
		}
	}
	if createdN != 1 {
		t.Errorf("%d services report creating the root, want 1", createdN)
	}
}

func TestEnsureRootRefusesEmptyName(t *testing.T) {
	ctx := t.Context()
	s := newService(t, newKV(t, startJetStream(t)), Options{})
	if _, _, _, err := s.EnsureRoot(ctx, "  "); !errors.Is(err, ErrInvalidName) {
		t.Errorf("EnsureRoot(blank) error = %v, want ErrInvalidName", err)
	}
}

// tree is root -> {a -> {a1}, b}.
type tree struct {
	root, a, a1, b Account
	keys           map[string]string // account id -> API key
}

func makeTree(t *testing.T, s *Service) tree {
	t.Helper()
	ctx := t.Context()
	var tr tree
	tr.keys = map[string]string{}
	var key string
	var err error
	tr.root, key, _, err = s.EnsureRoot(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	tr.keys[tr.root.ID] = key
	mk := func(parent Account, name string) Account {
		a, key, err := s.CreateAccount(ctx, parent.ID, name)
		if err != nil {
			t.Fatalf("CreateAccount(%s): %v", name, err)
		}
		tr.keys[a.ID] = key
		return a
	}
	tr.a = mk(tr.root, "reseller A")
	tr.b = mk(tr.root, "reseller B")
	tr.a1 = mk(tr.a, "customer A1")
	return tr
}

func TestCreateAccountRecordsAncestry(t *testing.T) {
	ctx := t.Context()
	s := newService(t, newKV(t, startJetStream(t)), Options{})
	tr := makeTree(t, s)
	if tr.a1.ParentID != tr.a.ID || len(tr.a1.Ancestors) != 2 || tr.a1.Ancestors[0] != tr.root.ID || tr.a1.Ancestors[1] != tr.a.ID {
		t.Errorf("grandchild = %+v, want parent %s and ancestors [%s %s]", tr.a1, tr.a.ID, tr.root.ID, tr.a.ID)
	}
	got, err := s.Account(ctx, tr.a1.ID)
	if err != nil || got.Name != "customer A1" || got.CreatedAt.IsZero() {
		t.Errorf("Account(a1) = %+v, %v", got, err)
	}
	got.Ancestors[0] = "mutated"
	if again, _ := s.Account(ctx, tr.a1.ID); again.Ancestors[0] != tr.root.ID {
		t.Error("mutating a returned account changed the service's copy")
	}
	kids, err := s.Children(ctx, tr.root.ID)
	if err != nil || len(kids) != 2 || kids[0].ID != tr.a.ID || kids[1].ID != tr.b.ID {
		t.Errorf("Children(root) = %+v, %v; want [a b]", kids, err)
	}
	if kids, err := s.Children(ctx, tr.a1.ID); err != nil || len(kids) != 0 {
		t.Errorf("Children(a1) = %+v, %v; want none", kids, err)
	}
}

func TestCreateAccountRefusesBadInput(t *testing.T) {
	ctx := t.Context()
	s := newService(t, newKV(t, startJetStream(t)), Options{})
	root, _, _, err := s.EnsureRoot(ctx, "root")
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, parent, accountName string
		want                      error
	}{
		{"empty name", root.ID, "", ErrInvalidName},
		{"blank name", root.ID, " \t", ErrInvalidName},
		{"control characters", root.ID, "a\x00b", ErrInvalidName},
		{"very long name", root.ID, strings.Repeat("n", 129), ErrInvalidName},
		{"invalid utf8", root.ID, "\xff", ErrInvalidName},
		{"unknown parent", NewAccountID(), "x", ErrNotFound},
		{"malformed parent", "*", "x", ErrNotFound},
		{"no parent", "", "x", ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := s.CreateAccount(ctx, tt.parent, tt.accountName); !errors.Is(err, tt.want) {
				t.Errorf("CreateAccount error = %v, want %v", err, tt.want)
			}
		})
	}
}

func TestAccountAndChildrenOfUnknownAccount(t *testing.T) {
	ctx := t.Context()
	s := newService(t, newKV(t, startJetStream(t)), Options{})
	for _, id := range []string{NewAccountID(), "", "../x", strings.Repeat("A", 32)} {
		if _, err := s.Account(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Account(%q) error = %v, want ErrNotFound", id, err)
		}
		if _, err := s.Children(ctx, id); !errors.Is(err, ErrNotFound) {
			t.Errorf("Children(%q) error = %v, want ErrNotFound", id, err)
		}
	}
}

func TestMayAccessFollowsTheAccountTree(t *testing.T) {
	ctx := t.Context()
	s := newService(t, newKV(t, startJetStream(t)), Options{})
	tr := makeTree(t, s)
	stranger := NewAccountID()
	tests := []struct {
		name          string
		token, target string
		want          bool
	}{
		{"root sees itself", tr.root.ID, tr.root.ID, true},
		{"root sees child", tr.root.ID, tr.a.ID, true},
		{"root sees grandchild", tr.root.ID, tr.a1.ID, true},
		{"parent sees child", tr.a.ID, tr.a1.ID, true},
		{"child sees itself", tr.a1.ID, tr.a1.ID, true},
		{"child never sees parent", tr.a1.ID, tr.a.ID, false},
		{"child never sees root", tr.a.ID, tr.root.ID, false},
		{"sibling never sees sibling", tr.a.ID, tr.b.ID, false},
		{"sibling never sees sibling's child", tr.b.ID, tr.a1.ID, false},
		{"nobody sees an unknown account", tr.root.ID, stranger, false},
		{"unknown token account sees nothing", stranger, tr.a.ID, false},
		{"malformed target", tr.root.ID, "*", false},
		{"malformed token account", "*", tr.a.ID, false},
		{"uppercase look-alike", tr.root.ID, strings.ToUpper(tr.a.ID), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.MayAccess(ctx, tt.token, tt.target)
			if err != nil {
				t.Fatalf("MayAccess: %v", err)
			}
			if got != tt.want {
				t.Errorf("MayAccess(%s, %s) = %v, want %v", tt.token, tt.target, got, tt.want)
			}
		})
	}
}

func TestLogin(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	s := newService(t, newKV(t, startJetStream(t)), Options{Now: clock.Now})
	tr := makeTree(t, s)

	token, c, err := s.Login(ctx, tr.keys[tr.a.ID])
	if err != nil {
		t.Fatalf("Login with a good key: %v", err)
	}
	if c.AccountID != tr.a.ID || c.TokenID == "" || c.KeyID == "" || !c.IssuedAt.Equal(clock.Now()) || c.ExpiresAt.Sub(c.IssuedAt) != time.Hour {
		t.Errorf("claims = %+v", c)
	}
	verified, err := s.Verify(token)
	if err != nil {
		t.Fatalf("Verify of a fresh token: %v", err)
	}
	if verified != c {
		t.Errorf("Verify = %+v, want %+v", verified, c)
	}
	_, c2, _ := s.Login(ctx, tr.keys[tr.a.ID])
	if c2.TokenID == c.TokenID {
		t.Error("two logins got the same token id")
	}

	for name, key := range map[string]string{
		"unknown key":     strings.Repeat("ab", 32),
		"empty key":       "",
		"short key":       tr.keys[tr.a.ID][:63],
		"uppercased key":  strings.ToUpper(tr.keys[tr.a.ID]),
		"key with spaces": " " + tr.keys[tr.a.ID],
		"account id":      tr.a.ID,
	} {
		if _, _, err := s.Login(ctx, key); !errors.Is(err, ErrInvalidAPIKey) {
			t.Errorf("Login with %s: error = %v, want ErrInvalidAPIKey", name, err)
		}
	}
}

func TestRevokedAPIKeyNoLongerLogsIn(t *testing.T) {
	ctx := t.Context()
	s := newService(t, newKV(t, startJetStream(t)), Options{})
	tr := makeTree(t, s)
	token, _, err := s.Login(ctx, tr.keys[tr.b.ID])
	if err != nil {
		t.Fatal(err)
	}
	if err := s.RevokeAPIKey(ctx, tr.b.ID); err != nil {
		t.Fatalf("RevokeAPIKey: %v", err)
	}
	if _, _, err := s.Login(ctx, tr.keys[tr.b.ID]); !errors.Is(err, ErrInvalidAPIKey) {
		t.Errorf("Login with revoked key: error = %v, want ErrInvalidAPIKey", err)
	}
	if _, err := s.Verify(token); err != nil {
		t.Errorf("a token issued before revocation stops verifying: %v", err)
	}
	if err := s.RevokeAPIKey(ctx, tr.b.ID); err != nil {
		t.Errorf("revoking twice: %v", err)
	}
	if err := s.RevokeAPIKey(ctx, NewAccountID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("RevokeAPIKey(unknown) = %v, want ErrNotFound", err)
	}
	// Other accounts are untouched.
	if _, _, err := s.Login(ctx, tr.keys[tr.a.ID]); err != nil {
		t.Errorf("another account's key stopped working: %v", err)
	}
}

func TestRotateAPIKeyReplacesTheOldKey(t *testing.T) {
	ctx := t.Context()
	s := newService(t, newKV(t, startJetStream(t)), Options{})
	tr := makeTree(t, s)
	newKey, err := s.RotateAPIKey(ctx, tr.a1.ID)
	if err != nil {
		t.Fatalf("RotateAPIKey: %v", err)
	}
	if newKey == tr.keys[tr.a1.ID] || len(newKey) != 64 {
		t.Fatalf("new key %q", newKey)
	}
	if _, _, err := s.Login(ctx, tr.keys[tr.a1.ID]); !errors.Is(err, ErrInvalidAPIKey) {
		t.Errorf("old key after rotation: error = %v, want ErrInvalidAPIKey", err)
	}
	if _, c, err := s.Login(ctx, newKey); err != nil || c.AccountID != tr.a1.ID {
		t.Errorf("new key: claims %+v, error %v", c, err)
	}
	// A revoked account gets a working key back by rotating.
	if err := s.RevokeAPIKey(ctx, tr.a1.ID); err != nil {
		t.Fatal(err)
	}
	again, err := s.RotateAPIKey(ctx, tr.a1.ID)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.Login(ctx, again); err != nil {
		t.Errorf("key rotated after revocation: %v", err)
	}
	if _, err := s.RotateAPIKey(ctx, NewAccountID()); !errors.Is(err, ErrNotFound) {
		t.Errorf("RotateAPIKey(unknown) = %v, want ErrNotFound", err)
	}
}

func TestConcurrentAPIKeyRotationsLeaveOneWorkingKey(t *testing.T) {
	ctx := t.Context()
	kv := newKV(t, startJetStream(t))
	s1 := newService(t, kv, Options{})
	s2 := newService(t, kv, Options{})
	tr := makeTree(t, s1)
	keys := make([]string, 6)
	var wg sync.WaitGroup
	for i := range keys {
		s := []*Service{s1, s2}[i%2]
		wg.Go(func() {
			k, err := s.RotateAPIKey(ctx, tr.a.ID)
			if err != nil {
				t.Errorf("RotateAPIKey: %v", err)
			}
			keys[i] = k
		})
	}
	wg.Wait()
	working := 0
	for _, k := range keys {
		if _, _, err := s1.Login(ctx, k); err == nil {
			working++
		}
	}
	if working != 1 {
		t.Errorf("%d of the rotated keys log in, want exactly 1", working)
	}
}

func TestIssueToken(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	s := newService(t, newKV(t, startJetStream(t)), Options{Now: clock.Now, TokenTTL: 30 * time.Minute, MaxTokenTTL: 2 * time.Hour})
	tr := makeTree(t, s)
	tests := []struct {
		name    string
		account string
		ttl     time.Duration
		wantTTL time.Duration
		wantErr error
	}{
		{"default lifetime", tr.a.ID, 0, 30 * time.Minute, nil},
		{"negative means default", tr.a.ID, -time.Second, 30 * time.Minute, nil},
		{"explicit lifetime", tr.a.ID, 90 * time.Minute, 90 * time.Minute, nil},
		{"longer than the maximum", tr.a.ID, 3 * time.Hour, 0, ErrInvalidTTL},
		{"unknown account", NewAccountID(), 0, 0, ErrNotFound},
		{"malformed account", "x", 0, 0, ErrNotFound},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			token, c, err := s.IssueToken(ctx, tt.account, tt.ttl)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error = %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := c.ExpiresAt.Sub(c.IssuedAt); got != tt.wantTTL {
				t.Errorf("lifetime = %s, want %s", got, tt.wantTTL)
			}
			if v, err := s.Verify(token); err != nil || v != c {
				t.Errorf("Verify = %+v, %v; want %+v", v, err, c)
			}
		})
	}
}

func TestNewServiceRefusesDefaultTTLAboveMaximum(t *testing.T) {
	ctx := t.Context()
	kv := newKV(t, startJetStream(t))
	if _, err := NewService(ctx, kv, Options{TokenTTL: 2 * time.Hour, MaxTokenTTL: time.Hour}); !errors.Is(err, ErrInvalidTTL) {
		t.Errorf("NewService error = %v, want ErrInvalidTTL", err)
	}
}

func TestVerifyRefusesExpiredToken(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	s := newService(t, newKV(t, startJetStream(t)), Options{Now: clock.Now})
	tr := makeTree(t, s)
	token, c, err := s.IssueToken(ctx, tr.a.ID, 10*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	clock.Advance(10*time.Minute - time.Second)
	if _, err := s.Verify(token); err != nil {
		t.Fatalf("token a second before expiry: %v", err)
	}
	clock.Advance(time.Second)
	_, err = s.Verify(token)
	if !errors.Is(err, ErrTokenExpired) {
		t.Fatalf("Verify at expiry: error = %v, want ErrTokenExpired", err)
	}
	if want := c.ExpiresAt.Format(time.RFC3339); !strings.Contains(err.Error(), want) || !strings.Contains(err.Error(), "log in again") {
		t.Errorf("error %q should say when it expired (%s) and what to do", err, want)
	}
}

// reencode replaces the payload of a JWT, keeping header and signature.
func reencode(t *testing.T, token string, edit func(string) string) string {
	t.Helper()
	parts := strings.Split(token, ".")
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	parts[1] = base64.RawURLEncoding.EncodeToString([]byte(edit(string(payload))))
	return strings.Join(parts, ".")
}

func TestVerifyRefusesTamperedTokens(t *testing.T) {
	ctx := t.Context()
	s := newService(t, newKV(t, startJetStream(t)), Options{})
	tr := makeTree(t, s)
	token, c, err := s.IssueToken(ctx, tr.a1.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(token, ".")
	flipped := []byte(parts[2])
	if flipped[10] == 'A' { // another valid base64url character
		flipped[10] = 'B'
	} else {
		flipped[10] = 'A'
	}
	hmacToken, _ := jwt.NewWithClaims(jwt.SigningMethodHS256, jwt.MapClaims{
		"sub": tr.root.ID, "account_id": tr.root.ID, "iss": "ccevents", "exp": time.Now().Add(time.Hour).Unix(), "jti": "x", "iat": time.Now().Unix(),
	}).SignedString([]byte("guess"))
	tests := []struct {
		name, token, reason string
	}{
		{"account changed to the parent", reencode(t, token, func(p string) string { return strings.ReplaceAll(p, tr.a1.ID, tr.a.ID) }), "signature does not match"},
		{"expiry extended", reencode(t, token, func(p string) string { return strings.Replace(p, `"exp":`, `"exp":9`, 1) }), "signature does not match"},
		{"signature altered", parts[0] + "." + parts[1] + "." + string(flipped), "signature does not match"},
		{"signature removed", parts[0] + "." + parts[1] + ".", "signature does not match"},
		{"alg none", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0." + parts[1] + ".", `only EdDSA`},
		{"hmac signed", hmacToken, `only EdDSA`},
		{"not a jwt", "hello", "not a well-formed JWT"},
		{"an api key", strings.Repeat("5f", 32), "this is an API key, not an auth token; exchange it for one with PUT /v2/api_auth"},
		{"empty", "", "no token"},
		{"garbage parts", "a.b.c", "not a well-formed JWT"},
		{"huge", strings.Repeat("a", 10000), "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.Verify(tt.token)
			if !errors.Is(err, ErrTokenInvalid) {
				t.Fatalf("Verify = %+v, %v; want ErrTokenInvalid", got, err)
			}
			if !strings.Contains(err.Error(), tt.reason) {
				t.Errorf("error %q should mention %q", err, tt.reason)
			}
		})
	}
	if v, err := s.Verify(token); err != nil || v != c {
		t.Errorf("untouched token: %+v, %v", v, err)
	}
}

func TestVerifyRefusesTokenSignedByUnknownKey(t *testing.T) {
	ctx := t.Context()
	js := startJetStream(t)
	elsewhere := newService(t, newKV(t, js), Options{})
	root, _, _, err := elsewhere.EnsureRoot(ctx, "other deployment")
	if err != nil {
		t.Fatal(err)
	}
	foreign, _, err := elsewhere.IssueToken(ctx, root.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	s := newService(t, newKV(t, js), Options{})
	_, err = s.Verify(foreign)
	if !errors.Is(err, ErrTokenInvalid) || !strings.Contains(err.Error(), "key this service does not know") {
		t.Errorf("Verify(foreign token) error = %v, want ErrTokenInvalid naming the unknown key", err)
	}
	// A foreign token re-signed without a kid.
	noKid := strings.Split(foreign, ".")
	noKid[0] = base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"EdDSA","typ":"JWT"}`))
	if _, err := s.Verify(strings.Join(noKid, ".")); !errors.Is(err, ErrTokenInvalid) || !strings.Contains(err.Error(), "names no signing key") {
		t.Errorf("Verify(token without kid) error = %v", err)
	}
}

func TestRotateSigningKeyKeepsOldTokensValid(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	kv := newKV(t, startJetStream(t))
	s := newService(t, kv, Options{Now: clock.Now, MaxTokenTTL: 2 * time.Hour})
	other := newService(t, kv, Options{Now: clock.Now, MaxTokenTTL: 2 * time.Hour})                     // a second node
	gateway := newService(t, kv, Options{Now: clock.Now, MaxTokenTTL: 2 * time.Hour, VerifyOnly: true}) // without the seal key
	tr := makeTree(t, s)

	oldToken, oldClaims, err := s.IssueToken(ctx, tr.a.ID, 2*time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	kid, err := s.RotateSigningKey(ctx)
	if err != nil {
		t.Fatalf("RotateSigningKey: %v", err)
	}
	if kid == oldClaims.KeyID {
		t.Fatal("rotation returned the old key id")
	}
	newToken, newClaims, err := s.IssueToken(ctx, tr.a.ID, 0)
	if err != nil {
		t.Fatal(err)
	}
	if newClaims.KeyID != kid {
		t.Errorf("token after rotation signed by %s, want the new key %s", newClaims.KeyID, kid)
	}
	for name, tok := range map[string]string{"old": oldToken, "new": newToken} {
		if _, err := s.Verify(tok); err != nil {
			t.Errorf("%s token on the rotating node: %v", name, err)
		}
	}
	testkit.Eventually(t, 10*time.Second, "second node learns the new key", func() bool { _, err := other.Verify(newToken); return err == nil })
	if _, err := other.Verify(oldToken); err != nil {
		t.Errorf("old token on the second node: %v", err)
	}
	// The second node signs with the rotated key too: it opens its seal.
	if _, c, err := other.IssueToken(ctx, tr.a.ID, 0); err != nil || c.KeyID != kid {
		t.Errorf("token from the second node after rotation: key %s, %v; want %s", c.KeyID, err, kid)
	}
	testkit.Eventually(t, 10*time.Second, "the gateway learns the new key", func() bool { _, err := gateway.Verify(newToken); return err == nil })
	if _, err := gateway.Verify(oldToken); err != nil {
		t.Errorf("old token on the gateway: %v", err)
	}

	// Once every token of the old key has expired, the next rotation
	// deletes the old key everywhere; the key before stays.
	clock.Advance(2*time.Hour + 2*time.Minute)
	third, err := s.RotateSigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	s.mu.RLock()
	_, oldKept := s.keys[oldClaims.KeyID]
	_, newKept := s.keys[kid]
	s.mu.RUnlock()
	if oldKept || !newKept {
		t.Errorf("after pruning: old key kept %v (want false), previous key kept %v (want true)", oldKept, newKept)
	}
	testkit.Eventually(t, 10*time.Second, "second node forgets the pruned key", func() bool {
		other.mu.RLock()
		defer other.mu.RUnlock()
		_, ok := other.keys[oldClaims.KeyID]
		_, ok3 := other.keys[third]
		return !ok && ok3
	})
}

func TestRotatedKeySignsOnlyAfterActivation(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	s := newService(t, newKV(t, startJetStream(t)), Options{Now: clock.Now, KeyActivation: 5 * time.Second})
	tr := makeTree(t, s)
	_, before, _ := s.IssueToken(ctx, tr.a.ID, 0)
	kid, err := s.RotateSigningKey(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, c, _ := s.IssueToken(ctx, tr.a.ID, 0); c.KeyID != before.KeyID {
		t.Errorf("during activation, token signed by %s, want the old key %s", c.KeyID, before.KeyID)
	}
	clock.Advance(5 * time.Second)
	if _, c, _ := s.IssueToken(ctx, tr.a.ID, 0); c.KeyID != kid {
		t.Errorf("after activation, token signed by %s, want the new key %s", c.KeyID, kid)
	}
}

func TestSecondServiceSeesAccountsOfTheFirst(t *testing.T) {
	ctx := t.Context()
	kv := newKV(t, startJetStream(t))
	s1 := newService(t, kv, Options{})
	s2 := newService(t, kv, Options{})
	tr := makeTree(t, s1)

	// Direct lookups work at once (a cache miss reads the bucket) ...
	if a, err := s2.Account(ctx, tr.a1.ID); err != nil || a.ParentID != tr.a.ID {
		t.Errorf("s2.Account(a1) = %+v, %v", a, err)
	}
	if ok, err := s2.MayAccess(ctx, tr.root.ID, tr.a1.ID); err != nil || !ok {
		t.Errorf("s2.MayAccess(root, a1) = %v, %v", ok, err)
	}
	// ... and the watch brings the rest.
	testkit.Eventually(t, 10*time.Second, "s2 lists the root's children", func() bool {
		kids, err := s2.Children(ctx, tr.root.ID)
		return err == nil && len(kids) == 2
	})
	// Tokens from one node verify on the other.
	token, _, err := s1.Login(ctx, tr.keys[tr.b.ID])
	if err != nil {
		t.Fatal(err)
	}
	if c, err := s2.Verify(token); err != nil || c.AccountID != tr.b.ID {
		t.Errorf("s2.Verify(token of s1) = %+v, %v", c, err)
	}
	// A service started later loads everything up front.
	s3 := newService(t, kv, Options{})
	if kids, err := s3.Children(ctx, tr.a.ID); err != nil || len(kids) != 1 || kids[0].ID != tr.a1.ID {
		t.Errorf("s3.Children(a) = %+v, %v", kids, err)
	}
	// A key revoked on one node is refused on the other.
	if err := s2.RevokeAPIKey(ctx, tr.a.ID); err != nil {
		t.Fatal(err)
	}
	if _, _, err := s1.Login(ctx, tr.keys[tr.a.ID]); !errors.Is(err, ErrInvalidAPIKey) {
		t.Errorf("s1.Login(key revoked on s2) = %v, want ErrInvalidAPIKey", err)
	}
}

func TestAccountIDs(t *testing.T) {
	seen := map[string]bool{}
	for range 100 {
		id := NewAccountID()
		if !event.ValidAccountID(id) || seen[id] {
			t.Fatalf("NewAccountID() = %q (valid %v, repeated %v)", id, event.ValidAccountID(id), seen[id])
		}
		seen[id] = true
	}
}

func TestCloseIsIdempotent(t *testing.T) {
	ctx := t.Context()
	s, err := NewService(ctx, newKV(t, startJetStream(t)), Options{})
	if err != nil {
		t.Fatal(err)
	}
	s.Close()
	s.Close()
}

func TestNewServiceHonoursContext(t *testing.T) {
	ctx := t.Context()
	kv := newKV(t, startJetStream(t))
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if s, err := NewService(cctx, kv, Options{}); err == nil {
		s.Close()
		t.Error("NewService with a cancelled context succeeded")
	}
}

// A token verified once is remembered, but expiry still applies to it.
func TestVerifiedTokenStillExpires(t *testing.T) {
	ctx := t.Context()
	clock := newClock()
	s := newService(t, newKV(t, startJetStream(t)), Options{Now: clock.Now})
	tr := makeTree(t, s)
	token, _, err := s.Login(ctx, tr.keys[tr.a.ID])
	if err != nil {
		t.Fatal(err)
	}
	for range 3 {
		if _, err := s.Verify(token); err != nil {
			t.Fatalf("Verify of a valid token: %v", err)
		}
	}
	clock.Advance(time.Hour + time.Second)
	if _, err := s.Verify(token); !errors.Is(err, ErrTokenExpired) {
		t.Errorf("Verify after expiry = %v, want ErrTokenExpired", err)
	}
}
