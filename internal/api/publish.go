package api

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/jsonerr"
)

// publishRequest is what a producer sends, over REST or NATS: the routing
// key and the payload. Correlation fields the producer leaves out
// (account_id, event, event_id, timestamps, the entity id) are filled in.
type publishRequest struct {
	RoutingKey string          `json:"routing_key"`
	Payload    json.RawMessage `json:"payload"`
}

type publishResult struct {
	RoutingKey string `json:"routing_key"`
	EventID    string `json:"event_id"`
	Sequence   uint64 `json:"sequence"`
}

// publishError is a refusal a producer can act on; status is the HTTP code.
// mistakes lists every mistake when there are several.
type publishError struct {
	status   int
	message  string
	mistakes []string
}

func (e *publishError) Error() string { return e.message }

// envelope is the refusal as every transport answers it: message, and
// data.errors listing each mistake.
func (e *publishError) envelope() envelope {
	if len(e.mistakes) == 0 {
		return errorEnvelope(e.message)
	}
	return envelope{Status: "error", Message: e.message, Data: errorData{Errors: e.mistakes}}
}

// invalidEvent refuses a payload that does not fit the catalogue, with
// every mistake Validate found.
func invalidEvent(err error) *publishError {
	perr := refuse(http.StatusBadRequest, "%v", err)
	var all event.ValidationErrors
	if errors.As(err, &all) {
		for _, e := range all {
			perr.mistakes = append(perr.mistakes, e.Error())
		}
	}
	return perr
}

func refuse(status int, format string, args ...any) *publishError {
	return &publishError{status: status, message: fmt.Sprintf(format, args...)}
}

// publish validates one event for accountID and stores it on the bus. Every
// publishing path (REST, NATS ingest) goes through here.
func (s *Server) publish(ctx context.Context, accountID string, req publishRequest) (publishResult, error) {
	family, subjAccount, entity, name, err := event.ParseSubject(req.RoutingKey)
	if err != nil {
		return publishResult{}, refuse(http.StatusBadRequest, "%v", err) // names the routing_key field
	}
	if subjAccount != accountID {
		return publishResult{}, refuse(http.StatusForbidden, "routing_key names account %s, but this request is for account %s", subjAccount, accountID)
	}
	if family == event.Stats {
		return publishResult{}, refuse(http.StatusBadRequest, "qubicle.stats events are computed by the engine from the account's own events and cannot be published; read them with GET /v2/accounts/%s/qubicle_stats or subscribe to qubicle.stats.%s.*", accountID, accountID)
	}
	payload, eventID, perr := completePayload(req.Payload, family, accountID, entity, name, s.now())
	if perr != nil {
		return publishResult{}, perr
	}
	if _, _, err := event.Validate(req.RoutingKey, payload); err != nil {
		return publishResult{}, invalidEvent(err)
	}
	seq, err := s.cfg.Publisher.Publish(ctx, req.RoutingKey, payload, eventID)
	if err != nil {
		s.log.Error("publish failed", "routing_key", req.RoutingKey, "err", err)
		return publishResult{}, refuse(http.StatusServiceUnavailable, "the event could not be stored right now and was not published; retry with the same event_id")
	}
	return publishResult{RoutingKey: req.RoutingKey, EventID: eventID, Sequence: seq}, nil
}

// completePayload fills the correlation fields a producer may leave out,
// and returns the payload with its event id.
func completePayload(raw json.RawMessage, family event.Family, account, entity, name string, now time.Time) ([]byte, string, *publishError) {
	fields := map[string]any{}
	trimmed := strings.TrimSpace(string(raw))
	if trimmed != "" && trimmed != "null" {
		if trimmed[0] != '{' {
			return nil, "", refuse(http.StatusBadRequest, `"payload" must be a JSON object`)
		}
		dec := json.NewDecoder(strings.NewReader(trimmed))
		dec.UseNumber()
		if err := dec.Decode(&fields); err != nil {
			return nil, "", refuse(http.StatusBadRequest, "%s", jsonerr.Describe(err, jsonerr.Doc{Name: "payload"}))
		}
	}
	setDefault := func(k string, v any) {
		if _, ok := fields[k]; !ok {
			fields[k] = v
		}
	}
	setDefault("account_id", account)
	setDefault("event", string(family)+"."+name)
	setDefault("event_id", newEventID())
	ts := now.UTC()
	setDefault("timestamp", ts.Format("2006-01-02T15:04:05.000Z07:00"))
	setDefault("timestamp_ms", ts.UnixMilli())
	switch family {
	case event.Queue:
		setDefault("queue_id", entity)
	case event.Recipient:
		setDefault("recipient_id", entity)
	case event.Session:
		setDefault("session_id", entity)
	}
	out, err := json.Marshal(fields)
	if err != nil {
		return nil, "", refuse(http.StatusBadRequest, "payload cannot be encoded: %v", err)
	}
	// Not a string only when the producer sent one; Validate refuses that.
	eventID, _ := fields["event_id"].(string)
	return out, eventID, nil
}

func newEventID() string {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// handlePublish is POST /v2/accounts/{ACCOUNT_ID}/events.
func (s *Server) handlePublish(w http.ResponseWriter, r *http.Request, accountID string) {
	var req publishRequest
	if !decodeData(w, r, &req) {
		return
	}
	if req.RoutingKey == "" {
		writeError(w, http.StatusBadRequest, `"routing_key" is required: {"data":{"routing_key":"qubicle.queue.ACCOUNT_ID.QUEUE_ID.join","payload":{…}}}`)
		return
	}
	res, err := s.publish(r.Context(), accountID, req)
	var perr *publishError
	if errors.As(err, &perr) {
		writeEnvelope(w, perr.status, perr.envelope())
		return
	}
	if err != nil {
		writeError(w, http.StatusInternalServerError, "the event was not published")
		return
	}
	writeData(w, http.StatusCreated, res)
}
