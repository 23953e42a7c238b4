package auth

import (
	"cmp"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/golang-jwt/jwt/v5"
)

const (
	issuer = "ccevents"
	// maxTokenLen bounds the work Verify does on hostile input; our tokens
	// are about 400 bytes.
	maxTokenLen = 4096
	// clockSkew is the margin for clocks of nodes sharing the bucket when
	// deciding that no token of a retired key can still be valid.
	clockSkew = time.Minute
)

type signingKey struct {
	id         string
	priv       ed25519.PrivateKey
	pub        ed25519.PublicKey
	activeFrom time.Time
	// revision is the bucket revision of the key's entry: the order in which
	// keys were created, whatever the clocks of the nodes that made them.
	revision uint64
}

// signingRecord is the stored form of a signing key.
type signingRecord struct {
	ID         string    `json:"id"`
	Algorithm  string    `json:"alg"`
	Seed       []byte    `json:"seed"` // Ed25519 private key seed
	CreatedAt  time.Time `json:"created_at"`
	ActiveFrom time.Time `json:"active_from"`
}

func decodeSigningKey(data []byte, revision uint64) (signingKey, error) {
	var r signingRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return signingKey{}, err
	}
	if r.Algorithm != "EdDSA" || len(r.Seed) != ed25519.SeedSize || r.ID == "" {
		return signingKey{}, errors.New("not an Ed25519 signing key")
	}
	priv := ed25519.NewKeyFromSeed(r.Seed)
	return signingKey{
		id: r.ID, priv: priv, pub: priv.Public().(ed25519.PublicKey),
		activeFrom: r.ActiveFrom, revision: revision,
	}, nil
}

// createSigningKey stores a new key that signs from activeFrom on.
func (s *Service) createSigningKey(ctx context.Context, activeFrom time.Time) (signingKey, error) {
	var id [8]byte
	_, _ = rand.Read(id[:])
	seed := make([]byte, ed25519.SeedSize)
	_, _ = rand.Read(seed)
	now := s.now().UTC()
	rec := signingRecord{
		ID: hex.EncodeToString(id[:]), Algorithm: "EdDSA", Seed: seed,
		CreatedAt: now, ActiveFrom: activeFrom.UTC(),
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return signingKey{}, fmt.Errorf("encode signing key: %w", err)
	}
	rev, err := s.kv.Create(ctx, signingPrefix+rec.ID, data)
	if err != nil {
		return signingKey{}, fmt.Errorf("store signing key: %w", err)
	}
	k, err := decodeSigningKey(data, rev)
	if err != nil {
		return signingKey{}, err
	}
	s.mu.Lock()
	s.keys[k.id] = k
	s.mu.Unlock()
	return k, nil
}

// keysInOrder returns the known keys, oldest first.
// It must be called with s.mu held.
func (s *Service) keysInOrder() []signingKey {
	keys := make([]signingKey, 0, len(s.keys))
	for _, k := range s.keys {
		keys = append(keys, k)
	}
	slices.SortFunc(keys, func(a, b signingKey) int { return cmp.Compare(a.revision, b.revision) })
	return keys
}

// currentKey is the key that signs now: the newest one already active, or
// the oldest one if a clock puts them all in the future.
func (s *Service) currentKey() (signingKey, bool) {
	s.mu.RLock()
	keys := s.keysInOrder()
	s.mu.RUnlock()
	if len(keys) == 0 {
		return signingKey{}, false
	}
	now := s.now()
	for i := len(keys) - 1; i > 0; i-- {
		if !keys[i].activeFrom.After(now) {
			return keys[i], true
		}
	}
	return keys[0], true
}

// RotateSigningKey creates a new signing key, which signs new tokens from
// Options.KeyActivation on. Older keys keep verifying as long as tokens
// they signed can be valid; keys past that are deleted here.
func (s *Service) RotateSigningKey(ctx context.Context) (keyID string, err error) {
	k, err := s.createSigningKey(ctx, s.now().Add(s.activation))
	if err != nil {
		return "", err
	}
	s.pruneSigningKeys(ctx)
	return k.id, nil
}

