package auth

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/ccevents/ccevents/internal/event"
	"github.com/nats-io/nats.go/jetstream"
)

// Errors callers tell apart. Verify and the other methods wrap them with a
// reason a person can act on; test with errors.Is.
var (
	ErrNotFound      = errors.New("account not found")
	ErrInvalidAPIKey = errors.New("api key is unknown or has been revoked")
	ErrTokenExpired  = errors.New("auth token has expired")
	ErrTokenInvalid  = errors.New("auth token is not valid")
	ErrInvalidName   = errors.New("invalid account name")
	ErrInvalidTTL    = errors.New("invalid token lifetime")
)

// Defaults for Options.
const (
	DefaultTokenTTL    = time.Hour
	DefaultMaxTokenTTL = 24 * time.Hour
	// DefaultBucket is the bucket name BucketConfig uses.
	DefaultBucket = "ccevents_auth"
)

const (
	maxNameLen   = 128
	casAttempts  = 8
	apiKeyBytes  = 32
	accountBytes = 16
)

// Account is one tenant. Accounts form a tree: a token of an account may see
// the account itself and all its descendants.
type Account struct {
	ID        string
	Name      string
	ParentID  string    // "" for the root
	Ancestors []string  // root first, excluding the account itself
	CreatedAt time.Time // UTC
}

// Claims is what a verified token says.
type Claims struct {
	AccountID string
	TokenID   string // the JWT id (jti), unique per token
	KeyID     string // the signing key (kid)
	IssuedAt  time.Time
	ExpiresAt time.Time
}

// Options tune a Service. The zero value is usable.
type Options struct {
	// TokenTTL is the lifetime of tokens from Login and of IssueToken with
	// ttl <= 0. Default DefaultTokenTTL.
	TokenTTL time.Duration
	// MaxTokenTTL bounds the lifetime IssueToken accepts; a retired signing
	// key is deleted once every token it can have signed is past this age.
	// Default DefaultMaxTokenTTL.
	MaxTokenTTL time.Duration
	// KeyActivation is how long a key made by RotateSigningKey is published
	// before it starts signing. When several nodes share the bucket, set it
	// to a few seconds so every node learns the key (through its watch)
	// before meeting tokens signed with it. Default 0: the new key signs at once.
	KeyActivation time.Duration
	// SealKey (SealKeySize bytes) encrypts the private half of signing keys
	// in the bucket, so that clients of the bus that can read the bucket
	// learn public keys only. Every service that issues tokens on one
	// bucket needs the same key; a service meeting keys sealed with another
	// fails to start (ErrSealKey). Nil uses a random key of this Service
	// alone, for tests on a bucket of their own: it signs with a key of its
	// own making (which then becomes the newest), and keys sealed elsewhere
	// only verify.
	SealKey []byte
	// VerifyOnly makes a service that only checks tokens (a gateway): it
	// needs no SealKey, creates no signing key and issues no tokens.
	VerifyOnly bool
	// Logger receives storage problems found while watching. Default slog.Default().
	Logger *slog.Logger
	// Now is the clock, for tests. Default time.Now.
	Now func() time.Time
}

// BucketConfig returns the key-value bucket configuration auth expects;
// callers choose storage and replicas for their deployment.
func BucketConfig() jetstream.KeyValueConfig {
	return jetstream.KeyValueConfig{
		Bucket:      DefaultBucket,
		Description: "ccevents accounts, API key hashes and token signing keys",
		History:     1,
	}
}

// Service manages accounts, API keys and tokens. It is safe for concurrent use.
type Service struct {
	kv         jetstream.KeyValue
	log        *slog.Logger
	now        func() time.Time
	ttl        time.Duration
	maxTTL     time.Duration
	activation time.Duration
	sealer     *sealer // nil for a verify-only service

	mu       sync.RWMutex
	accounts map[string]Account             // cache of accounts.<id>
	children map[string]map[string]struct{} // parent id -> child ids
	keys     map[string]signingKey          // kid -> key

	// verified remembers tokens whose signature already checked out, so a
	// token presented again (every reconnect, every connection of one
	// desktop) costs a map lookup instead of an Ed25519 verification.
	vmu      sync.Mutex
	verified map[string]Claims

	watcher   jetstream.KeyWatcher
	stopWatch context.CancelFunc // ends the watch's context (see NewService)
	done      chan struct{}
	closeOnce sync.Once
}

