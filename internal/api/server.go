package api

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/buildinfo"
	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/limit"
	"github.com/ccevents/ccevents/internal/sipstore"
)

// Publisher stores a validated event on the bus and returns its sequence.
type Publisher interface {
	Publish(ctx context.Context, subject string, data []byte, msgID string) (uint64, error)
}

// Config wires the API to the rest of the process. Auth and Publisher are
// required; the rest is optional.
type Config struct {
	Auth      *auth.Service
	Publisher Publisher
	// Engine serves queues, recipients and calls; nil leaves those routes out.
	Engine engine.Service
	// Sockets lists the gateways' websockets (Kazoo's
	// /v2/accounts/{ACCOUNT_ID}/websockets); nil leaves those routes out.
	Sockets SocketLister
	// SIP is the telephony configuration (SIP credentials, numbers); nil
	// leaves those routes out. They need Engine too.
	SIP *sipstore.Store
	// SIPRegistered reports where a recipient's phone is registered; nil
	// when no SIP front end runs in this process.
	SIPRegistered func(accountID, recipientID string) (SIPRegistration, bool)
	// Gatherer backs /metrics; nil uses the default registry.
	Gatherer prometheus.Gatherer
	// Registerer receives the REST API's own metrics (request durations,
	// listener limits); nil keeps them in a registry nobody scrapes.
	Registerer prometheus.Registerer
	// Limits are Serve's timeouts and connection bounds.
	Limits Limits
	// Ready reports whether the process can serve (bus connected, …).
	Ready func() error
	// LoginBackoff makes an address that keeps presenting bad API keys to
	// PUT /v2/api_auth wait; nil applies no back-off.
	LoginBackoff *limit.Backoff
	// Static serves what the API does not (wallboard, browser client).
	Static http.Handler
	// Now is the clock; nil means time.Now.
	Now    func() time.Time
	Logger *slog.Logger
}

// Server is the REST API. Its Handler serves every route.
type Server struct {
	cfg      Config
	log      *slog.Logger
	now      func() time.Time
	handler  http.Handler
	patterns []string // every route registered (Routes)
	limits   Limits
	lm       *listenMetrics
	listen   listening
}

// New builds the API from cfg.
func New(cfg Config) (*Server, error) {
	if cfg.Auth == nil || cfg.Publisher == nil {
		return nil, errors.New("api: Auth and Publisher are required")
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now, limits: cfg.Limits.withDefaults(),
		listen: listening{conns: make(map[net.Conn]*connInfo)}}
	lm, err := newListenMetrics(cfg.Registerer, s.openConns)
	if err != nil {
		return nil, err
	}
	s.lm = lm
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.now == nil {
		s.now = time.Now
	}
	if cfg.Gatherer == nil {
		s.cfg.Gatherer = prometheus.DefaultGatherer
	}
	reg := cfg.Registerer
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	m, err := newHTTPMetrics(reg)
	if err != nil {
		return nil, fmt.Errorf("register REST API metrics: %w", err)
	}
	s.handler = m.instrument(s.routes())
	return s, nil
}

// Handler serves the API.
func (s *Server) Handler() http.Handler { return s.handler }

func (s *Server) routes() http.Handler {
	mux := newRouter()
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeData(w, http.StatusOK, health{State: "alive", Info: buildinfo.Read()})
	})
	mux.HandleFunc("GET /readyz", s.handleReady)
	mux.Handle("GET /metrics", promhttp.HandlerFor(s.cfg.Gatherer, promhttp.HandlerOpts{}))

	mux.HandleFunc("PUT /v2/api_auth", s.handleAPIAuth)
	mux.HandleFunc("GET /v2/accounts/{ACCOUNT_ID}", s.accountScoped(s.handleGetAccount))
	mux.HandleFunc("PUT /v2/accounts/{ACCOUNT_ID}", s.accountScoped(s.handleCreateChild))
	mux.HandleFunc("GET /v2/accounts/{ACCOUNT_ID}/children", s.accountScoped(s.handleChildren))
	mux.HandleFunc("POST /v2/accounts/{ACCOUNT_ID}/events", s.accountScoped(s.handlePublish))
	mux.HandleFunc("PUT /v2/accounts/{ACCOUNT_ID}/api_key", s.accountScoped(s.handleRotateAPIKey))
	mux.HandleFunc("DELETE /v2/accounts/{ACCOUNT_ID}/api_key", s.accountScoped(s.handleRevokeAPIKey))
	mux.HandleFunc("POST /v2/signing_keys", s.handleRotateSigningKey)
	if s.cfg.Engine != nil {
		s.engineRoutes(mux)
		if s.cfg.SIP != nil {
			s.sipRoutes(mux)
		}
	}
	s.websocketRoutes(mux)
	if s.cfg.Static != nil {
		mux.Handle("/", s.cfg.Static)
	} else {
		mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
			writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
		})
	}
	s.patterns = mux.patterns
	return s.timed(s.recoverPanics(mux.mux))
}