// pruneSigningKeys deletes keys superseded (by a newer key becoming active)
// longer ago than the longest token lifetime: no token they signed can still
// be valid.
func (s *Service) pruneSigningKeys(ctx context.Context) {
	s.mu.RLock()
	keys := s.keysInOrder()
	s.mu.RUnlock()
	horizon := s.now().Add(-s.maxTTL - clockSkew)
	var supersededAt time.Time // earliest activation among newer keys
	for i := len(keys) - 1; i >= 0; i-- {
		if i < len(keys)-1 && supersededAt.Before(horizon) {
			s.deleteKey(ctx, signingPrefix+keys[i].id)
			s.mu.Lock()
			delete(s.keys, keys[i].id)
			s.mu.Unlock()
		}
		if i == len(keys)-1 || keys[i].activeFrom.Before(supersededAt) {
			supersededAt = keys[i].activeFrom
		}
	}
}

// tokenClaims is the JWT payload.
type tokenClaims struct {
	AccountID string `json:"account_id"`
	jwt.RegisteredClaims
}

func (s *Service) sign(accountID string, ttl time.Duration) (string, Claims, error) {
	k, ok := s.currentKey()
	if !ok {
		return "", Claims{}, errors.New("issue token: no signing key is loaded")
	}
	var jti [16]byte
	_, _ = rand.Read(jti[:])
	// JWT times have whole seconds; truncate so the returned Claims equal
	// what Verify will report.
	iat := time.Unix(s.now().Unix(), 0).UTC()
	c := Claims{
		AccountID: accountID,
		TokenID:   hex.EncodeToString(jti[:]),
		KeyID:     k.id,
		IssuedAt:  iat,
		ExpiresAt: iat.Add(max(ttl.Round(time.Second), time.Second)),
	}
	t := jwt.NewWithClaims(jwt.SigningMethodEdDSA, tokenClaims{
		AccountID: accountID,
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    issuer,
			Subject:   accountID,
			ID:        c.TokenID,
			IssuedAt:  jwt.NewNumericDate(c.IssuedAt),
			ExpiresAt: jwt.NewNumericDate(c.ExpiresAt),
		},
	})
	t.Header["kid"] = k.id
	signed, err := t.SignedString(k.priv)
	if err != nil {
		return "", Claims{}, fmt.Errorf("sign token: %w", err)
	}
	return signed, c, nil
}

// unknownKeyError is returned by the key lookup for a kid we do not hold.
type unknownKeyError struct{ kid string }

func (e unknownKeyError) Error() string { return "unknown signing key " + e.kid }

// Verify checks a token's signature and lifetime without any I/O and returns
// its claims. Errors wrap ErrTokenExpired or ErrTokenInvalid with the reason.
func (s *Service) Verify(token string) (Claims, error) {
	if token == "" {
		return Claims{}, fmt.Errorf("%w: no token was given", ErrTokenInvalid)
	}
	if len(token) > maxTokenLen {
		return Claims{}, fmt.Errorf("%w: longer than %d bytes", ErrTokenInvalid, maxTokenLen)
	}
	if isHex(token, 2*apiKeyBytes) {
		// The usual mix-up: the key itself where a token goes.
		return Claims{}, fmt.Errorf("%w: this is an API key, not an auth token; exchange it for one with PUT /v2/api_auth {\"data\":{\"api_key\":\"…\"}} and send the auth_token from the reply", ErrTokenInvalid)
	}
	if c, ok := s.cachedClaims(token); ok {
		return c, nil
	}
	c, err := s.verify(token)
	if err == nil {
		s.rememberClaims(token, c)
	}
	return c, err
}

// maxVerified bounds the verified-token cache.
const maxVerified = 4096

// cachedClaims returns the claims of a token verified before, while it has
// not expired and its signing key is still held.
func (s *Service) cachedClaims(token string) (Claims, bool) {
	s.vmu.Lock()
	c, ok := s.verified[token]
	s.vmu.Unlock()
	if !ok {
		return Claims{}, false
	}
	if !s.now().Before(c.ExpiresAt) {
		s.vmu.Lock()
		delete(s.verified, token)
		s.vmu.Unlock()
		return Claims{}, false
	}
	s.mu.RLock()
	_, keyHeld := s.keys[c.KeyID]
	s.mu.RUnlock()
	return c, keyHeld
}

