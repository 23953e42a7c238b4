package api

import "net/http"

// handleRotateAPIKey is PUT /v2/accounts/{ACCOUNT_ID}/api_key: the account
// gets a new API key and the old one stops working at once. Tokens already
// issued stay valid until they expire.
func (s *Server) handleRotateAPIKey(w http.ResponseWriter, r *http.Request, accountID string) {
	key, err := s.cfg.Auth.RotateAPIKey(r.Context(), accountID)
	if err != nil {
		s.writeAccountError(w, accountID, err, "rotate api key", "could not rotate the API key right now; the old one still works; try again")
		return
	}
	s.log.Info("api key rotated", "account", accountID)
	writeData(w, http.StatusOK, map[string]string{"account_id": accountID, "api_key": key})
}

// handleRevokeAPIKey is DELETE /v2/accounts/{ACCOUNT_ID}/api_key: no API
// key of the account logs in any more, until PUT issues a new one.
func (s *Server) handleRevokeAPIKey(w http.ResponseWriter, r *http.Request, accountID string) {
	if err := s.cfg.Auth.RevokeAPIKey(r.Context(), accountID); err != nil {
		s.writeAccountError(w, accountID, err, "revoke api key", "could not revoke the API key right now; try again")
		return
	}
	s.log.Info("api key revoked", "account", accountID)
	writeData(w, http.StatusOK, map[string]any{"account_id": accountID, "revoked": true})
}

// handleRotateSigningKey is POST /v2/signing_keys, for the root account
// only: new tokens are signed with a new key while every key whose tokens
// may still be valid keeps verifying, so nobody is logged out.
func (s *Server) handleRotateSigningKey(w http.ResponseWriter, r *http.Request) {
	claims, ok := s.authenticate(w, r, "missing auth token: send the root account's token in the X-Auth-Token header")
	if !ok {
		return
	}
	acct, err := s.cfg.Auth.Account(r.Context(), claims.AccountID)
	if err != nil {
		writeError(w, http.StatusServiceUnavailable, "could not read the token's account right now; try again")
		return
	}
	if acct.ParentID != "" {
		writeError(w, http.StatusForbidden, "only the root account may rotate the token signing key")
		return
	}
	kid, err := s.cfg.Auth.RotateSigningKey(r.Context())
	if err != nil {
		s.log.Error("rotate signing key failed", "err", err)
		writeError(w, http.StatusServiceUnavailable, "could not rotate the signing key right now; the current one stays in use; try again")
		return
	}
	s.log.Info("token signing key rotated", "key_id", kid)
	writeData(w, http.StatusOK, map[string]string{"key_id": kid})
}