// accountRecord is the stored form of an account.
type accountRecord struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	ParentID   string    `json:"parent_id,omitempty"`
	Ancestors  []string  `json:"ancestors,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	APIKeyHash string    `json:"api_key_hash,omitempty"`
}

func (r accountRecord) account() Account {
	return Account{ID: r.ID, Name: r.Name, ParentID: r.ParentID, Ancestors: r.Ancestors, CreatedAt: r.CreatedAt}
}

// apiKeyRecord is the stored form of an API key lookup entry.
type apiKeyRecord struct {
	AccountID string    `json:"account_id"`
	CreatedAt time.Time `json:"created_at"`
}

const (
	rootKey       = "root"
	accountPrefix = "accounts."
	apiKeyPrefix  = "apikeys."
	signingPrefix = "signing."
)

func accountKey(id string) string  { return accountPrefix + id }
func apiKeyKey(hash string) string { return apiKeyPrefix + hash }

// NewService loads accounts and signing keys from kv, keeps them fresh with a
// watch until Close, and creates a signing key when the bucket has none.
func NewService(ctx context.Context, kv jetstream.KeyValue, opts Options) (*Service, error) {
	s := &Service{
		kv:         kv,
		log:        opts.Logger,
		now:        opts.Now,
		ttl:        opts.TokenTTL,
		maxTTL:     opts.MaxTokenTTL,
		activation: max(opts.KeyActivation, 0),
		accounts:   make(map[string]Account),
		children:   make(map[string]map[string]struct{}),
		keys:       make(map[string]signingKey),
		done:       make(chan struct{}),
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.now == nil {
		s.now = time.Now
	}
	if s.ttl <= 0 {
		s.ttl = DefaultTokenTTL
	}
	if s.maxTTL <= 0 {
		s.maxTTL = DefaultMaxTokenTTL
	}
	if s.ttl > s.maxTTL {
		return nil, fmt.Errorf("%w: token lifetime %s exceeds the maximum %s", ErrInvalidTTL, s.ttl, s.maxTTL)
	}
	if !opts.VerifyOnly {
		key := opts.SealKey
		if key == nil {
			key = NewSealKey()
		}
		sl, err := newSealer(key)
		if err != nil {
			return nil, err
		}
		s.sealer = sl
	}

	// The watch lives until Close, not as long as ctx: nats.go ends a
	// watch when the context it was created with is done, and ctx bounds
	// only this start (a node started with a start-up deadline stopped
	// learning new accounts and signing keys once it passed).
	wctx, stopWatch := context.WithCancel(context.WithoutCancel(ctx))
	w, err := kv.WatchFiltered(wctx, []string{accountPrefix + "*", signingPrefix + "*"})
	if err != nil {
		stopWatch()
		return nil, fmt.Errorf("watch auth bucket: %w", err)
	}
	s.stopWatch = stopWatch
	s.watcher = w
	if err := s.loadInitial(ctx); err != nil {
		stopWatch()
		_ = w.Stop()
		go func() { // keep the watcher's delivery from blocking until it closes
			for range w.Updates() {
			}
		}()
		return nil, err
	}
	go s.watch()
	if s.sealer != nil {
		if err := s.readyToSign(ctx, opts.SealKey != nil); err != nil {
			s.Close()
			return nil, err
		}
	}
	return s, nil
}

// readyToSign makes sure a service that issues tokens can: it creates the
// first signing key, seals keys stored in plain text, and refuses keys it
// cannot open; with a seal key of its own (not durable) it neither rewrites
// keys nobody could open after it, nor refuses: it makes a key it can use.
func (s *Service) readyToSign(ctx context.Context, durableSeal bool) error {
	s.mu.RLock()
	haveKey := len(s.keys) > 0
	s.mu.RUnlock()
	if !haveKey {
		_, err := s.createSigningKey(ctx, s.now())
		return err
	}
	if durableSeal {
		if err := s.sealPlainKeys(ctx); err != nil {
			return err
		}
	}
	if k, ok := s.currentKey(); ok && k.priv == nil {
		if durableSeal {
			return s.cannotSign(k)
		}
		_, err := s.createSigningKey(ctx, s.now())
		return err
	}
	return nil
}

// loadInitial applies the bucket's current entries; the watcher marks their
// end with a nil entry.
func (s *Service) loadInitial(ctx context.Context) error {
	for {
		select {
		case e, ok := <-s.watcher.Updates():
			if !ok {
				return errors.New("load auth bucket: watch closed before the initial values arrived")
			}
			if e == nil {
				return nil
			}
			s.apply(e)
		case <-ctx.Done():
			return fmt.Errorf("load auth bucket: %w", ctx.Err())
		}
	}
}

// watch applies changes made by any node until the watcher is stopped.
func (s *Service) watch() {
	defer close(s.done)
	for e := range s.watcher.Updates() {
		if e != nil {
			s.apply(e)
		}
	}
}

func (s *Service) apply(e jetstream.KeyValueEntry) {
	key := e.Key()
	deleted := e.Operation() != jetstream.KeyValuePut
	switch {
	case strings.HasPrefix(key, accountPrefix):
		id := key[len(accountPrefix):]
		if deleted {
			s.dropAccount(id)
			return
		}
		var rec accountRecord
		if err := json.Unmarshal(e.Value(), &rec); err != nil || rec.ID != id || !event.ValidAccountID(id) {
			s.log.Warn("auth: ignoring unreadable account record", "key", key, "revision", e.Revision())
			return
		}
		s.putAccount(rec.account())
	case strings.HasPrefix(key, signingPrefix):
		kid := key[len(signingPrefix):]
		if deleted {
			s.mu.Lock()
			delete(s.keys, kid)
			s.mu.Unlock()
			return
		}
		k, err := decodeSigningKey(e.Value(), e.Revision(), s.sealer)
		if err == nil && k.id != kid {
			err = errors.New("its id differs from its key")
		}
		if err != nil {
			s.log.Warn("auth: ignoring unreadable signing key", "key", key, "revision", e.Revision(), "err", err)
			return
		}
		s.mu.Lock()
		s.keys[kid] = k
		s.mu.Unlock()
	}
}

func (s *Service) putAccount(a Account) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.accounts[a.ID]; ok && old.ParentID != a.ParentID {
		s.unlinkChild(old)
	}
	s.accounts[a.ID] = a
	if a.ParentID != "" {
		kids := s.children[a.ParentID]
		if kids == nil {
			kids = make(map[string]struct{})
			s.children[a.ParentID] = kids
		}
		kids[a.ID] = struct{}{}
	}
}

func (s *Service) dropAccount(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.accounts[id]; ok {
		s.unlinkChild(old)
		delete(s.accounts, id)
	}
}

// unlinkChild must be called with s.mu held.
func (s *Service) unlinkChild(a Account) {
	if kids := s.children[a.ParentID]; kids != nil {
		delete(kids, a.ID)
		if len(kids) == 0 {
			delete(s.children, a.ParentID)
		}
	}
}

// Close stops the watch. The Service must not be used afterwards.
func (s *Service) Close() {
	s.closeOnce.Do(func() {
		if err := s.watcher.Stop(); err != nil {
			s.log.Debug("auth: stop watch", "err", err)
		}
		s.stopWatch()
		<-s.done
	})
}

// NewAccountID returns a fresh random account id: 32 lowercase hex characters.
func NewAccountID() string {
	var b [accountBytes]byte
	_, _ = rand.Read(b[:]) // crypto/rand.Read never fails
	return hex.EncodeToString(b[:])
}

func isHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

func checkName(name string) (string, error) {
	name = strings.TrimSpace(name)
	ok := name != "" && len(name) <= maxNameLen && utf8.ValidString(name) &&
		!strings.ContainsFunc(name, unicode.IsControl)
	if !ok {
		return "", fmt.Errorf("%w: a name must be 1 to %d bytes of text without control characters", ErrInvalidName, maxNameLen)
	}
	return name, nil
}

// newAPIKey returns a random API key (64 hex characters) and its hash.
func newAPIKey() (key, hash string) {
	var b [apiKeyBytes]byte
	_, _ = rand.Read(b[:])
	key = hex.EncodeToString(b[:])
	return key, hashAPIKey(key)
}

func hashAPIKey(key string) string {
	sum := sha256.Sum256([]byte(key))
	return hex.EncodeToString(sum[:])
}

// EnsureRoot returns the root account, creating it with name if the bucket
// has none. The API key is returned only when the account was created here;
// if several nodes race, exactly one creates it and the others get
// created == false. An existing root keeps its name.
func (s *Service) EnsureRoot(ctx context.Context, name string) (acct Account, apiKey string, created bool, err error) {
	name, err = checkName(name)
	if err != nil {
		return Account{}, "", false, err
	}
	id := NewAccountID()
	if _, err := s.kv.Create(ctx, rootKey, []byte(id)); err != nil {
		if !errors.Is(err, jetstream.ErrKeyExists) {
			return Account{}, "", false, fmt.Errorf("claim root account: %w", err)
		}
		e, err := s.kv.Get(ctx, rootKey)
		if err != nil {
			return Account{}, "", false, fmt.Errorf("read root account id: %w", err)
		}
		id = string(e.Value())
		if !event.ValidAccountID(id) {
			return Account{}, "", false, fmt.Errorf("root account id in the auth bucket is malformed: %q", id)
		}
		acct, err := s.Account(ctx, id)
		if err == nil {
			return acct, "", false, nil
		}
		if !errors.Is(err, ErrNotFound) {
			return Account{}, "", false, err
		}
		// The root was claimed but its record never written (the claiming
		// node stopped in between): finish the job under the claimed id.
	}
	acct = Account{ID: id, Name: name, CreatedAt: s.now().UTC()}
	apiKey, err = s.storeNewAccount(ctx, acct)
	if errors.Is(err, jetstream.ErrKeyExists) { // another node finished it first
		acct, err = s.Account(ctx, id)
		return acct, "", false, err
	}
	if err != nil {
		return Account{}, "", false, err
	}
	return cloneAccount(acct), apiKey, true, nil
}

// CreateAccount creates a child of parentID and returns it with its API key,
// which is shown only this once.
func (s *Service) CreateAccount(ctx context.Context, parentID, name string) (Account, string, error) {
	name, err := checkName(name)
	if err != nil {
		return Account{}, "", err
	}
	parent, err := s.Account(ctx, parentID)
	if err != nil {
		return Account{}, "", fmt.Errorf("parent account %s: %w", parentID, err)
	}
	acct := Account{
		ID:        NewAccountID(),
		Name:      name,
		ParentID:  parent.ID,
		Ancestors: append(slices.Clip(parent.Ancestors), parent.ID),
		CreatedAt: s.now().UTC(),
	}
	key, err := s.storeNewAccount(ctx, acct)
	if err != nil {
		return Account{}, "", err
	}
	return cloneAccount(acct), key, nil
}

// storeNewAccount writes the API key lookup entry, then the account record
// naming that key, and caches the account. It returns the API key.
func (s *Service) storeNewAccount(ctx context.Context, acct Account) (string, error) {
	key, hash := newAPIKey()
	if err := s.putAPIKey(ctx, hash, acct.ID); err != nil {
		return "", err
	}
	rec := accountRecord{
		ID: acct.ID, Name: acct.Name, ParentID: acct.ParentID, Ancestors: acct.Ancestors,
		CreatedAt: acct.CreatedAt, APIKeyHash: hash,
	}
	data, err := json.Marshal(rec)
	if err != nil {
		return "", fmt.Errorf("encode account %s: %w", acct.ID, err)
	}
	if _, err := s.kv.Create(ctx, accountKey(acct.ID), data); err != nil {
		s.deleteKey(ctx, apiKeyKey(hash))
		return "", fmt.Errorf("store account %s: %w", acct.ID, err)
	}
	s.putAccount(acct)
	return key, nil
}

func (s *Service) putAPIKey(ctx context.Context, hash, accountID string) error {
	data, err := json.Marshal(apiKeyRecord{AccountID: accountID, CreatedAt: s.now().UTC()})
	if err != nil {
		return fmt.Errorf("encode api key of %s: %w", accountID, err)
	}
	if _, err := s.kv.Create(ctx, apiKeyKey(hash), data); err != nil {
		return fmt.Errorf("store api key of %s: %w", accountID, err)
	}
	return nil
}

// deleteKey removes a key whose survival does no harm (a lookup entry no
// account record names any more); failures are only logged.
func (s *Service) deleteKey(ctx context.Context, key string) {
	if err := s.kv.Delete(ctx, key); err != nil {
		s.log.Warn("auth: could not delete stale entry", "key", key, "err", err)
	}
}

func cloneAccount(a Account) Account {
	a.Ancestors = slices.Clone(a.Ancestors)
	return a
}

// Account returns the account with this id, from memory or, for an account
// another node created moments ago, from the bucket. It returns ErrNotFound
// for unknown or malformed ids.
func (s *Service) Account(ctx context.Context, id string) (Account, error) {
	a, err := s.account(ctx, id)
	return cloneAccount(a), err
}

// account is Account without the defensive copy.
func (s *Service) account(ctx context.Context, id string) (Account, error) {
	if !event.ValidAccountID(id) {
		return Account{}, ErrNotFound
	}
	s.mu.RLock()
	a, ok := s.accounts[id]
	s.mu.RUnlock()
	if ok {
		return a, nil
	}
	rec, _, err := s.loadAccountRecord(ctx, id)
	if err != nil {
		return Account{}, err
	}
	a = rec.account()
	s.putAccount(a)
	return a, nil
}

func (s *Service) loadAccountRecord(ctx context.Context, id string) (accountRecord, uint64, error) {
	e, err := s.kv.Get(ctx, accountKey(id))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return accountRecord{}, 0, ErrNotFound
	}
	if err != nil {
		return accountRecord{}, 0, fmt.Errorf("read account %s: %w", id, err)
	}
	var rec accountRecord
	if err := json.Unmarshal(e.Value(), &rec); err != nil || rec.ID != id {
		return accountRecord{}, 0, fmt.Errorf("account record %s in the auth bucket is unreadable", id)
	}
	return rec, e.Revision(), nil
}

// Children returns the direct children of an account, oldest first, from
// memory: an account another node just created appears once the watch has
// delivered it, normally within milliseconds.
func (s *Service) Children(ctx context.Context, id string) ([]Account, error) {
	if _, err := s.account(ctx, id); err != nil {
		return nil, err
	}
	s.mu.RLock()
	out := make([]Account, 0, len(s.children[id]))
	for kid := range s.children[id] {
		out = append(out, cloneAccount(s.accounts[kid]))
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b Account) int {
		if c := a.CreatedAt.Compare(b.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(a.ID, b.ID)
	})
	return out, nil
}

// MayAccess reports whether a token of tokenAccount may see target: target
// is tokenAccount itself or one of its descendants. Unknown accounts are
// never accessible (false, nil); err reports only storage failures.
func (s *Service) MayAccess(ctx context.Context, tokenAccount, target string) (bool, error) {
	if !event.ValidAccountID(tokenAccount) || !event.ValidAccountID(target) {
		return false, nil
	}
	if tokenAccount == target {
		return true, nil
	}
	a, err := s.account(ctx, target)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return slices.Contains(a.Ancestors, tokenAccount), nil
}

// Login exchanges an API key for a token of its account.
func (s *Service) Login(ctx context.Context, apiKey string) (string, Claims, error) {
	if !isHex(apiKey, 2*apiKeyBytes) {
		return "", Claims{}, ErrInvalidAPIKey
	}
	hash := hashAPIKey(apiKey)
	e, err := s.kv.Get(ctx, apiKeyKey(hash))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return "", Claims{}, ErrInvalidAPIKey
	}
	if err != nil {
		return "", Claims{}, fmt.Errorf("look up api key: %w", err)
	}
	var kr apiKeyRecord
	if err := json.Unmarshal(e.Value(), &kr); err != nil || !event.ValidAccountID(kr.AccountID) {
		s.log.Warn("auth: unreadable api key entry", "key", e.Key())
		return "", Claims{}, ErrInvalidAPIKey
	}
	// The account record is the authority: a key it no longer names was
	// revoked or rotated, even if its lookup entry survived.
	rec, _, err := s.loadAccountRecord(ctx, kr.AccountID)
	if errors.Is(err, ErrNotFound) {
		return "", Claims{}, ErrInvalidAPIKey
	}
	if err != nil {
		return "", Claims{}, err
	}
	if rec.APIKeyHash != hash {
		return "", Claims{}, ErrInvalidAPIKey
	}
	s.putAccount(rec.account())
	return s.sign(rec.ID, s.ttl)
}

// IssueToken issues a token for an existing account without an API key, for
// operators and tools that are already trusted. ttl <= 0 means
// Options.TokenTTL; a ttl above Options.MaxTokenTTL is refused.
func (s *Service) IssueToken(ctx context.Context, accountID string, ttl time.Duration) (string, Claims, error) {
	if ttl <= 0 {
		ttl = s.ttl
	}
	if ttl > s.maxTTL {
		return "", Claims{}, fmt.Errorf("%w: %s is longer than the maximum of %s", ErrInvalidTTL, ttl, s.maxTTL)
	}
	if _, err := s.account(ctx, accountID); err != nil {
		return "", Claims{}, fmt.Errorf("issue token for %s: %w", accountID, err)
	}
	return s.sign(accountID, ttl)
}

// RevokeAPIKey makes the account's API key stop logging in. Tokens already
// issued stay valid until they expire.
func (s *Service) RevokeAPIKey(ctx context.Context, accountID string) error {
	return s.replaceAPIKey(ctx, accountID, "")
}

// RotateAPIKey gives the account a new API key and revokes the old one.
func (s *Service) RotateAPIKey(ctx context.Context, accountID string) (string, error) {
	if _, err := s.account(ctx, accountID); err != nil {
		return "", fmt.Errorf("rotate api key of %s: %w", accountID, err)
	}
	key, hash := newAPIKey()
	if err := s.putAPIKey(ctx, hash, accountID); err != nil {
		return "", err
	}
	if err := s.replaceAPIKey(ctx, accountID, hash); err != nil {
		s.deleteKey(ctx, apiKeyKey(hash))
		return "", err
	}
	return key, nil
}

// replaceAPIKey points the account record at newHash ("" for none) with a
// compare-and-set, then removes the old lookup entry.
func (s *Service) replaceAPIKey(ctx context.Context, accountID, newHash string) error {
	if !event.ValidAccountID(accountID) {
		return ErrNotFound
	}
	for range casAttempts {
		rec, rev, err := s.loadAccountRecord(ctx, accountID)
		if err != nil {
			return err
		}
		old := rec.APIKeyHash
		rec.APIKeyHash = newHash
		data, err := json.Marshal(rec)
		if err != nil {
			return fmt.Errorf("encode account %s: %w", accountID, err)
		}
		_, err = s.kv.Update(ctx, accountKey(accountID), data, rev)
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) {
			continue // changed by someone else meanwhile: read again
		}
		if err != nil {
			return fmt.Errorf("update api key of %s: %w", accountID, err)
		}
		if old != "" && old != newHash {
			s.deleteKey(ctx, apiKeyKey(old))
		}
		return nil
	}
	return fmt.Errorf("update api key of %s: the account kept changing concurrently, try again", accountID)
}