func (s *Service) rememberClaims(token string, c Claims) {
	s.vmu.Lock()
	defer s.vmu.Unlock()
	if s.verified == nil {
		s.verified = make(map[string]Claims)
	}
	if len(s.verified) >= maxVerified {
		// Drop expired entries; if none, drop an arbitrary one: a miss
		// only costs one verification.
		now := s.now()
		for k, v := range s.verified {
			if !now.Before(v.ExpiresAt) {
				delete(s.verified, k)
			}
		}
		for k := range s.verified {
			if len(s.verified) < maxVerified {
				break
			}
			delete(s.verified, k)
		}
	}
	s.verified[token] = c
}

// verify checks the signature and claims of a token.
func (s *Service) verify(token string) (Claims, error) {
	var tc tokenClaims
	var kid string
	p := jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithTimeFunc(s.now),
		jwt.WithExpirationRequired(),
		jwt.WithIssuer(issuer),
	)
	t, err := p.ParseWithClaims(token, &tc, func(t *jwt.Token) (any, error) {
		kid, _ = t.Header["kid"].(string)
		s.mu.RLock()
		k, ok := s.keys[kid]
		s.mu.RUnlock()
		if !ok {
			return nil, unknownKeyError{kid}
		}
		return k.pub, nil
	})
	if err != nil {
		return Claims{}, explainTokenError(t, &tc, err)
	}
	if tc.Subject != tc.AccountID || !ValidAccountID(tc.AccountID) {
		return Claims{}, fmt.Errorf("%w: it names no valid account", ErrTokenInvalid)
	}
	if tc.ID == "" || tc.IssuedAt == nil {
		return Claims{}, fmt.Errorf("%w: it lacks a token id or issue time", ErrTokenInvalid)
	}
	return Claims{
		AccountID: tc.AccountID,
		TokenID:   tc.ID,
		KeyID:     kid,
		IssuedAt:  tc.IssuedAt.UTC(),
		ExpiresAt: tc.ExpiresAt.UTC(),
	}, nil
}

// explainTokenError turns a jwt error into one a person can act on, without
// repeating library internals.
func explainTokenError(t *jwt.Token, tc *tokenClaims, err error) error {
	var uk unknownKeyError
	switch {
	case errors.As(err, &uk):
		if uk.kid == "" {
			return fmt.Errorf("%w: its header names no signing key (kid)", ErrTokenInvalid)
		}
		return fmt.Errorf("%w: signed with a key this service does not know (%.16q); it was issued elsewhere or long ago, log in again", ErrTokenInvalid, uk.kid)
	case errors.Is(err, jwt.ErrTokenMalformed):
		return fmt.Errorf("%w: not a well-formed JWT", ErrTokenInvalid)
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		if t != nil && t.Method != nil && t.Method.Alg() != jwt.SigningMethodEdDSA.Alg() {
			return fmt.Errorf("%w: signed with %.16q, only EdDSA is accepted", ErrTokenInvalid, t.Method.Alg())
		}
		return fmt.Errorf("%w: the signature does not match; the token was altered or not issued by ccevents", ErrTokenInvalid)
	case errors.Is(err, jwt.ErrTokenExpired):
		return fmt.Errorf("%w at %s; log in again for a new token", ErrTokenExpired, tc.ExpiresAt.UTC().Format(time.RFC3339))
	case errors.Is(err, jwt.ErrTokenUnverifiable):
		return fmt.Errorf("%w: its signing method is not supported, only EdDSA is accepted", ErrTokenInvalid)
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		return fmt.Errorf("%w: it has no expiry time", ErrTokenInvalid)
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return fmt.Errorf("%w: it was not issued by ccevents", ErrTokenInvalid)
	case errors.Is(err, jwt.ErrTokenNotValidYet), errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return fmt.Errorf("%w: it is not valid yet", ErrTokenInvalid)
	}
	return fmt.Errorf("%w: its claims are unreadable", ErrTokenInvalid)
}
