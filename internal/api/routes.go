package api

import (
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// router is the API's ServeMux that also records every pattern it was
// given, so the routes can be listed (docs/openapi.yaml must document each
// one, see Routes) and so request metrics have a bounded label: the
// pattern, never the raw path.
type router struct {
	mux      *http.ServeMux
	patterns []string
}

func newRouter() *router { return &router{mux: http.NewServeMux()} }

// HandleFunc registers h for pattern, as http.ServeMux.HandleFunc does.
func (rt *router) HandleFunc(pattern string, h func(http.ResponseWriter, *http.Request)) {
	rt.Handle(pattern, http.HandlerFunc(h))
}

// Handle registers h for pattern, as http.ServeMux.Handle does.
func (rt *router) Handle(pattern string, h http.Handler) {
	rt.patterns = append(rt.patterns, pattern)
	rt.mux.Handle(pattern, h)
}

// Routes lists the patterns the API serves ("GET /v2/accounts/{ACCOUNT_ID}"),
// sorted; the catch-all "/" for the wallboard and browser client is left
// out, since it serves files, not the REST API.
func (s *Server) Routes() []string {
	out := slices.DeleteFunc(slices.Clone(s.patterns), func(p string) bool { return p == "/" })
	slices.Sort(out)
	return out
}

// httpMetrics is ccevents_http_request_duration_seconds.
type httpMetrics struct {
	duration *prometheus.HistogramVec
}

func newHTTPMetrics(reg prometheus.Registerer) (*httpMetrics, error) {
	m := &httpMetrics{
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "ccevents_http_request_duration_seconds",
			Help:    "REST API requests by method, route (the pattern, e.g. /v2/accounts/{ACCOUNT_ID}/queues; / for the wallboard and unknown paths) and HTTP status code, from the request's headers being read to the handler's return.",
			Buckets: []float64{0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30},
		}, []string{"method", "route", "code"}),
	}
	if err := reg.Register(m.duration); err != nil {
		return nil, err
	}
	return m, nil
}

// instrument times every request under the route the mux chose for it.
func (m *httpMetrics) instrument(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			// The mux wrote the matched pattern into r; an unmatched
			// request (405, or a panic before routing) has none.
			method, route, _ := strings.Cut(r.Pattern, " ")
			if route == "" {
				method, route = r.Method, "/"
			}
			if !slices.Contains(knownMethods, method) {
				method = "other" // bounded: a client may send any method
			}
			code := sw.status
			if code == 0 {
				code = http.StatusOK
			}
			m.duration.WithLabelValues(method, route, strconv.Itoa(code)).Observe(time.Since(start).Seconds())
		}()
		next.ServeHTTP(sw, r)
	})
}

var knownMethods = []string{http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch, http.MethodDelete, http.MethodOptions}

// statusWriter remembers the status code a handler sent.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(p []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(p)
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
