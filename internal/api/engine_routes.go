package api

import (
	"errors"
	"net/http"
	"strings"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
)

// engineRoutes registers the contact-center engine's resources: queues,
// recipients and their status, calls (for a telephony adapter), wiretaps,
// the account snapshot and its statistics. Each handler decodes, calls the engine, and
// maps its refusals to 400/404/409/503 with the engine's sentence.
func (s *Server) engineRoutes(mux *router) {
	const acc = "/v2/accounts/{ACCOUNT_ID}"
	routes := []struct {
		pattern string
		h       accountHandler
	}{
		{"PUT " + acc + "/queues", s.handleCreateQueue},
		{"GET " + acc + "/queues", s.handleListQueues},
		{"GET " + acc + "/queues/{QUEUE_ID}", s.handleGetQueue},
		{"POST " + acc + "/queues/{QUEUE_ID}", s.handleUpdateQueue},
		{"DELETE " + acc + "/queues/{QUEUE_ID}", s.handleDeleteQueue},
		{"PUT " + acc + "/recipients", s.handleCreateRecipient},
		{"GET " + acc + "/recipients", s.handleListRecipients},
		{"GET " + acc + "/recipients/{RECIPIENT_ID}", s.handleGetRecipient},
		{"POST " + acc + "/recipients/{RECIPIENT_ID}", s.handleUpdateRecipient},
		{"DELETE " + acc + "/recipients/{RECIPIENT_ID}", s.handleDeleteRecipient},
		{"POST " + acc + "/recipients/{RECIPIENT_ID}/status", s.handleRecipientStatus},
		{"POST " + acc + "/recipients/{RECIPIENT_ID}/sync", s.handleRecipientSync},
		{"POST " + acc + "/recipients/{RECIPIENT_ID}/external_call", s.handleExternalCall},
		{"POST " + acc + "/calls", s.handleArrive},
		{"POST " + acc + "/calls/{SESSION_ID}/hangup", s.handleHangup},
		{"POST " + acc + "/calls/{SESSION_ID}/accept", s.handleAccept},
		{"POST " + acc + "/calls/{SESSION_ID}/reject", s.handleReject},
		{"POST " + acc + "/calls/{SESSION_ID}/finalize", s.handleFinalize},
		{"POST " + acc + "/wiretaps", s.handleWiretap},
		{"GET " + acc + "/qubicle_state", s.handleSnapshot},
		{"GET " + acc + "/qubicle_stats", s.handleStats},
	}
	for _, rt := range routes {
		mux.HandleFunc(rt.pattern, s.accountScoped(rt.h))
	}
}

// writeEngineError answers with the status an engine refusal stands for.
func (s *Server) writeEngineError(w http.ResponseWriter, r *http.Request, err error) {
	var ee *engine.Error
	if errors.As(err, &ee) {
		status := map[engine.Kind]int{
			engine.KindInvalid:     http.StatusBadRequest,
			engine.KindNotFound:    http.StatusNotFound,
			engine.KindConflict:    http.StatusConflict,
			engine.KindUnavailable: http.StatusServiceUnavailable,
		}[ee.Kind]
		if status == 0 {
			status = http.StatusInternalServerError
		}
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		writeError(w, status, ee.Message)
		return
	}
	if r.Context().Err() != nil {
		return // the client went away; nobody reads an answer
	}
	s.log.Error("engine request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error; the request may not have been applied")
}

// decodeOptionalData is decodeData for requests whose body may be left out.
func decodeOptionalData(w http.ResponseWriter, r *http.Request, dst any) bool {
	if r.ContentLength == 0 {
		return true
	}
	return decodeData(w, r, dst)
}

func (s *Server) handleCreateQueue(w http.ResponseWriter, r *http.Request, accountID string) {
	var cfg engine.QueueConfig
	if !decodeData(w, r, &cfg) {
		return
	}
	q, err := s.cfg.Engine.CreateQueue(r.Context(), accountID, cfg)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeData(w, http.StatusCreated, q)
}

func (s *Server) handleListQueues(w http.ResponseWriter, r *http.Request, accountID string) {
	qs, err := s.cfg.Engine.Queues(r.Context(), accountID)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	if qs == nil {
		qs = []engine.Queue{}
	}
	writeData(w, http.StatusOK, qs)
}

