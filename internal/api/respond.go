package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"reflect"
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
	return ok && decodeDataObject(w, raw, dst)
}

// decodeDataObject reads the raw "data" object into dst, refusing fields
// dst does not have. It writes a 400 and returns false when it cannot.
func decodeDataObject(w http.ResponseWriter, raw json.RawMessage, dst any) bool {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var typ *json.UnmarshalTypeError
		if errors.As(err, &typ) {
			typ.Field = withoutEmbedded(reflect.TypeOf(dst).Elem(), typ.Field)
		}
		writeError(w, http.StatusBadRequest, "request data: "+jsonerr.Describe(err, jsonerr.Doc{Name: "data"}))
		return false
	}
	return true
}

// withoutEmbedded is the path of a field as the client wrote it: the Go
// path encoding/json reports (QueueConfig.name) without the names of the
// structs dst embeds (name).
func withoutEmbedded(t reflect.Type, path string) string {
	for t.Kind() == reflect.Struct {
		head, rest, ok := strings.Cut(path, ".")
		f, found := t.FieldByName(head)
		if !ok || !found || !f.Anonymous {
			break
		}
		path, t = rest, f.Type
	}
	return path
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
