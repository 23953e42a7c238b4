package sim

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/ccevents/ccevents/internal/engine"
)

// RESTConfig says how to reach a ccevents REST API.
type RESTConfig struct {
	// BaseURL is the API's root, e.g. http://localhost:8000.
	BaseURL string
	// APIKey is exchanged for a token (PUT /v2/api_auth), again whenever
	// the token expires. Either APIKey or Token is required.
	APIKey string
	// Token is an auth token to use as is.
	Token string
	// Client is the HTTP client; nil uses one with a 15 s timeout.
	Client *http.Client
}

// RESTDriver drives a remote engine through the REST API. It is safe for
// concurrent use.
type RESTDriver struct {
	base   string
	apiKey string
	client *http.Client

	mu      sync.Mutex
	token   string
	account string
}

// NewRESTDriver checks cfg and, given an API key, logs in. AccountID then
// reports the key's account.
func NewRESTDriver(ctx context.Context, cfg RESTConfig) (*RESTDriver, error) {
	u, err := url.Parse(cfg.BaseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, fmt.Errorf("api url must look like http://host:port, got %q", cfg.BaseURL)
	}
	if cfg.APIKey == "" && cfg.Token == "" {
		return nil, errors.New("an api key or an auth token is required")
	}
	d := &RESTDriver{base: strings.TrimRight(cfg.BaseURL, "/"), apiKey: cfg.APIKey, client: cfg.Client, token: cfg.Token}
	if d.client == nil {
		d.client = &http.Client{Timeout: 15 * time.Second}
	}
	if d.apiKey != "" {
		if err := d.login(ctx); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// AccountID is the account the API key belongs to ("" when built from a token).
func (d *RESTDriver) AccountID() string {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.account
}

func (d *RESTDriver) login(ctx context.Context) error {
	body, _ := json.Marshal(map[string]any{"data": map[string]string{"api_key": d.apiKey}})
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, d.base+"/v2/api_auth", bytes.NewReader(body))
	if err != nil {
		return fmt.Errorf("log in: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := d.client.Do(req)
	if err != nil {
		return fmt.Errorf("log in at %s: %w", d.base, err)
	}
	defer resp.Body.Close()
	var env struct {
		AuthToken string `json:"auth_token"`
		Message   string `json:"message"`
		Data      struct {
			AccountID string `json:"account_id"`
		} `json:"data"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&env); err != nil || resp.StatusCode >= 300 || env.AuthToken == "" {
		msg := env.Message
		if msg == "" {
			msg = resp.Status
		}
		return fmt.Errorf("log in at %s: %s", d.base, msg)
	}
	d.mu.Lock()
	d.token, d.account = env.AuthToken, env.Data.AccountID
	d.mu.Unlock()
	return nil
}

// Serve sends a command to its REST route (engine.Route); see
// engine.Service. Refusals come back as *engine.Error of the matching
// kind.
func (d *RESTDriver) Serve(ctx context.Context, accountID string, cmd engine.AnyCommand, args any) (any, error) {
	rt := cmd.Route()
	if rt == nil {
		return nil, fmt.Errorf("the engine command %s has no REST route", cmd.Name())
	}
	slots, data, err := cmd.EncodeArgs(args)
	if err != nil {
		return nil, err
	}
	path := rt.Path
	if p := rt.PathParam(); p != "" {
		path = strings.Replace(path, "{"+p+"}", url.PathEscape(slots.ID), 1)
	}
	if rt.Action != "" {
		data = withAction(data, rt.Action)
	}
	reply, err := d.call(ctx, rt.Method, "/v2/accounts/"+url.PathEscape(accountID)+path, data)
	if err != nil {
		return nil, err
	}
	v, err := cmd.DecodeReply(args, reply)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", rt.Method, path, err)
	}
	return v, nil
}

var _ engine.Service = (*RESTDriver)(nil)

// withAction adds "action" to a request's data, a JSON object or nil.
func withAction(data []byte, action string) []byte {
	out := []byte(`{"action":`)
	out = strconv.AppendQuote(out, action)
	if rest := bytes.TrimSpace(data); len(rest) > 2 {
		out = append(append(out, ','), rest[1:]...)
		return out
	}
	return append(out, '}')
}

// call sends one request with data (JSON, nil for none) as its "data" and
// returns the "data" of the answer. Refusals come back as *engine.Error
// of the matching kind.
func (d *RESTDriver) call(ctx context.Context, method, path string, data []byte) (json.RawMessage, error) {
	var body []byte
	if data != nil {
		body = append(append([]byte(`{"data":`), data...), '}')
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, d.base+path, bytes.NewReader(body))
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		d.mu.Lock()
		req.Header.Set("X-Auth-Token", d.token)
		d.mu.Unlock()
		resp, err := d.client.Do(req)
		if err != nil {
			return nil, fmt.Errorf("%s %s: %w", method, path, err)
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("%s %s: read answer: %w", method, path, err)
		}
		if resp.StatusCode == http.StatusUnauthorized && d.apiKey != "" && attempt == 0 {
			if err := d.login(ctx); err != nil {
				return nil, err
			}
			continue
		}
		var env struct {
			Status  string          `json:"status"`
			Message string          `json:"message"`
			Data    json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			return nil, fmt.Errorf("%s %s: %s with a body that is not the API's JSON", method, path, resp.Status)
		}
		if resp.StatusCode >= 300 {
			kind := map[int]engine.Kind{
				http.StatusBadRequest:          engine.KindInvalid,
				http.StatusNotFound:            engine.KindNotFound,
				http.StatusConflict:            engine.KindConflict,
				http.StatusServiceUnavailable:  engine.KindUnavailable,
				http.StatusUnprocessableEntity: engine.KindInvalid,
			}[resp.StatusCode]
			if kind == 0 {
				return nil, fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, env.Message)
			}
			return nil, &engine.Error{Kind: kind, Message: env.Message}
		}
		return env.Data, nil
	}
}