func (s *Server) handleGetQueue(w http.ResponseWriter, r *http.Request, accountID string) {
	q, err := s.cfg.Engine.Queue(r.Context(), accountID, r.PathValue("QUEUE_ID"))
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeData(w, http.StatusOK, q)
}

func (s *Server) handleUpdateQueue(w http.ResponseWriter, r *http.Request, accountID string) {
	var cfg engine.QueueConfig
	if !decodeData(w, r, &cfg) {
		return
	}
	q, err := s.cfg.Engine.UpdateQueue(r.Context(), accountID, r.PathValue("QUEUE_ID"), cfg)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeData(w, http.StatusOK, q)
}

func (s *Server) handleDeleteQueue(w http.ResponseWriter, r *http.Request, accountID string) {
	id := r.PathValue("QUEUE_ID")
	if err := s.cfg.Engine.DeleteQueue(r.Context(), accountID, id); err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeData(w, http.StatusOK, map[string]string{"id": id})
}

func (s *Server) handleCreateRecipient(w http.ResponseWriter, r *http.Request, accountID string) {
	var cfg engine.RecipientConfig
	if !decodeData(w, r, &cfg) {
		return
	}
	rec, err := s.cfg.Engine.CreateRecipient(r.Context(), accountID, cfg)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeData(w, http.StatusCreated, rec)
}

func (s *Server) handleListRecipients(w http.ResponseWriter, r *http.Request, accountID string) {
	rs, err := s.cfg.Engine.Recipients(r.Context(), accountID)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	if rs == nil {
		rs = []engine.Recipient{}
	}
	writeData(w, http.StatusOK, rs)
}

func (s *Server) handleGetRecipient(w http.ResponseWriter, r *http.Request, accountID string) {
	rec, err := s.cfg.Engine.Recipient(r.Context(), accountID, r.PathValue("RECIPIENT_ID"))
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeData(w, http.StatusOK, rec)
}

func (s *Server) handleUpdateRecipient(w http.ResponseWriter, r *http.Request, accountID string) {
	var cfg engine.RecipientConfig
	if !decodeData(w, r, &cfg) {
		return
	}
	rec, err := s.cfg.Engine.UpdateRecipient(r.Context(), accountID, r.PathValue("RECIPIENT_ID"), cfg)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeData(w, http.StatusOK, rec)
}

func (s *Server) handleDeleteRecipient(w http.ResponseWriter, r *http.Request, accountID string) {
	id := r.PathValue("RECIPIENT_ID")
	if err := s.cfg.Engine.DeleteRecipient(r.Context(), accountID, id); err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeData(w, http.StatusOK, map[string]string{"id": id})
}

func (s *Server) handleRecipientStatus(w http.ResponseWriter, r *http.Request, accountID string) {
	var req engine.StatusRequest
	if !decodeData(w, r, &req) {
		return
	}
	rec, err := s.cfg.Engine.SetStatus(r.Context(), accountID, r.PathValue("RECIPIENT_ID"), req)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeData(w, http.StatusOK, rec)
}

func (s *Server) handleRecipientSync(w http.ResponseWriter, r *http.Request, accountID string) {
	id := r.PathValue("RECIPIENT_ID")
	if err := s.cfg.Engine.Sync(r.Context(), accountID, id); err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	rec, err := s.cfg.Engine.Recipient(r.Context(), accountID, id)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeData(w, http.StatusOK, rec)
}

func (s *Server) handleExternalCall(w http.ResponseWriter, r *http.Request, accountID string) {
	var req struct {
		Action    string          `json:"action"`
		SessionID string          `json:"session_id"`
		Direction event.Direction `json:"direction"`
		Number    string          `json:"number"`
		HangupBy  event.Party     `json:"hangup_by"`
	}
	if !decodeData(w, r, &req) {
		return
	}
	id := r.PathValue("RECIPIENT_ID")
	switch req.Action {
	case "start":
		call, err := s.cfg.Engine.StartExternalCall(r.Context(), accountID, id, engine.ExternalCall{SessionID: req.SessionID, Direction: req.Direction, Number: req.Number})
		if err != nil {
			s.writeEngineError(w, r, err)
			return
		}
		writeData(w, http.StatusCreated, call)
	case "end":
		if err := s.cfg.Engine.EndExternalCall(r.Context(), accountID, id, req.HangupBy); err != nil {
			s.writeEngineError(w, r, err)
			return
		}
		writeData(w, http.StatusOK, map[string]string{"recipient_id": id, "state": engine.CallEnded})
	default:
		writeError(w, http.StatusBadRequest, `action must be "start" or "end", got "`+engineTruncate(req.Action)+`"`)
	}
}

