package api

import (
	"errors"
	"fmt"
	"math"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/limit"
)

type accountView struct {
	AccountID string    `json:"account_id"`
	Name      string    `json:"name"`
	ParentID  string    `json:"parent_id,omitempty"`
	Ancestors []string  `json:"ancestors"`
	CreatedAt time.Time `json:"created_at"`
	APIKey    string    `json:"api_key,omitempty"`
}

func viewOf(a auth.Account) accountView {
	anc := a.Ancestors
	if anc == nil {
		anc = []string{}
	}
	return accountView{AccountID: a.ID, Name: a.Name, ParentID: a.ParentID, Ancestors: anc, CreatedAt: a.CreatedAt.UTC()}
}

// handleAPIAuth exchanges an API key for a signed, expiring token.
func (s *Server) handleAPIAuth(w http.ResponseWriter, r *http.Request) {
	var req struct {
		APIKey string `json:"api_key"`
	}
	if !decodeData(w, r, &req) {
		return
	}
	if strings.TrimSpace(req.APIKey) == "" {
		writeError(w, http.StatusBadRequest, `"api_key" is required: {"data":{"api_key":"…"}}`)
		return
	}
	client := limit.ClientKey(r.RemoteAddr)
	if b := s.cfg.LoginBackoff; b != nil {
		if ok, wait := b.Allow(client); !ok {
			secs := int(math.Ceil(wait.Seconds()))
			w.Header().Set("Retry-After", strconv.Itoa(secs))
			writeError(w, http.StatusTooManyRequests, fmt.Sprintf("too many failed logins from your address; try again in %d s", secs))
			return
		}
	}
	token, claims, err := s.cfg.Auth.Login(r.Context(), req.APIKey)
	if errors.Is(err, auth.ErrInvalidAPIKey) {
		if b := s.cfg.LoginBackoff; b != nil {
			b.Failure(client)
		}
		writeError(w, http.StatusUnauthorized, "api key is not valid (unknown or revoked)")
		return
	}
	if err != nil {
		s.log.Error("login failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "could not issue a token right now; try again")
		return
	}
	if b := s.cfg.LoginBackoff; b != nil {
		b.Success(client)
	}
	writeEnvelope(w, http.StatusCreated, envelope{
		Status: "success",
		Data: map[string]any{
			"account_id": claims.AccountID,
			"expires_at": claims.ExpiresAt.UTC().Format(time.RFC3339),
			"issued_at":  claims.IssuedAt.UTC().Format(time.RFC3339),
			"token_id":   claims.TokenID,
		},
		AuthToken: token,
	})
}

func (s *Server) handleGetAccount(w http.ResponseWriter, r *http.Request, accountID string) {
	acct, err := s.cfg.Auth.Account(r.Context(), accountID)
	if err != nil {
		s.writeAccountError(w, accountID, err, "read account", "could not read the account right now; try again")
		return
	}
	writeData(w, http.StatusOK, viewOf(acct))
}

// writeAccountError answers a failed auth call about the path's account:
// 404 when the account does not exist, otherwise 503 with unavailable,
// logging what was being done.
func (s *Server) writeAccountError(w http.ResponseWriter, accountID string, err error, doing, unavailable string) {
	if errors.Is(err, auth.ErrNotFound) {
		writeError(w, http.StatusNotFound, "account "+accountID+" does not exist")
		return
	}
	s.log.Error(doing+" failed", "account", accountID, "err", err)
	writeError(w, http.StatusServiceUnavailable, unavailable)
}

// handleCreateChild creates a child account under the path's account and
// returns it with its API key (shown only this once).
func (s *Server) handleCreateChild(w http.ResponseWriter, r *http.Request, parentID string) {
	var req struct {
		Name string `json:"name"`
	}
	if !decodeData(w, r, &req) {
		return
	}
	acct, key, err := s.cfg.Auth.CreateAccount(r.Context(), parentID, req.Name)
	if errors.Is(err, auth.ErrInvalidName) {
		writeError(w, http.StatusBadRequest, `"name" is required (1 to 128 characters, no control characters): {"data":{"name":"Support team"}}`)
		return
	}
	if errors.Is(err, auth.ErrNotFound) {
		writeError(w, http.StatusNotFound, "parent account "+parentID+" does not exist")
		return
	}
	if err != nil {
		s.log.Error("create account failed", "parent", parentID, "err", err)
		writeError(w, http.StatusServiceUnavailable, "could not create the account right now; try again")
		return
	}
	s.log.Info("account created", "account", acct.ID, "parent", parentID, "name", acct.Name)
	v := viewOf(acct)
	v.APIKey = key
	writeData(w, http.StatusCreated, v)
}

func (s *Server) handleChildren(w http.ResponseWriter, r *http.Request, accountID string) {
	kids, err := s.cfg.Auth.Children(r.Context(), accountID)
	if err != nil {
		s.writeAccountError(w, accountID, err, "list child accounts", "could not list child accounts right now; try again")
		return
	}
	out := make([]accountView, 0, len(kids))
	for _, k := range kids {
		out = append(out, viewOf(k))
	}
	writeData(w, http.StatusOK, out)
}
