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

	"github.com/ccevents/ccevents/internal/event"
	"github.com/golang-jwt/jwt/v5"
	"github.com/nats-io/nats.go/jetstream"
)

const (
	issuer = "ccevents"
	// maxTokenLen bounds the work Verify does on hostile input; our tokens
	// are about 400 bytes.
	maxTokenLen = 4096
	// clockSkew is the margin for clocks of nodes sharing the bucket: when
	// deciding that no token of a retired key can still be valid, and how
	// far in the future a token's issue time may be.
	clockSkew = time.Minute
)

type signingKey struct {
	id  string
	pub ed25519.PublicKey
	// priv is nil when this service cannot sign with the key: it is
	// verify-only, or the key was sealed with another seal key.
	priv       ed25519.PrivateKey
	activeFrom time.Time
	// revision is the bucket revision of the key's entry when it was made:
	// the order in which keys were created, whatever the clocks of the
	// nodes that made them.
	revision uint64
	// sealedWith names the seal key of the record ("" for a record from
	// before seals, which holds the seed in plain text).
	sealedWith string
}

// signingRecord is the stored form of a signing key. The private half is
// sealed (AES-256-GCM, see seal.go): readers of the bucket without the seal
// key learn the public key only.
type signingRecord struct {
	ID         string    `json:"id"`
	Algorithm  string    `json:"alg"`
	PublicKey  []byte    `json:"public_key,omitempty"`
	SealedSeed []byte    `json:"sealed_seed,omitempty"`
	SealKeyID  string    `json:"seal_key_id,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	ActiveFrom time.Time `json:"active_from"`
	// Revision is the entry's revision when the key was created, kept
	// when a record is rewritten (sealed), so creation order survives.
	Revision uint64 `json:"revision,omitempty"`
	// Seed is the Ed25519 seed in plain text, as records were written
	// before they were sealed; a service with a seal key rewrites them.
	Seed []byte `json:"seed,omitempty"`
}

// errUnsealable marks a record whose sealed seed fails to open with the
// seal key it names: altered, or not written by ccevents.
var errUnsealable = errors.New("its sealed seed does not open with this seal key")

// decodeSigningKey reads a stored key. With a sealer it also opens the
// private half when the record was sealed with the same seal key.
func decodeSigningKey(data []byte, revision uint64, sl *sealer) (signingKey, error) {
	var r signingRecord
	if err := json.Unmarshal(data, &r); err != nil {
		return signingKey{}, err
	}
	if r.Algorithm != "EdDSA" || r.ID == "" {
		return signingKey{}, errors.New("not an Ed25519 signing key")
	}
	k := signingKey{id: r.ID, activeFrom: r.ActiveFrom, revision: revision, sealedWith: r.SealKeyID}
	if r.Revision != 0 {
		k.revision = r.Revision
	}
	switch {
	case len(r.Seed) == ed25519.SeedSize && len(r.SealedSeed) == 0:
		priv := ed25519.NewKeyFromSeed(r.Seed)
		k.pub = priv.Public().(ed25519.PublicKey)
		if sl != nil {
			k.priv = priv
		}
		return k, nil
	case len(r.PublicKey) != ed25519.PublicKeySize || len(r.SealedSeed) == 0 || r.SealKeyID == "":
		return signingKey{}, errors.New("neither a sealed nor a plain Ed25519 key")
	}
	k.pub = ed25519.PublicKey(r.PublicKey)
	if sl == nil || r.SealKeyID != sl.id {
		return k, nil
	}
	seed, err := sl.open(r.ID, r.SealedSeed)
	if err != nil || len(seed) != ed25519.SeedSize {
		return signingKey{}, errUnsealable
	}
	priv := ed25519.NewKeyFromSeed(seed)
	if !priv.Public().(ed25519.PublicKey).Equal(k.pub) {
		return signingKey{}, errUnsealable
	}
	k.priv = priv
	return k, nil
}

// sealedRecord is the stored form of a key with seed, sealed by sl.
func sealedRecord(sl *sealer, id string, seed []byte, createdAt, activeFrom time.Time, revision uint64) signingRecord {
	priv := ed25519.NewKeyFromSeed(seed)
	return signingRecord{
		ID: id, Algorithm: "EdDSA", PublicKey: priv.Public().(ed25519.PublicKey),
		SealedSeed: sl.seal(id, seed), SealKeyID: sl.id,
		CreatedAt: createdAt.UTC(), ActiveFrom: activeFrom.UTC(), Revision: revision,
	}
}

// createSigningKey stores a new key that signs from activeFrom on.
func (s *Service) createSigningKey(ctx context.Context, activeFrom time.Time) (signingKey, error) {
	if s.sealer == nil {
		return signingKey{}, errors.New("create signing key: this service verifies tokens only")
	}
	var id [8]byte
	_, _ = rand.Read(id[:])
	seed := make([]byte, ed25519.SeedSize)
	_, _ = rand.Read(seed)
	rec := sealedRecord(s.sealer, hex.EncodeToString(id[:]), seed, s.now(), activeFrom, 0)
	data, err := json.Marshal(rec)
	if err != nil {
		return signingKey{}, fmt.Errorf("encode signing key: %w", err)
	}
	rev, err := s.kv.Create(ctx, signingPrefix+rec.ID, data)
	if err != nil {
		return signingKey{}, fmt.Errorf("store signing key: %w", err)
	}
	k, err := decodeSigningKey(data, rev, s.sealer)
	if err != nil {
		return signingKey{}, err
	}
	s.mu.Lock()
	s.keys[k.id] = k
	s.mu.Unlock()
	return k, nil
}

// sealPlainKeys rewrites keys stored in plain text (by ccevents before
// seals) in sealed form, keeping their creation order. Their seeds were
// readable by every client of the bucket, so it advises a rotation.
func (s *Service) sealPlainKeys(ctx context.Context) error {
	s.mu.RLock()
	var plain []signingKey
	for _, k := range s.keysInOrder() {
		if k.sealedWith == "" && k.priv != nil {
			plain = append(plain, k)
		}
	}
	s.mu.RUnlock()
	for _, k := range plain {
		e, err := s.kv.Get(ctx, signingPrefix+k.id)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // pruned meanwhile
		}
		if err != nil {
			return fmt.Errorf("read signing key %s to seal it: %w", k.id, err)
		}
		var old signingRecord
		if err := json.Unmarshal(e.Value(), &old); err != nil || len(old.Seed) == 0 {
			continue // sealed by another node meanwhile
		}
		rec := sealedRecord(s.sealer, k.id, old.Seed, old.CreatedAt, old.ActiveFrom, k.revision)
		data, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encode signing key %s: %w", k.id, err)
		}
		if _, err := s.kv.Update(ctx, signingPrefix+k.id, data, e.Revision()); err != nil && !errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			return fmt.Errorf("seal signing key %s: %w", k.id, err)
		}
	}
	if len(plain) > 0 {
		s.log.Warn("auth: signing keys were stored unsealed, readable by any client of the auth bucket; sealed them now. Rotate the signing key (POST /v2/signing_keys) so tokens signed with a possibly copied key stop being issued",
			"keys", len(plain), "seal_key_id", s.sealer.id)
	}
	return nil
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
	if k.priv == nil {
		return "", Claims{}, fmt.Errorf("issue token: %w", s.cannotSign(k))
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

// cannotSign explains why this service holds no private half of key k.
func (s *Service) cannotSign(k signingKey) error {
	if s.sealer == nil {
		return errors.New("this service verifies tokens only")
	}
	return fmt.Errorf("%w: the current signing key %s is sealed with seal key %s, this node has %s; give every node that issues tokens the same seal key file",
		ErrSealKey, k.id, k.sealedWith, s.sealer.id)
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
	if tc.Subject != tc.AccountID || !event.ValidAccountID(tc.AccountID) {
		return Claims{}, fmt.Errorf("%w: it names no valid account", ErrTokenInvalid)
	}
	if tc.ID == "" || tc.IssuedAt == nil {
		return Claims{}, fmt.Errorf("%w: it lacks a token id or issue time", ErrTokenInvalid)
	}
	// A token is only as short-lived as its claims say: a leaked signing
	// key must not mint tokens for years, nor tokens dated ahead.
	if life := tc.ExpiresAt.Sub(tc.IssuedAt.Time); life <= 0 || life > s.maxTTL.Round(time.Second) {
		return Claims{}, fmt.Errorf("%w: its lifetime of %s is not between 1s and the %s this service allows", ErrTokenInvalid, life, s.maxTTL)
	}
	if ahead := tc.IssuedAt.Sub(s.now()); ahead > clockSkew {
		return Claims{}, fmt.Errorf("%w: it claims to be issued %s in the future (more than the %s allowed for clock differences); check the clocks", ErrTokenInvalid, ahead.Round(time.Second), clockSkew)
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
