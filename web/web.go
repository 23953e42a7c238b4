package web

import (
	"bytes"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io/fs"
	"mime"
	"net/http"
	"path"
	"time"
)

//go:embed static
var static embed.FS

// asset is one embedded file, ready to serve.
type asset struct {
	body        []byte
	contentType string
	etag        string
}

// APIHandler serves the browser pages on the REST API's port: "/" (an
// index), "/wallboard" with its assets under "/wallboard/", and
// "/client/ccevents.js". Any other path gets the API's JSON 404, so it can
// be mounted as the API's fallback.
func APIHandler() http.Handler {
	files := map[string]string{
		"/":                        "static/index.html",
		"/wallboard":               "static/wallboard/index.html",
		"/wallboard/":              "static/wallboard/index.html",
		"/wallboard/wallboard.js":  "static/wallboard/wallboard.js",
		"/wallboard/wallboard.css": "static/wallboard/wallboard.css",
		"/client/ccevents.js":      "static/client/ccevents.js",
	}
	return newHandler(files)
}

// GatewayHandler serves the plain HTTP requests that reach the websocket
// gateway's port: "/client/ccevents.js", so that a page anywhere can
// import the client from the gateway it talks to. Anything else gets 404.
func GatewayHandler() http.Handler {
	return newHandler(map[string]string{"/client/ccevents.js": "static/client/ccevents.js"})
}

type handler struct{ assets map[string]asset }

func newHandler(files map[string]string) *handler {
	h := &handler{assets: make(map[string]asset, len(files))}
	for route, name := range files {
		body, err := fs.ReadFile(static, name)
		if err != nil {
			// The set of files is fixed at build time; a missing one is a
			// bug caught by the package's tests, never a runtime condition.
			panic(fmt.Sprintf("web: embedded file %s is missing: %v", name, err))
		}
		sum := sha256.Sum256(body)
		ct := mime.TypeByExtension(path.Ext(name))
		switch path.Ext(name) {
		case ".js":
			ct = "text/javascript; charset=utf-8"
		case ".html":
			ct = "text/html; charset=utf-8"
		case ".css":
			ct = "text/css; charset=utf-8"
		}
		h.assets[route] = asset{body: body, contentType: ct, etag: `"` + hex.EncodeToString(sum[:8]) + `"`}
	}
	return h
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	a, ok := h.assets[r.URL.Path]
	if !ok {
		notFound(w, r)
		return
	}
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("%s is read-only: use GET", r.URL.Path))
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("ETag", a.etag)
	// Revalidate every time: the files change with the binary, and a
	// wallboard left open for weeks must pick up a new version on reload.
	hd.Set("Cache-Control", "no-cache")
	hd.Set("X-Content-Type-Options", "nosniff")
	switch path.Ext(r.URL.Path) {
	case ".js":
		// Module scripts are fetched with CORS: let pages on other origins
		// import the client.
		hd.Set("Access-Control-Allow-Origin", "*")
	case ".css":
	default:
		hd.Set("Content-Security-Policy", "default-src 'self'; connect-src 'self' ws: wss: http: https:; img-src 'self' data:; object-src 'none'; base-uri 'none'; form-action 'self'")
		hd.Set("Referrer-Policy", "no-referrer")
	}
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(a.body))
}

// notFound answers like the REST API does, since this handler is its
// fallback for every path it does not own.
func notFound(w http.ResponseWriter, r *http.Request) {
	writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
}

func writeError(w http.ResponseWriter, status int, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(map[string]any{
		"status": "error", "message": msg, "data": map[string]any{"errors": []string{msg}},
	})
}
