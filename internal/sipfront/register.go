package sipfront

import (
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/emiago/sipgo/sip"

	"github.com/ccevents/ccevents/internal/limit"
	"github.com/ccevents/ccevents/internal/sipstore"
)

// binding is where a registered phone is reached.
type binding struct {
	user      string
	accountID string
	recipient string
	contact   sip.Uri // as the phone gave it
	source    string  // host:port the REGISTER came from
	transport string  // udp or tcp
	expires   time.Time
}

// target is the URI to call the phone at: its Contact, sent to the address
// the REGISTER came from, which is the one that works behind NAT.
func (b binding) target() sip.Uri {
	u := b.contact.Clone()
	if host, port, err := net.SplitHostPort(b.source); err == nil {
		u.Host = host
		u.Port, _ = strconv.Atoi(port)
	}
	if u.UriParams == nil {
		u.UriParams = sip.NewParams()
	}
	u.UriParams.Add("transport", b.transport)
	return *u
}

// registrar remembers one binding per SIP user (the latest REGISTER wins).
type registrar struct {
	max int
	mu  sync.Mutex
	by  map[string]binding
}

func newRegistrar(max int) *registrar { return &registrar{max: max, by: map[string]binding{}} }

func (r *registrar) lookup(user string, now time.Time) (binding, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, ok := r.by[user]
	if ok && now.After(b.expires) {
		delete(r.by, user)
		return binding{}, false
	}
	return b, ok
}

// put stores a binding; false when the registrar is full.
func (r *registrar) put(b binding) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.by[b.user]; !ok && len(r.by) >= r.max {
		now := time.Now()
		for u, old := range r.by { // make room from expired bindings first
			if now.After(old.expires) {
				delete(r.by, u)
			}
		}
		if len(r.by) >= r.max {
			return false
		}
	}
	r.by[b.user] = b
	return true
}

func (r *registrar) remove(user string) {
	r.mu.Lock()
	delete(r.by, user)
	r.mu.Unlock()
}

func (r *registrar) len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.by)
}

// Registration is a phone's registration as the REST API shows it.
type Registration struct {
	Contact   string    `json:"contact"`
	Source    string    `json:"source"`
	Transport string    `json:"transport"`
	ExpiresAt time.Time `json:"expires_at"`
}

// Registered reports where a recipient's phone is registered, if it is.
func (s *Server) Registered(accountID, recipientID string) (Registration, bool) {
	c, ok := s.cfg.Store.CredentialOf(accountID, recipientID)
	if !ok {
		return Registration{}, false
	}
	b, ok := s.reg.lookup(c.User, time.Now())
	if !ok || b.accountID != accountID {
		return Registration{}, false
	}
	return Registration{Contact: b.contact.String(), Source: b.source, Transport: b.transport, ExpiresAt: b.expires.UTC().Truncate(time.Second)}, true
}

