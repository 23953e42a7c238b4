package api_test

import (
	"bytes"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	legacyrouter "github.com/getkin/kin-openapi/routers/legacy"
)

// openAPIPath is the document every REST route must be in.
const openAPIPath = "../../docs/openapi.yaml"

func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	doc, err := openapi3.NewLoader().LoadFromFile(openAPIPath)
	if err != nil {
		t.Fatalf("load docs/openapi.yaml: %v", err)
	}
	if err := doc.Validate(t.Context()); err != nil {
		t.Fatalf("docs/openapi.yaml is not a valid OpenAPI document: %v", err)
	}
	return doc
}

// documented lists the operations of the document as "METHOD /path".
func documented(doc *openapi3.T) []string {
	var out []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

func TestOpenAPIDocumentsEveryRouteOfTheServerAndNoOther(t *testing.T) {
	doc := loadOpenAPI(t)
	f := newEngineFixture(t)
	served := f.api.Routes()
	inDoc := documented(doc)
	for _, r := range served {
		if !slices.Contains(inDoc, r) {
			t.Errorf("route %q is served but missing from docs/openapi.yaml: add it under paths (with its request, responses and error shapes)", r)
		}
	}
	for _, d := range inDoc {
		if !slices.Contains(served, d) {
			t.Errorf("docs/openapi.yaml documents %q, which the server does not serve", d)
		}
	}
	if len(served) < 31 {
		t.Errorf("the server lists only %d routes", len(served))
	}
}

func TestOpenAPIPassesRedoclyLint(t *testing.T) {
	redocly, _ := filepath.Abs("../../tools/node_modules/.bin/redocly")
	if _, err := os.Stat(redocly); err != nil {
		msg := "redocly is not installed: run scripts/install-test-deps.sh"
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	cmd := exec.Command(redocly, "lint", "--config", "../../tools/redocly.yaml", openAPIPath, "--format=stylish")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("redocly lint docs/openapi.yaml: %v\n%s", err, out)
	}
}

// validator checks real answers of the server against the document, and
// remembers which operations it saw answered with which status.
type validator struct {
	t      *testing.T
	router routers.Router
	mu     sync.Mutex
	seen   map[string][]int // "METHOD /path" -> statuses
}

func newValidator(t *testing.T, doc *openapi3.T, serverURL string) *validator {
	doc.Servers = openapi3.Servers{{URL: serverURL}}
	router, err := legacyrouter.NewRouter(doc)
	if err != nil {
		t.Fatal(err)
	}
	return &validator{t: t, router: router, seen: map[string][]int{}}
}

// do sends one request; when valid is set the request must fit the
// document too (requests that are wrong on purpose are not checked).
// The answer must always fit.
func (v *validator) do(method, url, token, body string, valid bool) (int, []byte) {
	t := v.t
	t.Helper()
	req := newRequest(t, method, url, token, body)
	route, params, err := v.router.FindRoute(req)
	if err != nil {
		t.Fatalf("%s %s is not in docs/openapi.yaml: %v", method, req.URL.Path, err)
	}
	in := &openapi3filter.RequestValidationInput{Request: req, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true}}
	if valid {
		check, _ := http.NewRequest(method, url, strings.NewReader(body))
		check.Header = req.Header
		in.Request = check
		if err := openapi3filter.ValidateRequest(t.Context(), in); err != nil {
			t.Errorf("%s %s: the request does not fit docs/openapi.yaml: %v", method, req.URL.Path, err)
		}
		in.Request = req
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	out := &openapi3filter.ResponseValidationInput{RequestValidationInput: in, Status: resp.StatusCode, Header: resp.Header,
		Body: io.NopCloser(bytes.NewReader(raw)), Options: &openapi3filter.Options{IncludeResponseStatus: true}}
	if err := openapi3filter.ValidateResponse(t.Context(), out); err != nil {
		t.Errorf("%s %s answered %d, which does not fit docs/openapi.yaml: %v\n%s", method, req.URL.Path, resp.StatusCode, err, raw)
	}
	key := method + " " + route.Path
	v.mu.Lock()
	v.seen[key] = append(v.seen[key], resp.StatusCode)
	v.mu.Unlock()
	return resp.StatusCode, raw
}

// TestRealAnswersFitTheOpenAPIDocument drives every route of a real
// server through a call's whole life, and some mistakes, and validates
// each request and answer against docs/openapi.yaml with kin-openapi.
func TestRealAnswersFitTheOpenAPIDocument(t *testing.T) {
	doc := loadOpenAPI(t)
	f := newEngineFixture(t)
	v := newValidator(t, doc, f.srv.URL)
	acc := f.srv.URL + "/v2/accounts/" + f.acc
	type step struct {
		method, url, token, body string
		want                     int
		valid                    bool
	}
	tok := f.token
	var childID, sessionID, secondSession string
	steps := []func() step{
		func() step { return step{"GET", f.srv.URL + "/healthz", "", "", 200, true} },
		func() step { return step{"GET", f.srv.URL + "/readyz", "", "", 200, true} },
		func() step { return step{"GET", f.srv.URL + "/metrics", "", "", 200, true} },
		func() step {
			return step{"PUT", f.srv.URL + "/v2/api_auth", "", `{"data":{"api_key":"` + f.apiKey + `"}}`, 201, true}
		},
		func() step {
			return step{"PUT", f.srv.URL + "/v2/api_auth", "", `{"data":{"api_key":"nope"}}`, 401, true}
		},
		func() step { return step{"PUT", f.srv.URL + "/v2/api_auth", "", `{"data":{"key":"x"}}`, 400, false} },
		func() step { return step{"GET", acc, tok, "", 200, true} },
		func() step { return step{"GET", acc, "", "", 401, true} },
		func() step { return step{"GET", acc, f.apiKey, "", 401, true} },
		func() step { return step{"PUT", acc, tok, `{"data":{"name":"Support team"}}`, 201, true} },
		func() step { return step{"GET", acc + "/children", tok, "", 200, true} },
		func() step {
			return step{"GET", f.srv.URL + "/v2/accounts/ffffffffffffffffffffffffffffffff", tok, "", 403, true}
		},
		func() step {
			return step{"POST", acc + "/events", tok, `{"data":{"routing_key":"qubicle.queue.` + f.acc + `.support.join","payload":{"session_id":"c1","caller_id_number":"+15550100","position":1,"estimated_wait_s":45}}}`, 201, true}
		},
		func() step {
			return step{"POST", acc + "/events", tok, `{"data":{"routing_key":"qubicle.queue.` + f.acc + `.support.join","payload":{"position":0}}}`, 400, true}
		},
		func() step {
			return step{"PUT", acc + "/queues", tok, `{"data":{"id":"sales","name":"Sales","wrapup_s":0}}`, 201, true}
		},
		func() step {
			return step{"PUT", acc + "/queues", tok, `{"data":{"id":"sales","name":"Sales"}}`, 409, true}
		},
		func() step { return step{"PUT", acc + "/queues", tok, `{"data":{"id":"x","name":""}}`, 400, false} },
		func() step { return step{"GET", acc + "/queues", tok, "", 200, true} },
		func() step { return step{"GET", acc + "/queues/sales", tok, "", 200, true} },
		func() step { return step{"GET", acc + "/queues/nope", tok, "", 404, true} },
		func() step {
			return step{"POST", acc + "/queues/sales", tok, `{"data":{"name":"Sales team","max_size":50}}`, 200, true}
		},
		func() step {
			return step{"PUT", acc + "/recipients", tok, `{"data":{"id":"alice","name":"Alice","queues":["sales"]}}`, 201, true}
		},
		func() step { return step{"GET", acc + "/recipients", tok, "", 200, true} },
		func() step { return step{"GET", acc + "/recipients/alice", tok, "", 200, true} },
		func() step {
			return step{"POST", acc + "/recipients/alice", tok, `{"data":{"name":"Alice L.","queues":["sales"]}}`, 200, true}
		},
		func() step {
			return step{"POST", acc + "/recipients/alice/status", tok, `{"data":{"action":"ready"}}`, 409, true}
		},
		func() step {
			return step{"POST", acc + "/recipients/alice/status", tok, `{"data":{"action":"login"}}`, 200, true}
		},
		func() step { return step{"POST", acc + "/recipients/alice/sync", tok, "", 200, true} },
		func() step {
			return step{"POST", acc + "/calls", tok, `{"data":{"queue_id":"sales","caller_id_name":"Ada","caller_id_number":"+15550100"}}`, 201, true}
		},
		func() step { return step{"GET", acc + "/qubicle_state", tok, "", 200, true} },
		func() step { return step{"GET", acc + "/qubicle_stats", tok, "", 200, true} },
		func() step { return step{"POST", acc + "/calls/" + sessionID + "/accept", tok, "", 200, true} },
		func() step {
			return step{"POST", acc + "/wiretaps", tok, `{"data":{"action":"start","recipient_id":"alice","supervisor_id":"sup1"}}`, 200, true}
		},
		func() step {
			return step{"POST", acc + "/wiretaps", tok, `{"data":{"action":"stop","recipient_id":"alice","supervisor_id":"sup1"}}`, 200, true}
		},
		func() step {
			return step{"POST", acc + "/calls/" + sessionID + "/hangup", tok, `{"data":{"hangup_by":"caller"}}`, 200, true}
		},
		func() step {
			return step{"POST", acc + "/calls/" + sessionID + "/finalize", tok, `{"data":{"disposition":"sold"}}`, 200, true}
		},
		func() step { return step{"POST", acc + "/calls/" + sessionID + "/hangup", tok, "", 404, true} },
		func() step {
			return step{"POST", acc + "/calls", tok, `{"data":{"queue_id":"sales","caller_id_number":"+15550101"}}`, 201, true}
		},
		func() step {
			return step{"POST", acc + "/calls/" + secondSession + "/reject", tok, `{"data":{"recipient_id":"alice","reason":"declined"}}`, 200, true}
		},
		func() step { return step{"POST", acc + "/calls/" + secondSession + "/hangup", tok, "", 200, true} },
		func() step {
			return step{"POST", acc + "/recipients/alice/external_call", tok, `{"data":{"action":"start","number":"+442079460000"}}`, 201, true}
		},
		func() step {
			return step{"POST", acc + "/recipients/alice/external_call", tok, `{"data":{"action":"end","hangup_by":"recipient"}}`, 200, true}
		},
		func() step {
			return step{"POST", acc + "/recipients/alice/external_call", tok, `{"data":{"action":"dial"}}`, 400, false}
		},
		func() step { return step{"GET", f.srv.URL + "/v2/websockets", tok, "", 200, true} },
		func() step { return step{"GET", acc + "/websockets?page_size=10", tok, "", 200, true} },
		func() step { return step{"GET", acc + "/websockets?page_size=0", tok, "", 400, false} },
		func() step {
			return step{"GET", acc + "/websockets/0123456789abcdef0123456789abcdef", tok, "", 404, true}
		},
		func() step {
			return step{"PUT", acc + "/recipients/alice/sip_credentials", tok, `{"data":{"wiretap":true}}`, 201, true}
		},
		func() step { return step{"GET", acc + "/recipients/alice/sip_credentials", tok, "", 200, true} },
		func() step { return step{"GET", acc + "/sip_credentials", tok, "", 200, true} },
		func() step {
			return step{"PUT", acc + "/sip_numbers", tok, `{"data":{"number":"+15550199","queue_id":"sales"}}`, 201, true}
		},
		func() step {
			return step{"PUT", acc + "/sip_numbers", tok, `{"data":{"number":"12ab","queue_id":"sales"}}`, 400, false}
		},
		func() step { return step{"GET", acc + "/sip_numbers", tok, "", 200, true} },
		func() step { return step{"DELETE", acc + "/sip_numbers/+15550199", tok, "", 200, true} },
		func() step { return step{"DELETE", acc + "/recipients/alice/sip_credentials", tok, "", 200, true} },
		func() step { return step{"GET", acc + "/recipients/alice/sip_credentials", tok, "", 404, true} },
		func() step { return step{"DELETE", acc + "/recipients/alice", tok, "", 200, true} },
		func() step { return step{"DELETE", acc + "/queues/sales", tok, "", 200, true} },
		func() step {
			return step{"PUT", f.srv.URL + "/v2/accounts/" + childID + "/api_key", tok, "", 200, true}
		},
		func() step {
			return step{"DELETE", f.srv.URL + "/v2/accounts/" + childID + "/api_key", tok, "", 200, true}
		},
		func() step { return step{"POST", f.srv.URL + "/v2/signing_keys", tok, "", 200, true} },
	}
	for _, next := range steps {
		s := next()
		code, raw := v.do(s.method, s.url, s.token, s.body, s.valid)
		if code != s.want {
			t.Fatalf("%s %s: %d %s, want %d", s.method, s.url, code, raw, s.want)
		}
		// Ids later steps need.
		switch {
		case s.method == "PUT" && s.url == acc && code == 201:
			childID = field(raw, "account_id")
		case s.method == "POST" && strings.HasSuffix(s.url, "/calls") && code == 201:
			if sessionID == "" {
				sessionID = field(raw, "session_id")
			} else {
				secondSession = field(raw, "session_id")
			}
		}
	}
	var missing []string
	for _, op := range documented(loadOpenAPI(t)) {
		if _, ok := v.seen[op]; !ok {
			missing = append(missing, op)
		}
	}
	if len(missing) > 0 {
		t.Errorf("no real answer of these documented operations was checked against docs/openapi.yaml: %v; add a step calling each to TestRealAnswersFitTheOpenAPIDocument (internal/api/openapi_test.go)", missing)
	}
}

// field reads one string member of an answer's data.
func field(raw []byte, name string) string {
	i := bytes.Index(raw, []byte(`"`+name+`":"`))
	if i < 0 {
		return ""
	}
	rest := raw[i+len(name)+4:]
	return string(rest[:bytes.IndexByte(rest, '"')])
}
