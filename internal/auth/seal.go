package auth

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

// SealKeySize is the length of a seal key: AES-256.
const SealKeySize = 32

// ErrSealKey means this service cannot use the signing keys in the bucket:
// they were sealed with another seal key than the one it was given.
var ErrSealKey = errors.New("signing keys are sealed with another seal key")

// sealer encrypts the private half of signing keys before they go into the
// bucket, so that a client that can read the bucket learns only public
// keys. The seal key never leaves the processes that issue tokens.
type sealer struct {
	aead cipher.AEAD
	// id names the seal key in each sealed record (a hash prefix, not the
	// key), so an error can say which key a record needs.
	id string
}

func newSealer(key []byte) (*sealer, error) {
	if len(key) != SealKeySize {
		return nil, fmt.Errorf("%w: a seal key is %d bytes, got %d", ErrSealKey, SealKeySize, len(key))
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	aead, err := cipher.NewGCMWithRandomNonce(block)
	if err != nil {
		return nil, fmt.Errorf("seal key: %w", err)
	}
	return &sealer{aead: aead, id: SealKeyID(key)}, nil
}

// SealKeyID is the public name of a seal key: the first 8 bytes of its
// SHA-256 in hex. Logs and errors use it; it reveals nothing of the key.
func SealKeyID(key []byte) string {
	sum := sha256.Sum256(append([]byte("ccevents seal key id\x00"), key...))
	return hex.EncodeToString(sum[:8])
}

// NewSealKey returns a fresh random seal key.
func NewSealKey() []byte {
	k := make([]byte, SealKeySize)
	_, _ = rand.Read(k)
	return k
}

// ParseSealKey reads a seal key written as 64 hex characters (surrounding
// white space ignored), the form FormatSealKey writes.
func ParseSealKey(text []byte) ([]byte, error) {
	k, err := hex.DecodeString(strings.TrimSpace(string(text)))
	if err != nil || len(k) != SealKeySize {
		return nil, fmt.Errorf("%w: expected %d hex characters (e.g. from `openssl rand -hex %d`)", ErrSealKey, 2*SealKeySize, SealKeySize)
	}
	return k, nil
}

// FormatSealKey is the text form of a seal key, as ParseSealKey reads it.
func FormatSealKey(key []byte) []byte { return []byte(hex.EncodeToString(key) + "\n") }

// associatedData binds a sealed seed to its key id, so a sealed seed copied
// into another key's record does not open.
func associatedData(kid string) []byte { return []byte("ccevents signing key " + kid) }

func (s *sealer) seal(kid string, seed []byte) []byte {
	return s.aead.Seal(nil, nil, seed, associatedData(kid))
}

func (s *sealer) open(kid string, sealed []byte) ([]byte, error) {
	return s.aead.Open(nil, nil, sealed, associatedData(kid))
}