func (s *Server) handleArrive(w http.ResponseWriter, r *http.Request, accountID string) {
	var req engine.Arrival
	if !decodeData(w, r, &req) {
		return
	}
	call, err := s.cfg.Engine.Arrive(r.Context(), accountID, req)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeData(w, http.StatusCreated, call)
}

func (s *Server) handleHangup(w http.ResponseWriter, r *http.Request, accountID string) {
	var req engine.CallEnd
	if !decodeOptionalData(w, r, &req) {
		return
	}
	id := r.PathValue("SESSION_ID")
	if err := s.cfg.Engine.EndCall(r.Context(), accountID, id, req); err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeData(w, http.StatusOK, map[string]string{"session_id": id})
}

func (s *Server) handleAccept(w http.ResponseWriter, r *http.Request, accountID string) {
	var req struct {
		RecipientID string `json:"recipient_id"`
	}
	if !decodeOptionalData(w, r, &req) {
		return
	}
	id := r.PathValue("SESSION_ID")
	if err := s.cfg.Engine.Accept(r.Context(), accountID, id, req.RecipientID); err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeData(w, http.StatusOK, map[string]string{"session_id": id, "state": engine.CallConnected})
}

func (s *Server) handleReject(w http.ResponseWriter, r *http.Request, accountID string) {
	var req struct {
		RecipientID string             `json:"recipient_id"`
		Reason      event.RejectReason `json:"reason"`
	}
	if !decodeOptionalData(w, r, &req) {
		return
	}
	id := r.PathValue("SESSION_ID")
	if err := s.cfg.Engine.Reject(r.Context(), accountID, id, req.RecipientID, req.Reason); err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeData(w, http.StatusOK, map[string]string{"session_id": id, "state": engine.CallWaiting})
}

func (s *Server) handleFinalize(w http.ResponseWriter, r *http.Request, accountID string) {
	var req engine.Finalization
	if !decodeOptionalData(w, r, &req) {
		return
	}
	id := r.PathValue("SESSION_ID")
	if err := s.cfg.Engine.Finalize(r.Context(), accountID, id, req); err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeData(w, http.StatusOK, map[string]string{"session_id": id})
}

func (s *Server) handleWiretap(w http.ResponseWriter, r *http.Request, accountID string) {
	var req struct {
		Action string `json:"action"`
		engine.Wiretap
	}
	if !decodeData(w, r, &req) {
		return
	}
	var err error
	switch req.Action {
	case "start":
		err = s.cfg.Engine.StartWiretap(r.Context(), accountID, req.Wiretap)
	case "stop":
		err = s.cfg.Engine.StopWiretap(r.Context(), accountID, req.Wiretap)
	default:
		writeError(w, http.StatusBadRequest, `action must be "start" or "stop", got "`+engineTruncate(req.Action)+`"`)
		return
	}
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	mode := req.Mode
	if mode == "" {
		mode = event.WiretapListen
	}
	writeData(w, http.StatusOK, map[string]string{
		"recipient_id": req.RecipientID, "supervisor_id": req.SupervisorID, "mode": string(mode),
		"state": map[string]string{"start": "monitoring", "stop": "stopped"}[req.Action],
	})
}

func (s *Server) handleSnapshot(w http.ResponseWriter, r *http.Request, accountID string) {
	snap, err := s.cfg.Engine.Snapshot(r.Context(), accountID)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeData(w, http.StatusOK, snap)
}

// handleStats is GET /qubicle_stats: the account's and every queue's
// statistics, each queue with its trend over the last hour.
func (s *Server) handleStats(w http.ResponseWriter, r *http.Request, accountID string) {
	st, err := s.cfg.Engine.Stats(r.Context(), accountID)
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	writeData(w, http.StatusOK, st)
}

// engineTruncate keeps a user-supplied value short enough to quote in an error.
func engineTruncate(v string) string {
	if len(v) > 40 {
		return strings.ToValidUTF8(v[:40], "") + "…"
	}
	return v
}
