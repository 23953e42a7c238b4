package sipfront

import (
	"crypto/hmac"
	"crypto/md5"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"hash"
	"strconv"
	"strings"
	"time"

	"github.com/emiago/sipgo/sip"
	"github.com/icholy/digest"

	"github.com/ccevents/ccevents/internal/limit"
	"github.com/ccevents/ccevents/internal/sipstore"
)

// nonceTTL is how long a challenge's nonce is honoured.
const nonceTTL = 5 * time.Minute

// authenticator checks digest credentials (RFC 2617, RFC 8760) against
// the stored HA1 hashes. Nonces are stateless: the time they were made and
// an HMAC of it, so any number of challenges costs no memory.
type authenticator struct {
	key     []byte
	backoff *limit.Backoff
}

func (a *authenticator) nonce(now time.Time) string {
	ts := strconv.FormatInt(now.Unix(), 16)
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(ts))
	return ts + "." + hex.EncodeToString(m.Sum(nil)[:16])
}

func (a *authenticator) nonceValid(n string, now time.Time) bool {
	ts, mac, ok := strings.Cut(n, ".")
	if !ok {
		return false
	}
	sec, err := strconv.ParseInt(ts, 16, 64)
	if err != nil {
		return false
	}
	m := hmac.New(sha256.New, a.key)
	m.Write([]byte(ts))
	want := hex.EncodeToString(m.Sum(nil)[:16])
	age := now.Sub(time.Unix(sec, 0))
	return subtle.ConstantTimeCompare([]byte(mac), []byte(want)) == 1 && age >= -time.Minute && age <= nonceTTL
}

// challenges are the WWW-Authenticate (or Proxy-Authenticate) values for
// a realm. MD5 comes first because many phones answer only the first
// challenge and know no other; RFC 8760 clients pick SHA-256.
func (a *authenticator) challenges(realm string, now time.Time, stale bool) []string {
	n := a.nonce(now)
	var out []string
	for _, alg := range []string{"MD5", "SHA-256"} {
		c := digest.Challenge{Realm: realm, Nonce: n, Algorithm: alg, QOP: []string{"auth"}, Stale: stale}
		out = append(out, c.String())
	}
	return out
}

// verdict of one authorization header.
type verdict int

const (
	authMissing verdict = iota // no credentials: challenge
	authStale                  // right password, old nonce: challenge with stale=true
	authBad                    // wrong: count a failure, challenge again
	authOK
)

// check reads the Authorization (or Proxy-Authorization) header of req
// and checks it against the credential of its user. It returns the user.
func (a *authenticator) check(req *sip.Request, header string, lookup func(user string) (sipstore.Credential, bool), now time.Time) (verdict, sipstore.Credential) {
	h := req.GetHeader(header)
	if h == nil {
		return authMissing, sipstore.Credential{}
	}
	cr, err := digest.ParseCredentials(h.Value())
	if err != nil {
		return authBad, sipstore.Credential{}
	}
	c, ok := lookup(cr.Username)
	if !ok || cr.Realm != c.Realm {
		return authBad, sipstore.Credential{}
	}
	ha1, h2 := c.HA1MD5, md5.New
	switch strings.ToUpper(cr.Algorithm) {
	case "", "MD5":
	case "SHA-256":
		ha1, h2 = c.HA1SHA256, sha256.New
	default:
		return authBad, sipstore.Credential{}
	}
	want := digestResponse(h2, ha1, req.Method.String(), cr)
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(cr.Response)), []byte(want)) != 1 {
		return authBad, sipstore.Credential{}
	}
	if !a.nonceValid(cr.Nonce, now) {
		return authStale, c
	}
	return authOK, c
}

// digestResponse computes what a client with the right password answers.
func digestResponse(h func() hash.Hash, ha1, method string, cr *digest.Credentials) string {
	sum := func(s string) string {
		x := h()
		x.Write([]byte(s))
		return hex.EncodeToString(x.Sum(nil))
	}
	ha2 := sum(method + ":" + cr.URI)
	if cr.QOP == "" {
		return sum(ha1 + ":" + cr.Nonce + ":" + ha2)
	}
	return sum(ha1 + ":" + cr.Nonce + ":" + fmt.Sprintf("%08x", cr.Nc) + ":" + cr.Cnonce + ":" + cr.QOP + ":" + ha2)
}
