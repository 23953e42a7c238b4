package web

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

func get(t *testing.T, h http.Handler, method, path string, hdr map[string]string) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(method, path, nil)
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

func TestAPIHandlerServesPagesAndClient(t *testing.T) {
	h := APIHandler()
	for _, tc := range []struct {
		path, contentType, contains string
	}{
		{"/", "text/html; charset=utf-8", `href="/wallboard"`},
		{"/wallboard", "text/html; charset=utf-8", "/wallboard/wallboard.js"},
		{"/wallboard/", "text/html; charset=utf-8", "/wallboard/wallboard.js"},
		{"/wallboard/wallboard.js", "text/javascript; charset=utf-8", `from "/client/ccevents.js"`},
		{"/wallboard/wallboard.css", "text/css; charset=utf-8", ".tile"},
		{"/client/ccevents.js", "text/javascript; charset=utf-8", "export class CCEvents"},
	} {
		t.Run(tc.path, func(t *testing.T) {
			rec := get(t, h, http.MethodGet, tc.path, nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("GET %s: status %d, want 200", tc.path, rec.Code)
			}
			if ct := rec.Header().Get("Content-Type"); ct != tc.contentType {
				t.Errorf("GET %s: Content-Type %q, want %q", tc.path, ct, tc.contentType)
			}
			if !strings.Contains(rec.Body.String(), tc.contains) {
				t.Errorf("GET %s: body does not contain %q", tc.path, tc.contains)
			}
			if rec.Header().Get("ETag") == "" || rec.Header().Get("Cache-Control") != "no-cache" {
				t.Errorf("GET %s: want an ETag and Cache-Control no-cache, got %q and %q", tc.path, rec.Header().Get("ETag"), rec.Header().Get("Cache-Control"))
			}
		})
	}
}

func TestPagesLinkOnlyToServedAssets(t *testing.T) {
	h := APIHandler()
	ref := regexp.MustCompile(`(?:src|href)="(/[^"]*)"|from "(/[^"]+)"`)
	for _, page := range []string{"/", "/wallboard", "/wallboard/wallboard.js"} {
		body := get(t, h, http.MethodGet, page, nil).Body.String()
		for _, m := range ref.FindAllStringSubmatch(body, -1) {
			target := m[1] + m[2]
			if strings.HasPrefix(target, "/healthz") || strings.HasPrefix(target, "/metrics") {
				continue // served by the REST API itself
			}
			if rec := get(t, h, http.MethodGet, target, nil); rec.Code != http.StatusOK {
				t.Errorf("%s links to %s, which answers %d", page, target, rec.Code)
			}
		}
	}
}

func TestClientModuleMayBeImportedFromOtherOrigins(t *testing.T) {
	for name, h := range map[string]http.Handler{"api": APIHandler(), "gateway": GatewayHandler()} {
		rec := get(t, h, http.MethodGet, "/client/ccevents.js", map[string]string{"Origin": "http://elsewhere.example"})
		if rec.Code != http.StatusOK || rec.Header().Get("Access-Control-Allow-Origin") != "*" {
			t.Errorf("%s: GET /client/ccevents.js: status %d, Access-Control-Allow-Origin %q; want 200 and *",
				name, rec.Code, rec.Header().Get("Access-Control-Allow-Origin"))
		}
	}
}

func TestUnknownPathGetsJSONNotFound(t *testing.T) {
	for name, h := range map[string]http.Handler{"api": APIHandler(), "gateway": GatewayHandler()} {
		for _, path := range []string{"/nope", "/wallboard/../../etc/passwd", "/client/", "/wallboard/index.html"} {
			rec := get(t, h, http.MethodGet, path, nil)
			if rec.Code != http.StatusNotFound {
				t.Errorf("%s: GET %s: status %d, want 404", name, path, rec.Code)
				continue
			}
			var env struct {
				Status  string `json:"status"`
				Message string `json:"message"`
				Data    struct {
					Errors []string `json:"errors"`
				} `json:"data"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &env); err != nil || env.Status != "error" || !strings.Contains(env.Message, "no such endpoint") || len(env.Data.Errors) != 1 {
				t.Errorf("%s: GET %s: body %s is not the API's error envelope", name, path, rec.Body)
			}
		}
	}
	if rec := get(t, GatewayHandler(), http.MethodGet, "/wallboard", nil); rec.Code != http.StatusNotFound {
		t.Errorf("gateway: GET /wallboard: status %d, want 404 (the wallboard lives on the API port)", rec.Code)
	}
}

func TestWritesAreRefused(t *testing.T) {
	rec := get(t, APIHandler(), http.MethodPost, "/wallboard", nil)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Fatalf("POST /wallboard: status %d, Allow %q; want 405 and GET, HEAD", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestUnchangedAssetAnswersNotModified(t *testing.T) {
	h := APIHandler()
	etag := get(t, h, http.MethodGet, "/client/ccevents.js", nil).Header().Get("ETag")
	rec := get(t, h, http.MethodGet, "/client/ccevents.js", map[string]string{"If-None-Match": etag})
	if rec.Code != http.StatusNotModified || rec.Body.Len() != 0 {
		t.Fatalf("GET with If-None-Match %s: status %d with %d bytes, want 304 and no body", etag, rec.Code, rec.Body.Len())
	}
}

func TestWallboardPageForbidsForeignScripts(t *testing.T) {
	csp := get(t, APIHandler(), http.MethodGet, "/wallboard", nil).Header().Get("Content-Security-Policy")
	if !strings.Contains(csp, "default-src 'self'") || strings.Contains(csp, "unsafe-inline") {
		t.Fatalf("wallboard Content-Security-Policy %q: want default-src 'self' and no unsafe-inline", csp)
	}
}
