// Package sipstore keeps the telephony configuration of every account: the
// SIP credentials of recipients (phones that register and are offered
// calls) and the numbers that lead to queues. It lives in the JetStream
// key-value bucket Bucket, so every process sees the same configuration,
// and each Store keeps a live copy in memory (a watch on the bucket) so
// the SIP front end answers REGISTER and INVITE without a round trip.
//
// Passwords are never stored: a credential keeps the digest hashes (HA1,
// MD5 and SHA-256, RFC 2617 and RFC 8760) for its realm, which is all a
// registrar needs. sipstore never talks SIP and never reaches into the
// engine.
package sipstore

import (
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/ccevents/ccevents/internal/shorten"
	"github.com/nats-io/nats.go/jetstream"
)

// Bucket is the key-value bucket the telephony configuration lives in.
const Bucket = "ccevents_sip"

// DefaultRealm is the digest realm new credentials get when the caller
// names none.
const DefaultRealm = "ccevents"

// Limits.
const (
	// MaxCredentialsPerAccount bounds the SIP credentials of one account.
	MaxCredentialsPerAccount = 10000
	// MaxNumbersPerAccount bounds the numbers of one account.
	MaxNumbersPerAccount = 1000
	// MinPasswordLen is the shortest password a credential accepts.
	MinPasswordLen = 12
)

// What a number does when the engine cannot queue the caller, or when no
// recipient serving the queue is logged in.
const (
	// Busy answers 486 Busy Here: the caller's network plays its own tone.
	Busy = "busy"
	// Announce answers, plays the matching announcement and hangs up.
	Announce = "announce"
	// Queue (only for when_no_agents) queues the caller anyway.
	Queue = "queue"
)

// Credential is one recipient's SIP account. HA1 values are secrets as
// good as the password for this realm; they never leave the process
// through the API.
type Credential struct {
	AccountID   string    `json:"account_id"`
	RecipientID string    `json:"recipient_id"`
	User        string    `json:"user"`
	Realm       string    `json:"realm"`
	HA1MD5      string    `json:"ha1_md5"`
	HA1SHA256   string    `json:"ha1_sha256"`
	Wiretap     bool      `json:"wiretap"`
	CreatedAt   time.Time `json:"created_at"`
}

// Number routes calls dialled to it into a queue of an account.
type Number struct {
	Number       string `json:"number"`
	AccountID    string `json:"account_id"`
	QueueID      string `json:"queue_id"`
	WhenFull     string `json:"when_full"`
	WhenNoAgents string `json:"when_no_agents"`
	// PositionAnnounceS is how often a waiting caller hears their place
	// in line; 0 never.
	PositionAnnounceS int `json:"position_announce_s"`
}

// Errors. A caller maps them to 400, 404 and 409.
var (
	ErrInvalid  = errors.New("invalid")
	ErrNotFound = errors.New("not found")
	ErrConflict = errors.New("conflict")
)

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// Store reads and writes the telephony configuration. Reads come from the
// live copy; a write returns once the copy shows it.
type Store struct {
	kv  jetstream.KeyValue
	log *slog.Logger

	mu      sync.RWMutex
	users   map[string]Credential // by user
	numbers map[string]Number     // by number
	rev     uint64                // last revision applied
	changed chan struct{}         // closed and replaced on every change
	cancel  context.CancelFunc
	done    chan struct{}
}

// Open starts following the bucket and returns once the copy holds what
// the bucket held.
func Open(ctx context.Context, kv jetstream.KeyValue, log *slog.Logger) (*Store, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	wctx, cancel := context.WithCancel(context.Background())
	w, err := kv.WatchAll(wctx)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("watch the %s bucket: %w", Bucket, err)
	}
	s := &Store{kv: kv, log: log, users: map[string]Credential{}, numbers: map[string]Number{}, changed: make(chan struct{}), cancel: cancel, done: make(chan struct{})}
	ready := make(chan struct{})
	go s.follow(w, ready)
	select {
	case <-ready:
		return s, nil
	case <-ctx.Done():
		s.Close()
		return nil, fmt.Errorf("read the %s bucket: %w", Bucket, ctx.Err())
	}
}

// Close stops following the bucket.
func (s *Store) Close() {
	s.cancel()
	<-s.done
}

