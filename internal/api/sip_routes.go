package api

import (
	"errors"
	"net/http"
	"time"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/sipstore"
)

// SIPRegistration is where a recipient's phone is registered.
type SIPRegistration struct {
	Contact   string    `json:"contact"`
	Source    string    `json:"source"`
	Transport string    `json:"transport"`
	ExpiresAt time.Time `json:"expires_at"`
}

// sipCredentialView is a credential as the API shows it: never a hash.
type sipCredentialView struct {
	RecipientID string           `json:"recipient_id"`
	User        string           `json:"user"`
	Realm       string           `json:"realm"`
	Wiretap     bool             `json:"wiretap"`
	CreatedAt   time.Time        `json:"created_at"`
	Password    string           `json:"password,omitempty"`
	Registered  *SIPRegistration `json:"registration"`
}

// sipRoutes registers the telephony configuration: recipients' SIP
// credentials and the numbers that lead to queues.
func (s *Server) sipRoutes(mux *router) {
	const acc = "/v2/accounts/{ACCOUNT_ID}"
	for pattern, h := range map[string]accountHandler{
		"PUT " + acc + "/recipients/{RECIPIENT_ID}/sip_credentials":    s.handlePutSIPCredential,
		"GET " + acc + "/recipients/{RECIPIENT_ID}/sip_credentials":    s.handleGetSIPCredential,
		"DELETE " + acc + "/recipients/{RECIPIENT_ID}/sip_credentials": s.handleDeleteSIPCredential,
		"GET " + acc + "/sip_credentials":                              s.handleListSIPCredentials,
		"PUT " + acc + "/sip_numbers":                                  s.handlePutSIPNumber,
		"GET " + acc + "/sip_numbers":                                  s.handleListSIPNumbers,
		"DELETE " + acc + "/sip_numbers/{NUMBER}":                      s.handleDeleteSIPNumber,
	} {
		mux.HandleFunc(pattern, s.accountScoped(h))
	}
}

func (s *Server) writeSIPError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, sipstore.ErrInvalid):
		writeError(w, http.StatusBadRequest, err.Error())
	case errors.Is(err, sipstore.ErrNotFound):
		writeError(w, http.StatusNotFound, err.Error())
	case errors.Is(err, sipstore.ErrConflict):
		writeError(w, http.StatusConflict, err.Error())
	case r.Context().Err() != nil:
	default:
		s.log.Error("SIP configuration request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		writeError(w, http.StatusServiceUnavailable, "the telephony configuration could not be stored; try again")
	}
}

func (s *Server) credentialView(c sipstore.Credential) sipCredentialView {
	v := sipCredentialView{RecipientID: c.RecipientID, User: c.User, Realm: c.Realm, Wiretap: c.Wiretap, CreatedAt: c.CreatedAt}
	if s.cfg.SIPRegistered != nil {
		if reg, ok := s.cfg.SIPRegistered(c.AccountID, c.RecipientID); ok {
			v.Registered = &reg
		}
	}
	return v
}

func (s *Server) handlePutSIPCredential(w http.ResponseWriter, r *http.Request, accountID string) {
	var req sipstore.NewCredential
	if !decodeOptionalData(w, r, &req) {
		return
	}
	id := r.PathValue("RECIPIENT_ID")
	if _, err := engine.GetRecipient.Call(r.Context(), s.cfg.Engine, accountID, engine.RecipientRef{RecipientID: id}); err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	c, pw, err := s.cfg.SIP.SetCredential(r.Context(), accountID, id, req)
	if err != nil {
		s.writeSIPError(w, r, err)
		return
	}
	v := s.credentialView(c)
	v.Password = pw // shown this once
	writeData(w, http.StatusCreated, v)
}

func (s *Server) handleGetSIPCredential(w http.ResponseWriter, r *http.Request, accountID string) {
	c, ok := s.cfg.SIP.CredentialOf(accountID, r.PathValue("RECIPIENT_ID"))
	if !ok {
		writeError(w, http.StatusNotFound, "recipient "+engineTruncate(r.PathValue("RECIPIENT_ID"))+" has no SIP credentials")
		return
	}
	writeData(w, http.StatusOK, s.credentialView(c))
}

func (s *Server) handleDeleteSIPCredential(w http.ResponseWriter, r *http.Request, accountID string) {
	id := r.PathValue("RECIPIENT_ID")
	if err := s.cfg.SIP.DeleteCredential(r.Context(), accountID, id); err != nil {
		s.writeSIPError(w, r, err)
		return
	}
	writeData(w, http.StatusOK, map[string]string{"recipient_id": id})
}

func (s *Server) handleListSIPCredentials(w http.ResponseWriter, r *http.Request, accountID string) {
	out := []sipCredentialView{}
	for _, c := range s.cfg.SIP.Credentials(accountID) {
		out = append(out, s.credentialView(c))
	}
	writeData(w, http.StatusOK, out)
}

func (s *Server) handlePutSIPNumber(w http.ResponseWriter, r *http.Request, accountID string) {
	var n sipstore.Number
	if !decodeData(w, r, &n) {
		return
	}
	n.AccountID = accountID
	if n.QueueID != "" {
		if _, err := engine.GetQueue.Call(r.Context(), s.cfg.Engine, accountID, engine.QueueRef{QueueID: n.QueueID}); err != nil {
			s.writeEngineError(w, r, err)
			return
		}
	}
	n, err := s.cfg.SIP.SetNumber(r.Context(), n)
	if err != nil {
		s.writeSIPError(w, r, err)
		return
	}
	writeData(w, http.StatusCreated, n)
}

func (s *Server) handleListSIPNumbers(w http.ResponseWriter, r *http.Request, accountID string) {
	ns := s.cfg.SIP.Numbers(accountID)
	if ns == nil {
		ns = []sipstore.Number{}
	}
	writeData(w, http.StatusOK, ns)
}

func (s *Server) handleDeleteSIPNumber(w http.ResponseWriter, r *http.Request, accountID string) {
	n := r.PathValue("NUMBER")
	if err := s.cfg.SIP.DeleteNumber(r.Context(), accountID, n); err != nil {
		s.writeSIPError(w, r, err)
		return
	}
	writeData(w, http.StatusOK, map[string]string{"number": n})
}