// health is GET /healthz: the process is up, and which build it runs.
type health struct {
	State string `json:"state"`
	buildinfo.Info
}

// recoverPanics turns a handler panic into a 500 so one bad request never
// takes the process down.
func (s *Server) recoverPanics(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("api handler panicked", "method", r.Method, "path", r.URL.Path, "panic", v)
				writeError(w, http.StatusInternalServerError, "internal error; the request was not applied")
			}
		}()
		next.ServeHTTP(w, r)
	})
}

func (s *Server) handleReady(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Ready != nil {
		if err := s.cfg.Ready(); err != nil {
			writeError(w, http.StatusServiceUnavailable, "not ready: "+err.Error())
			return
		}
	}
	writeData(w, http.StatusOK, map[string]string{"state": "ready"})
}

// tokenFrom reads the auth token from X-Auth-Token or a Bearer header.
func tokenFrom(r *http.Request) string {
	if t := r.Header.Get("X-Auth-Token"); t != "" {
		return strings.TrimSpace(t)
	}
	if h := r.Header.Get("Authorization"); len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// authenticate verifies the request's token. Without one it answers 401
// with missing, which tells the caller where the token goes.
func (s *Server) authenticate(w http.ResponseWriter, r *http.Request, missing string) (auth.Claims, bool) {
	token := tokenFrom(r)
	if token == "" {
		writeError(w, http.StatusUnauthorized, missing)
		return auth.Claims{}, false
	}
	claims, err := s.cfg.Auth.Verify(token)
	if err != nil {
		writeError(w, http.StatusUnauthorized, tokenProblem(err))
		return auth.Claims{}, false
	}
	return claims, true
}

// accountHandler is a handler for a route under /v2/accounts/{ACCOUNT_ID}
// that the caller's token may access.
type accountHandler func(w http.ResponseWriter, r *http.Request, accountID string)

// accountScoped authenticates the request and checks that its token may
// access the account named in the path.
func (s *Server) accountScoped(h accountHandler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		claims, ok := s.authenticate(w, r, "missing auth token: send it in the X-Auth-Token header (get one with PUT /v2/api_auth)")
		if !ok {
			return
		}
		accountID := r.PathValue("ACCOUNT_ID")
		if !event.ValidAccountID(accountID) {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("account id must be 32 lowercase hex characters, got %q", accountID))
			return
		}
		ok, err := s.cfg.Auth.MayAccess(r.Context(), claims.AccountID, accountID)
		if err != nil {
			s.log.Error("account access check failed", "token_account", claims.AccountID, "account", accountID, "err", err)
			writeError(w, http.StatusServiceUnavailable, "could not check account access right now; try again")
			return
		}
		if !ok {
			writeError(w, http.StatusForbidden, fmt.Sprintf("token for account %s may not access account %s", claims.AccountID, accountID))
			return
		}
		h(w, r, accountID)
	}
}

func tokenProblem(err error) string {
	switch {
	case errors.Is(err, auth.ErrTokenExpired):
		return "auth token has expired; get a fresh one with PUT /v2/api_auth"
	case errors.Is(err, auth.ErrTokenInvalid):
		return "auth token is not valid: " + strings.TrimPrefix(err.Error(), auth.ErrTokenInvalid.Error()+": ")
	}
	return "auth token is not valid"
}