// handleRegister serves REGISTER (RFC 3261 section 10) with digest auth.
func (s *Server) handleRegister(req *sip.Request, tx sip.ServerTransaction) {
	s.m.requests.WithLabelValues("REGISTER").Inc()
	now := time.Now()
	src := limit.ClientKey(req.Source())
	if ok, wait := s.auth.backoff.Allow(src); !ok {
		s.m.refused.WithLabelValues("auth_backoff").Inc()
		s.respond(tx, req, 403, "Forbidden: too many failed authentications; retry in "+wait.Round(time.Second).String(), sip.NewHeader("Retry-After", strconv.Itoa(int(wait.Seconds())+1)))
		return
	}
	to := req.To()
	if to == nil {
		s.m.refused.WithLabelValues("bad_request").Inc()
		s.respond(tx, req, 400, "Bad Request: no To header")
		return
	}
	v, cred := s.auth.check(req, "Authorization", s.cfg.Store.User, now)
	switch v {
	case authBad:
		s.m.authFailures.WithLabelValues("REGISTER").Inc()
		s.auth.backoff.Failure(src)
		fallthrough
	case authMissing, authStale:
		realm := sipstore.DefaultRealm
		if c, ok := s.cfg.Store.User(to.Address.User); ok {
			realm = c.Realm
		}
		s.challenge(tx, req, 401, "WWW-Authenticate", realm, v == authStale)
		return
	}
	if cred.User != to.Address.User {
		// A phone registers its own address of record only.
		s.m.refused.WithLabelValues("forbidden").Inc()
		s.respond(tx, req, 403, "Forbidden: credentials of "+cred.User+" cannot register "+to.Address.User)
		return
	}
	s.auth.backoff.Success(src)
	expires := s.cfg.MaxExpires
	if h := req.GetHeader("Expires"); h != nil {
		if n, err := strconv.Atoi(strings.TrimSpace(h.Value())); err == nil {
			expires = n
		}
	}
	contacts := req.GetHeaders("Contact")
	if len(contacts) == 0 { // a query: answer with the current binding
		res := sip.NewResponseFromRequest(req, 200, "OK", nil)
		if b, ok := s.reg.lookup(cred.User, now); ok {
			res.AppendHeader(&sip.ContactHeader{Address: b.contact, Params: sip.HeaderParams{{K: "expires", V: strconv.Itoa(int(time.Until(b.expires).Seconds()))}}})
		}
		_ = tx.Respond(res)
		return
	}
	ch, ok := contacts[0].(*sip.ContactHeader)
	if !ok {
		s.respond(tx, req, 400, "Bad Request: unreadable Contact")
		return
	}
	if e, ok := ch.Params.Get("expires"); ok {
		if n, err := strconv.Atoi(e); err == nil {
			expires = n
		}
	}
	if ch.Address.Wildcard || expires == 0 {
		s.reg.remove(cred.User)
		_ = tx.Respond(sip.NewResponseFromRequest(req, 200, "OK", nil))
		s.log.Info("phone unregistered", "account", cred.AccountID, "recipient", cred.RecipientID, "user", cred.User)
		return
	}
	if expires < s.cfg.MinExpires {
		s.respond(tx, req, 423, "Interval Too Brief", sip.NewHeader("Min-Expires", strconv.Itoa(s.cfg.MinExpires)))
		return
	}
	expires = min(expires, s.cfg.MaxExpires)
	b := binding{user: cred.User, accountID: cred.AccountID, recipient: cred.RecipientID, contact: ch.Address,
		source: req.Source(), transport: strings.ToLower(req.Transport()), expires: now.Add(time.Duration(expires) * time.Second)}
	if !s.reg.put(b) {
		s.m.refused.WithLabelValues("max_registrations").Inc()
		s.respond(tx, req, 503, "Service Unavailable: registrations are full", sip.NewHeader("Retry-After", "60"))
		return
	}
	res := sip.NewResponseFromRequest(req, 200, "OK", nil)
	res.AppendHeader(&sip.ContactHeader{Address: ch.Address, Params: sip.HeaderParams{{K: "expires", V: strconv.Itoa(expires)}}})
	_ = tx.Respond(res)
	s.log.Info("phone registered", "account", cred.AccountID, "recipient", cred.RecipientID, "user", cred.User, "source", b.source, "transport", b.transport, "expires_s", expires)
}

func (s *Server) respond(tx sip.ServerTransaction, req *sip.Request, code int, reason string, headers ...sip.Header) {
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, h := range headers {
		res.AppendHeader(h)
	}
	_ = tx.Respond(res)
}

func (s *Server) challenge(tx sip.ServerTransaction, req *sip.Request, code int, header, realm string, stale bool) {
	reason := "Unauthorized"
	if code == 407 {
		reason = "Proxy Authentication Required"
	}
	res := sip.NewResponseFromRequest(req, code, reason, nil)
	for _, c := range s.auth.challenges(realm, time.Now(), stale) {
		res.AppendHeader(sip.NewHeader(header, c))
	}
	_ = tx.Respond(res)
}
