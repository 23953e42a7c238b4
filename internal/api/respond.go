package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/ccevents/ccevents/internal/jsonerr"
)

// maxBodyBytes bounds every request body; events and configuration are small.
const maxBodyBytes = 1 << 20

type envelope struct {
	Status    string `json:"status"`
	Message   string `json:"message,omitempty"`
	Data      any    `json:"data"`
	AuthToken string `json:"auth_token,omitempty"`
	RequestID string `json:"request_id,omitempty"`
}

type errorData struct {
	Errors []string `json:"errors"`
}

// writeData sends a success envelope.
func writeData(w http.ResponseWriter, status int, data any) {
	writeEnvelope(w, status, envelope{Status: "success", Data: data})
}

// writeError sends an error envelope whose message a person can act on.
// Further errors (one per bad field, say) go to data.errors.
func writeError(w http.ResponseWriter, status int, message string, more ...string) {
	writeEnvelope(w, status, errorEnvelope(message, more...))
}

// errorEnvelope is the error answer of every transport (HTTP, NATS ingest).
func errorEnvelope(message string, more ...string) envelope {
	errs := append([]string{message}, more...)
	return envelope{Status: "error", Message: message, Data: errorData{Errors: errs}}
}

func writeEnvelope(w http.ResponseWriter, status int, env envelope) { writeJSON(w, status, env) }

// writeJSON sends v as the JSON body, for answers with more than the
// envelope's fields (a page's paging fields).
func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

// decodeData reads a {"data":{…}} request body into dst. It writes a 400
// (or 413) and returns false when the body is not what is expected.
func decodeData(w http.ResponseWriter, r *http.Request, dst any) bool {
	raw, ok := readDataObject(w, r)
	if !ok {
		return false
	}
	dec := json.NewDecoder(strings.NewReader(string(raw)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		writeError(w, http.StatusBadRequest, "request data: "+jsonerr.Describe(err, jsonerr.Doc{Name: "data"}))
		return false
	}
	return true
}

// readDataObject returns the raw JSON of the body's "data" member, which
// must be an object.
func readDataObject(w http.ResponseWriter, r *http.Request) (json.RawMessage, bool) {
	// The body is read as JSON whatever Content-Type says: curl -d sends
	// form-urlencoded by default, and refusing that helps nobody.
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	if err != nil {
		var tooBig *http.MaxBytesError
		if errors.As(err, &tooBig) {
			writeError(w, http.StatusRequestEntityTooLarge, fmt.Sprintf("request body is larger than %d bytes", maxBodyBytes))
			return nil, false
		}
		if errors.Is(err, os.ErrDeadlineExceeded) {
			bodyTimedOut(r)
			writeError(w, http.StatusRequestTimeout, "the request body did not arrive in time; send it at once after the headers")
			return nil, false
		}
		writeError(w, http.StatusBadRequest, "could not read the request body")
		return nil, false
	}
	if len(strings.TrimSpace(string(body))) == 0 {
		writeError(w, http.StatusBadRequest, `request body is empty; send {"data":{…}}`)
		return nil, false
	}
	var req struct {
		Data json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		writeError(w, http.StatusBadRequest, jsonerr.Describe(err, jsonerr.Doc{Name: "request body", Like: `{"data":{…}}`}))
		return nil, false
	}
	trimmed := strings.TrimSpace(string(req.Data))
	if len(trimmed) == 0 || trimmed == "null" {
		writeError(w, http.StatusBadRequest, `request body must have a "data" object: {"data":{…}}`)
		return nil, false
	}
	if trimmed[0] != '{' {
		writeError(w, http.StatusBadRequest, `"data" must be a JSON object`)
		return nil, false
	}
	return req.Data, true
}
