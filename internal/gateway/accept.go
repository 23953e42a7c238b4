package gateway

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ccevents/ccevents/internal/limit"
	"github.com/ccevents/ccevents/protocol"
)

// How a TCP connection becomes a websocket connection: the HTTP request is
// checked (an upgrade, an allowed Origin, the per-address limit), upgraded,
// and the connection admitted unless the gateway is shutting down.
// Handshakes that never got a request through are counted.

// ServeHTTP upgrades websocket requests and hands anything else to
// Config.Fallback.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if h, ok := r.Context().Value(handshakeKey{}).(*handshake); ok {
		h.served.Store(true)
	}
	if !headerHasToken(r.Header, "Upgrade", "websocket") {
		if s.cfg.Fallback != nil {
			s.cfg.Fallback.ServeHTTP(w, r)
			return
		}
		w.Header().Set("Upgrade", "websocket")
		http.Error(w, "this is the ccevents websocket gateway: connect with a websocket client", http.StatusUpgradeRequired)
		return
	}
	if origins := r.Header.Values("Origin"); len(origins) > 1 || (len(origins) == 1 && !s.origins.Allowed(origins[0])) {
		s.m.refuse(refuseOrigin)
		s.log.Debug("websocket refused: origin not allowed", "remote", r.RemoteAddr, "origin", origins)
		http.Error(w, "this page's origin may not open a websocket to this gateway", http.StatusForbidden)
		return
	}
	// The per-address cap is answered before the upgrade, with 429 as
	// Kazoo's blackhole does; the slot is the connection's from here on.
	ip := limit.ClientKey(r.RemoteAddr)
	if !s.perIP.TryAcquire(ip) {
		s.m.error(protocol.ErrLimit)
		s.m.refuse(refuseConnsPerIP)
		s.log.Info("connection refused: too many from one address", "ip", ip, "limit", s.cfg.MaxConnsPerIP)
		http.Error(w, fmt.Sprintf("too many connections from your address (limit %d); close some before opening more", s.cfg.MaxConnsPerIP), http.StatusTooManyRequests)
		return
	}
	nc, rw, _, err := s.upgrader.Upgrade(r, w)
	if err != nil {
		s.perIP.Release(ip)
		s.m.error(errHandshake)
		s.log.Debug("websocket upgrade failed", "remote", r.RemoteAddr, "err", err)
		if nc != nil {
			nc.Close()
		}
		return
	}
	// Bytes the client sent right after its request are already in the
	// HTTP server's buffer; keep them and let the buffers go, so an idle
	// connection holds no read or write buffer.
	var early []byte
	if n := rw.Reader.Buffered(); n > 0 {
		p, _ := rw.Reader.Peek(n)
		early = bytes.Clone(p)
	}
	c, code, reason := s.admit(nc, ip, early)
	if c == nil {
		s.perIP.Release(ip)
		s.refuse(nc, code, reason)
		return
	}
	// A fresh goroutine starts with a small stack, unlike this handler's.
	go c.readLoop()
}

// admit registers a new connection, which holds its slot of the
// per-address limit, or says why it is refused.
func (s *Server) admit(nc net.Conn, ip string, early []byte) (*conn, protocol.CloseCode, string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.shutting {
		return nil, protocol.CloseGoingAway, protocol.ReasonGoingAway
	}
	c := newConn(s, nc, ip, early)
	s.conns[c] = struct{}{}
	s.m.conns.Inc()
	return c, 0, ""
}

// refuse sends a close frame on a connection that was never admitted and
// closes it.
func (s *Server) refuse(nc net.Conn, code protocol.CloseCode, reason string) {
	s.m.closedWith(int(code))
	_ = nc.SetWriteDeadline(time.Now().Add(s.cfg.WriteTimeout))
	_, _ = nc.Write(closeFrame(code, reason))
	nc.Close()
}

// handshake is what the gateway knows of a TCP connection before its
// upgrade: whether a complete HTTP request arrived on it.
type handshake struct{ served atomic.Bool }

type handshakeKey struct{}

// trackHandshake starts following a new TCP connection (http.Server.ConnContext).
func (s *Server) trackHandshake(ctx context.Context, nc net.Conn) context.Context {
	h := new(handshake)
	s.hsMu.Lock()
	s.handshakes[nc] = h
	s.hsMu.Unlock()
	return context.WithValue(ctx, handshakeKey{}, h)
}

// handshakeState counts connections that closed before a complete request
// arrived: slow (slowloris) or abandoned handshakes, cut by
// HandshakeTimeout, and failed TLS handshakes (http.Server.ConnState).
func (s *Server) handshakeState(nc net.Conn, state http.ConnState) {
	if state != http.StateClosed && state != http.StateHijacked {
		return
	}
	s.hsMu.Lock()
	h := s.handshakes[nc]
	delete(s.handshakes, nc)
	s.hsMu.Unlock()
	if state == http.StateClosed && h != nil && !h.served.Load() {
		s.m.refuse(refuseHandshake)
	}
}

// headerHasToken reports whether a comma-separated header contains token,
// ignoring case.
func headerHasToken(h http.Header, key, token string) bool {
	for _, v := range h.Values(key) {
		for part := range strings.SplitSeq(v, ",") {
			if strings.EqualFold(strings.TrimSpace(part), token) {
				return true
			}
		}
	}
	return false
}

// forget unregisters a connection that has finished.
func (s *Server) forget(c *conn) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.conns[c]; !ok {
		return
	}
	delete(s.conns, c)
	s.m.conns.Dec()
	s.perIP.Release(c.ip)
	if len(s.conns) == 0 && s.gone != nil {
		close(s.gone)
		s.gone = nil
	}
}

// connections returns the connections admitted and not yet finished.
func (s *Server) connections() []*conn {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.connsLocked()
}

func (s *Server) connsLocked() []*conn {
	conns := make([]*conn, 0, len(s.conns))
	for c := range s.conns {
		conns = append(conns, c)
	}
	return conns
}