func (s *Store) follow(w jetstream.KeyWatcher, ready chan struct{}) {
	defer close(s.done)
	defer func() { _ = w.Stop() }()
	initial := true
	for e := range w.Updates() {
		if e == nil { // the initial values have all arrived
			if initial {
				initial = false
				close(ready)
			}
			continue
		}
		s.apply(e)
	}
}

func (s *Store) apply(e jetstream.KeyValueEntry) {
	s.mu.Lock()
	defer s.mu.Unlock()
	kind, id, _ := strings.Cut(e.Key(), ".")
	del := e.Operation() != jetstream.KeyValuePut
	switch kind {
	case "user":
		if del {
			delete(s.users, id)
		} else {
			var c Credential
			if err := json.Unmarshal(e.Value(), &c); err != nil {
				s.log.Warn("skip an unreadable SIP credential", "key", e.Key(), "err", err)
			} else {
				s.users[id] = c
			}
		}
	case "number":
		if del {
			delete(s.numbers, decodeNumber(id))
		} else {
			var n Number
			if err := json.Unmarshal(e.Value(), &n); err != nil {
				s.log.Warn("skip an unreadable SIP number", "key", e.Key(), "err", err)
			} else {
				s.numbers[n.Number] = n
			}
		}
	}
	s.rev = max(s.rev, e.Revision())
	close(s.changed)
	s.changed = make(chan struct{})
}

