package api

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"

	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/socketlist"
)

// SocketLister lists the websockets of every gateway; *socketlist.Gatherer
// satisfies it.
type SocketLister interface {
	List(ctx context.Context, q socketlist.Query, opt socketlist.Options) (socketlist.Page, error)
}

// websocketRoutes registers Kazoo's socket listing: the bindings clients
// may subscribe to, and, when a lister is configured, the sockets of an
// account and its descendants across the cluster.
func (s *Server) websocketRoutes(mux *router) {
	mux.HandleFunc("GET /v2/websockets", s.handleAvailableBindings)
	if s.cfg.Sockets == nil {
		return
	}
	mux.HandleFunc("GET /v2/accounts/{ACCOUNT_ID}/websockets", s.accountScoped(s.handleListWebsockets))
	mux.HandleFunc("GET /v2/accounts/{ACCOUNT_ID}/websockets/{SOCKET_ID}", s.accountScoped(s.handleGetWebsocket))
}

// handleAvailableBindings lists, per family, the bindings clients may
// subscribe with: the short one, the account-wide one, and one per event.
func (s *Server) handleAvailableBindings(w http.ResponseWriter, r *http.Request) {
	if _, ok := s.authenticate(w, r, "missing auth token: send it in the X-Auth-Token header (get one with PUT /v2/api_auth)"); !ok {
		return
	}
	families := map[string][]string{}
	for _, spec := range event.Catalogue() {
		f := string(spec.Family)
		if families[f] == nil {
			families[f] = []string{"qubicle." + f, "qubicle." + f + ".{ACCOUNT_ID}.*"}
		}
		if rk := spec.RoutingKey(); !slices.Contains(families[f], rk) {
			families[f] = append(families[f], rk)
		}
	}
	writeData(w, http.StatusOK, families)
}

// websocketPage is the answer to a socket listing: Kazoo's envelope with its
// paging fields, the gateways that answered and, with allow_partial=true,
// whether some did not.
type websocketPage struct {
	Status          string              `json:"status"`
	Data            []socketlist.Socket `json:"data"`
	PageSize        int                 `json:"page_size"`
	StartKey        string              `json:"start_key,omitempty"`
	NextStartKey    string              `json:"next_start_key,omitempty"`
	Gateways        []string            `json:"gateways"`
	Partial         bool                `json:"partial"`
	MissingGateways []string            `json:"missing_gateways,omitempty"`
}

// missingGatewaysData is the data of the error answering a listing that
// some gateways did not answer in time.
type missingGatewaysData struct {
	Errors          []string `json:"errors"`
	MissingGateways []string `json:"missing_gateways"`
	Gateways        []string `json:"gateways"`
}

func (s *Server) handleListWebsockets(w http.ResponseWriter, r *http.Request, accountID string) {
	q := socketlist.Query{AccountID: accountID, StartKey: r.URL.Query().Get("start_key"), Limit: socketlist.DefaultPageSize}
	if v := r.URL.Query().Get("page_size"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > socketlist.MaxPageSize {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("page_size must be a whole number from 1 to %d, got %q; page on with start_key=<next_start_key>", socketlist.MaxPageSize, v))
			return
		}
		q.Limit = n
	}
	if q.StartKey != "" && !validSocketID(q.StartKey) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("start_key must be a next_start_key of an earlier page (32 lowercase hex characters), got %q", q.StartKey))
		return
	}
	var opt socketlist.Options
	if v := r.URL.Query().Get("allow_partial"); v != "" {
		allow, err := strconv.ParseBool(v)
		if err != nil {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("allow_partial must be true or false, got %q", v))
			return
		}
		opt.AllowPartial = allow
	}
	page, ok := s.listSockets(w, r, q, opt)
	if !ok {
		return
	}
	writeJSON(w, http.StatusOK, websocketPage{
		Status: "success", Data: page.Sockets, PageSize: len(page.Sockets),
		StartKey: q.StartKey, NextStartKey: page.NextStartKey, Gateways: page.Gateways,
		Partial: len(page.Missing) > 0, MissingGateways: page.Missing,
	})
}

func (s *Server) handleGetWebsocket(w http.ResponseWriter, r *http.Request, accountID string) {
	id := r.PathValue("SOCKET_ID")
	if !validSocketID(id) {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("socket id must be a websocket_session_id from the listing (32 lowercase hex characters), got %q", id))
		return
	}
	page, ok := s.listSockets(w, r, socketlist.Query{AccountID: accountID, SocketID: id, Limit: 1}, socketlist.Options{})
	if !ok {
		return
	}
	if len(page.Sockets) == 0 {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no websocket %s among the sockets of account %s and its descendants; it may have closed (list them with GET /v2/accounts/%s/websockets)", id, accountID, accountID))
		return
	}
	writeData(w, http.StatusOK, page.Sockets[0])
}

// listSockets asks the gateways, answering the request itself when that
// fails.
func (s *Server) listSockets(w http.ResponseWriter, r *http.Request, q socketlist.Query, opt socketlist.Options) (socketlist.Page, bool) {
	page, err := s.cfg.Sockets.List(r.Context(), q, opt)
	var (
		gerr    *socketlist.GatewayError
		missing *socketlist.MissingError
		tooMany *socketlist.TooManyGatewaysError
	)
	switch {
	case err == nil:
		return page, true
	case r.Context().Err() != nil:
		// The client went away; nobody reads an answer.
	case errors.As(err, &missing):
		w.Header().Set("Retry-After", "1")
		writeEnvelope(w, http.StatusGatewayTimeout, envelope{Status: "error", Message: missing.Error(),
			Data: missingGatewaysData{Errors: []string{missing.Error()}, MissingGateways: missing.Missing, Gateways: missing.Answered}})
	case errors.As(err, &gerr):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, gerr.Error())
	case errors.As(err, &tooMany):
		writeError(w, http.StatusServiceUnavailable, tooMany.Error()+"; run fewer, larger gateways")
	case errors.Is(err, socketlist.ErrRegistryUnavailable):
		w.Header().Set("Retry-After", "1")
		writeError(w, http.StatusServiceUnavailable, err.Error())
	default:
		s.log.Error("websocket listing failed", "account", q.AccountID, "err", err)
		writeError(w, http.StatusServiceUnavailable, "could not ask the websocket gateways right now; try again")
	}
	return socketlist.Page{}, false
}

// validSocketID reports whether id has the form of a socket id.
func validSocketID(id string) bool {
	if len(id) != 32 {
		return false
	}
	for i := 0; i < len(id); i++ {
		if c := id[i]; !('0' <= c && c <= '9' || 'a' <= c && c <= 'f') {
			return false
		}
	}
	return true
}
