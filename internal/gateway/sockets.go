package gateway

import (
	"cmp"
	"context"
	"encoding/binary"
	"encoding/hex"
	"net"
	"os"
	"slices"
	"strconv"
	"time"

	"github.com/ccevents/ccevents/internal/socketlist"
)

// The socket listing (GET /v2/accounts/{ACCOUNT_ID}/websockets) reads
// connections from outside their reader goroutine, which owns their
// subscriptions. So the reader publishes a connView, an immutable copy of
// what the listing shows, after every request that may have changed it, and
// the listing only loads it.

// connView is the connection's token and what the listing shows of the
// connection.
type connView struct {
	token socketToken // zero before the first token
	subs  []viewSub   // in subscribe order
}

// viewSub is one binding of a connection.
type viewSub struct {
	account      string // whose events
	tokenAccount string // the account of the token that subscribed
	text         string // as the client wrote it
}

// publishView replaces the connection's view with its current bindings.
func (c *conn) publishView() {
	v := &connView{}
	if old := c.view.Load(); old != nil {
		v.token = old.token
	}
	if c.subscribed.n > 0 {
		subs := c.subscribed.inOrder()
		v.subs = make([]viewSub, len(subs))
		for i, sb := range subs {
			v.subs[i] = viewSub{account: sb.ca.account, tokenAccount: sb.ca.tokenAccount, text: sb.key.text}
		}
	}
	c.view.Store(v)
}

// socketID is the connection's id in the listing: when it connected (so
// ids sort in connect order) and the gateway's tag (so ids of two gateways
// never meet).
func (c *conn) socketID() string {
	var b [16]byte
	binary.BigEndian.PutUint64(b[:8], uint64(c.connected))
	binary.BigEndian.PutUint64(b[8:], c.srv.socketTag)
	return hex.EncodeToString(b[:])
}

// connectTime returns now in Unix nanoseconds, later than any it returned
// before: each connection's is its own.
func (s *Server) connectTime() int64 {
	now := time.Now().UnixNano()
	for {
		last := s.lastConnect.Load()
		t := max(now, last+1)
		if s.lastConnect.CompareAndSwap(last, t) {
			return t
		}
	}
}

// gregorianOffset is the seconds from year 0 (Kazoo's Gregorian seconds) to
// the Unix epoch.
const gregorianOffset = 62167219200

// Sockets lists this gateway's sockets that q.AccountID may see, as
// socketlist.Serve asks: a socket is listed when its token, or one that
// subscribed on it, is of that account or a descendant, and it shows only
// the bindings on accounts q.AccountID may see.
func (s *Server) Sockets(ctx context.Context, q socketlist.Query) socketlist.Answer {
	ans := socketlist.Answer{Gateway: s.name(), Sockets: []socketlist.Socket{}}
	conns := s.connections()

	type candidate struct {
		id string
		c  *conn
		v  *connView
	}
	var found []candidate
	visible := make(map[string]bool) // account -> q.AccountID may see it
	var failed error
	sees := func(account string) bool {
		if account == "" || failed != nil {
			return false
		}
		ok, seen := visible[account]
		if !seen {
			ok, failed = s.authz.MayAccess(ctx, q.AccountID, account)
			visible[account] = ok
		}
		return ok
	}
	for _, c := range conns {
		v := c.view.Load()
		if v == nil || (v.token.account == "" && len(v.subs) == 0) {
			continue // never authenticated: nobody's socket yet
		}
		id := c.socketID()
		if (q.SocketID != "" && id != q.SocketID) || id <= q.StartKey {
			continue
		}
		listed := sees(v.token.account)
		for i := 0; !listed && i < len(v.subs); i++ {
			listed = sees(v.subs[i].tokenAccount)
		}
		if listed {
			found = append(found, candidate{id, c, v})
		}
	}
	if failed != nil {
		s.log.Error("websocket listing: access check failed", "account", q.AccountID, "err", failed)
		return socketlist.Answer{Gateway: ans.Gateway, Error: "could not check account access right now; try again"}
	}
	slices.SortFunc(found, func(a, b candidate) int { return cmp.Compare(a.id, b.id) })
	if q.Limit > 0 && len(found) > q.Limit {
		found, ans.More = found[:q.Limit], true
	}
	for _, f := range found {
		ans.Sockets = append(ans.Sockets, f.c.listing(f.id, f.v, sees, ans.Gateway))
	}
	return ans
}

// listing is the connection as the listing shows it, with the bindings on
// accounts the asker sees.
func (c *conn) listing(id string, v *connView, sees func(string) bool, gateway string) socketlist.Socket {
	connected := time.Unix(0, c.connected).UTC()
	sock := socketlist.Socket{
		ID:            id,
		Bindings:      []string{},
		Subscriptions: []socketlist.Subscription{},
		Source:        sourceAddr(c.nc.RemoteAddr()),
		Destination:   gateway,
		ConnectedAt:   connected.Format(time.RFC3339Nano),
		Timestamp:     connected.Unix() + gregorianOffset,
	}
	if sees(v.token.account) {
		sock.AccountID = v.token.account
	}
	for _, sb := range v.subs {
		if sees(sb.account) {
			sock.Bindings = append(sock.Bindings, sb.text)
			sock.Subscriptions = append(sock.Subscriptions, socketlist.Subscription{AccountID: sb.account, Binding: sb.text})
		}
	}
	c.mu.Lock()
	expires := c.tokenExpires
	c.mu.Unlock()
	if expires.IsZero() && v.token.expires != 0 {
		expires = time.Unix(v.token.expires, 0)
	}
	if !expires.IsZero() {
		sock.ExpiresAt = expires.UTC().Format(time.RFC3339)
	}
	return sock
}

// sourceAddr is the client's IP address, without the port.
func sourceAddr(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok {
		return ta.AddrPort().Addr().Unmap().String()
	}
	host, _, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	return host
}

// name is how the listing names this gateway.
func (s *Server) name() string { return s.NameOn(s.Addr()) }

// NameOn is how the listing names this gateway once it serves on addr (the
// first listener given to Serve): Config.Name, or the host name and addr's
// port.
func (s *Server) NameOn(addr net.Addr) string {
	if s.cfg.Name != "" {
		return s.cfg.Name
	}
	host, _ := os.Hostname()
	if a, ok := addr.(*net.TCPAddr); ok {
		return host + ":" + strconv.Itoa(a.Port)
	}
	return host
}