// caughtUp waits until the copy has applied revision rev.
func (s *Store) caughtUp(ctx context.Context, rev uint64) error {
	for {
		s.mu.RLock()
		cur, ch := s.rev, s.changed
		s.mu.RUnlock()
		if cur >= rev {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// User returns the credential of a SIP user name.
func (s *Store) User(user string) (Credential, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	c, ok := s.users[user]
	return c, ok
}

// CredentialOf returns the credential of a recipient.
func (s *Store) CredentialOf(accountID, recipientID string) (Credential, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	for _, c := range s.users {
		if c.AccountID == accountID && c.RecipientID == recipientID {
			return c, true
		}
	}
	return Credential{}, false
}

// Credentials lists an account's credentials by recipient id.
func (s *Store) Credentials(accountID string) []Credential {
	return ofAccount(s, s.users, accountID, func(c Credential) (string, string) { return c.AccountID, c.RecipientID })
}

// ofAccount lists the entries of m in an account, sorted by key; idOf
// gives an entry's account and key.
func ofAccount[T any](s *Store, m map[string]T, accountID string, idOf func(T) (account, key string)) []T {
	s.mu.RLock()
	var out []T
	for _, v := range m {
		if acc, _ := idOf(v); acc == accountID {
			out = append(out, v)
		}
	}
	s.mu.RUnlock()
	slices.SortFunc(out, func(a, b T) int {
		_, ka := idOf(a)
		_, kb := idOf(b)
		return strings.Compare(ka, kb)
	})
	return out
}

// Number returns what a dialled number routes to.
func (s *Store) Number(number string) (Number, bool) {
	s.mu.RLock()
	defer s.mu.RUnlock()
	n, ok := s.numbers[number]
	return n, ok
}

// Numbers lists an account's numbers, sorted.
func (s *Store) Numbers(accountID string) []Number {
	return ofAccount(s, s.numbers, accountID, func(n Number) (string, string) { return n.AccountID, n.Number })
}

// NewCredential is what a caller asks for: User and Password may be empty
// (a user name is derived from the recipient, a password made up).
type NewCredential struct {
	User     string `json:"user,omitempty"`
	Password string `json:"password,omitempty"`
	Realm    string `json:"realm,omitempty"`
	Wiretap  bool   `json:"wiretap,omitempty"`
}

// SetCredential gives a recipient SIP credentials, replacing any it had
// (its old user name stops working). It returns the credential and the
// password in plain, which is shown this once.
func (s *Store) SetCredential(ctx context.Context, accountID, recipientID string, n NewCredential) (Credential, string, error) {
	if n.User == "" {
		n.User = recipientID + "-" + accountID[:6]
	}
	if !ValidUser(n.User) {
		return Credential{}, "", invalid("user must be 1-64 characters of A-Z a-z 0-9 _ - . , got %q", short(n.User))
	}
	if n.Realm == "" {
		n.Realm = DefaultRealm
	}
	if !ValidUser(n.Realm) {
		return Credential{}, "", invalid("realm must be 1-64 characters of A-Z a-z 0-9 _ - . , got %q", short(n.Realm))
	}
	switch {
	case n.Password == "":
		n.Password = generatePassword()
	case len(n.Password) < MinPasswordLen || len(n.Password) > 128:
		return Credential{}, "", invalid("password must be %d to 128 characters (leave it out to have one made up)", MinPasswordLen)
	}
	if other, ok := s.User(n.User); ok && (other.AccountID != accountID || other.RecipientID != recipientID) {
		return Credential{}, "", fmt.Errorf("%w: SIP user %q is taken; choose another", ErrConflict, n.User)
	}
	old, hadOld := s.CredentialOf(accountID, recipientID)
	if !hadOld && len(s.Credentials(accountID)) >= MaxCredentialsPerAccount {
		return Credential{}, "", fmt.Errorf("%w: account %s has the maximum of %d SIP credentials", ErrConflict, accountID, MaxCredentialsPerAccount)
	}
	c := Credential{
		AccountID: accountID, RecipientID: recipientID, User: n.User, Realm: n.Realm, Wiretap: n.Wiretap,
		HA1MD5: HA1(md5.New, n.User, n.Realm, n.Password), HA1SHA256: HA1(sha256.New, n.User, n.Realm, n.Password),
		CreatedAt: time.Now().UTC().Truncate(time.Second),
	}
	data, _ := json.Marshal(c) // plain struct: cannot fail
	var rev uint64
	var err error
	if hadOld && old.User == n.User {
		rev, err = s.kv.Put(ctx, "user."+n.User, data)
	} else {
		// Create refuses a user name another writer took meanwhile.
		rev, err = s.kv.Create(ctx, "user."+n.User, data)
		if errors.Is(err, jetstream.ErrKeyExists) {
			return Credential{}, "", fmt.Errorf("%w: SIP user %q is taken; choose another", ErrConflict, n.User)
		}
	}
	if err != nil {
		return Credential{}, "", fmt.Errorf("store SIP credential of %s: %w", recipientID, err)
	}
	if hadOld && old.User != n.User {
		if err := s.kv.Delete(ctx, "user."+old.User); err != nil {
			return Credential{}, "", fmt.Errorf("remove the old SIP user %s: %w", old.User, err)
		}
		// The removal comes after rev: wait for it too, or the old name
		// still registers (and CredentialOf may find it) after the return.
		if err := s.waitGone(ctx, s.holds(old.User, accountID, recipientID)); err != nil {
			return Credential{}, "", err
		}
	}
	return c, n.Password, s.caughtUp(ctx, rev)
}

// holds reports, when called, whether the copy still gives user to the
// recipient.
func (s *Store) holds(user, accountID, recipientID string) func() bool {
	return func() bool {
		c, ok := s.User(user)
		return ok && c.AccountID == accountID && c.RecipientID == recipientID
	}
}

// DeleteCredential removes a recipient's SIP credentials.
func (s *Store) DeleteCredential(ctx context.Context, accountID, recipientID string) error {
	c, ok := s.CredentialOf(accountID, recipientID)
	if !ok {
		return fmt.Errorf("%w: recipient %s has no SIP credentials", ErrNotFound, recipientID)
	}
	if err := s.kv.Delete(ctx, "user."+c.User); err != nil {
		return fmt.Errorf("remove SIP credential of %s: %w", recipientID, err)
	}
	return s.waitGone(ctx, s.holds(c.User, accountID, recipientID))
}

// SetNumber routes a number to a queue of the account. A number belongs
// to one account; another account's number is refused.
func (s *Store) SetNumber(ctx context.Context, n Number) (Number, error) {
	if !ValidNumber(n.Number) {
		return Number{}, invalid("number must be 1-32 digits, optionally after a +, got %q", short(n.Number))
	}
	if n.QueueID == "" {
		return Number{}, invalid("queue_id is required: the queue calls to this number join")
	}
	if n.WhenFull == "" {
		n.WhenFull = Busy
	}
	if n.WhenFull != Busy && n.WhenFull != Announce {
		return Number{}, invalid("when_full must be busy or announce, got %q", short(n.WhenFull))
	}
	if n.WhenNoAgents == "" {
		n.WhenNoAgents = Queue
	}
	if n.WhenNoAgents != Busy && n.WhenNoAgents != Announce && n.WhenNoAgents != Queue {
		return Number{}, invalid("when_no_agents must be queue, busy or announce, got %q", short(n.WhenNoAgents))
	}
	if n.PositionAnnounceS < 0 || (n.PositionAnnounceS > 0 && n.PositionAnnounceS < 10) || n.PositionAnnounceS > 3600 {
		return Number{}, invalid("position_announce_s must be 0 (never) or 10 to 3600, got %d", n.PositionAnnounceS)
	}
	old, had := s.Number(n.Number)
	if had && old.AccountID != n.AccountID {
		return Number{}, fmt.Errorf("%w: number %s belongs to another account", ErrConflict, n.Number)
	}
	if !had && len(s.Numbers(n.AccountID)) >= MaxNumbersPerAccount {
		return Number{}, fmt.Errorf("%w: account %s has the maximum of %d numbers", ErrConflict, n.AccountID, MaxNumbersPerAccount)
	}
	data, _ := json.Marshal(n) // plain struct: cannot fail
	key := "number." + encodeNumber(n.Number)
	var rev uint64
	var err error
	if had {
		rev, err = s.kv.Put(ctx, key, data)
	} else if rev, err = s.kv.Create(ctx, key, data); errors.Is(err, jetstream.ErrKeyExists) {
		return Number{}, fmt.Errorf("%w: number %s was just taken", ErrConflict, n.Number)
	}
	if err != nil {
		return Number{}, fmt.Errorf("store number %s: %w", n.Number, err)
	}
	return n, s.caughtUp(ctx, rev)
}

// DeleteNumber removes one of the account's numbers.
func (s *Store) DeleteNumber(ctx context.Context, accountID, number string) error {
	n, ok := s.Number(number)
	if !ok || n.AccountID != accountID {
		return fmt.Errorf("%w: account %s has no number %q", ErrNotFound, accountID, short(number))
	}
	if err := s.kv.Delete(ctx, "number."+encodeNumber(number)); err != nil {
		return fmt.Errorf("remove number %s: %w", number, err)
	}
	return s.waitGone(ctx, func() bool { _, ok := s.Number(number); return ok })
}

func (s *Store) waitGone(ctx context.Context, present func() bool) error {
	for present() {
		s.mu.RLock()
		ch := s.changed
		s.mu.RUnlock()
		if !present() {
			return nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// HA1 is the digest hash of user:realm:password with h (RFC 2617 3.2.2.2,
// RFC 8760 for SHA-256).
func HA1(h func() hash.Hash, user, realm, password string) string {
	x := h()
	x.Write([]byte(user + ":" + realm + ":" + password))
	return hex.EncodeToString(x.Sum(nil))
}

// ValidUser reports whether s is a SIP user name (or realm) we accept:
// 1-64 characters of A-Z a-z 0-9 _ - . (safe in a URI and a key).
func ValidUser(s string) bool {
	if len(s) == 0 || len(s) > 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '_' || c == '-' || c == '.') {
			return false
		}
	}
	return s[0] != '.' && s[len(s)-1] != '.'
}

// ValidNumber reports whether s is a number we route: 1-32 digits,
// optionally after a '+'.
func ValidNumber(s string) bool {
	d := strings.TrimPrefix(s, "+")
	if len(d) == 0 || len(d) > 32 {
		return false
	}
	for i := 0; i < len(d); i++ {
		if d[i] < '0' || d[i] > '9' {
			return false
		}
	}
	return true
}

// encodeNumber makes a number a key segment ('+' is not allowed in keys).
func encodeNumber(n string) string {
	if d, ok := strings.CutPrefix(n, "+"); ok {
		return "p" + d
	}
	return n
}

func decodeNumber(k string) string {
	if d, ok := strings.CutPrefix(k, "p"); ok {
		return "+" + d
	}
	return k
}

// generatePassword makes up a password of 128 random bits (26 base32
// characters).
func generatePassword() string { return rand.Text() }

// short cuts a value for quoting in an error message.
func short(s string) string { return shorten.String(s, 40) }
