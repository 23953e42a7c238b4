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
	"strings"
	"sync"
	"time"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
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

// call sends one request and decodes the "data" of the answer into out.
// Refusals come back as *engine.Error of the matching kind.
func (d *RESTDriver) call(ctx context.Context, method, path string, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(map[string]any{"data": in}); err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
	}
	for attempt := 0; ; attempt++ {
		req, err := http.NewRequestWithContext(ctx, method, d.base+path, bytes.NewReader(body))
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		if body != nil {
			req.Header.Set("Content-Type", "application/json")
		}
		d.mu.Lock()
		req.Header.Set("X-Auth-Token", d.token)
		d.mu.Unlock()
		resp, err := d.client.Do(req)
		if err != nil {
			return fmt.Errorf("%s %s: %w", method, path, err)
		}
		raw, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
		resp.Body.Close()
		if err != nil {
			return fmt.Errorf("%s %s: read answer: %w", method, path, err)
		}
		if resp.StatusCode == http.StatusUnauthorized && d.apiKey != "" && attempt == 0 {
			if err := d.login(ctx); err != nil {
				return err
			}
			continue
		}
		var env struct {
			Status  string          `json:"status"`
			Message string          `json:"message"`
			Data    json.RawMessage `json:"data"`
		}
		if err := json.Unmarshal(raw, &env); err != nil {
			return fmt.Errorf("%s %s: %s with a body that is not the API's JSON", method, path, resp.Status)
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
				return fmt.Errorf("%s %s: %s: %s", method, path, resp.Status, env.Message)
			}
			return &engine.Error{Kind: kind, Message: env.Message}
		}
		if out != nil {
			if err := json.Unmarshal(env.Data, out); err != nil {
				return fmt.Errorf("%s %s: decode answer: %w", method, path, err)
			}
		}
		return nil
	}
}

func accountPath(accountID string, parts ...string) string {
	p := "/v2/accounts/" + url.PathEscape(accountID)
	for _, s := range parts {
		p += "/" + url.PathEscape(s)
	}
	return p
}

// CreateQueue is PUT /v2/accounts/{ACCOUNT_ID}/queues.
func (d *RESTDriver) CreateQueue(ctx context.Context, accountID string, cfg engine.QueueConfig) (engine.Queue, error) {
	var q engine.Queue
	return q, d.call(ctx, http.MethodPut, accountPath(accountID, "queues"), cfg, &q)
}

// DeleteQueue is DELETE /v2/accounts/{ACCOUNT_ID}/queues/{QUEUE_ID}.
func (d *RESTDriver) DeleteQueue(ctx context.Context, accountID, queueID string) error {
	return d.call(ctx, http.MethodDelete, accountPath(accountID, "queues", queueID), nil, nil)
}

// CreateRecipient is PUT /v2/accounts/{ACCOUNT_ID}/recipients.
func (d *RESTDriver) CreateRecipient(ctx context.Context, accountID string, cfg engine.RecipientConfig) (engine.Recipient, error) {
	var r engine.Recipient
	return r, d.call(ctx, http.MethodPut, accountPath(accountID, "recipients"), cfg, &r)
}

// UpdateRecipient is POST /v2/accounts/{ACCOUNT_ID}/recipients/{RECIPIENT_ID}.
func (d *RESTDriver) UpdateRecipient(ctx context.Context, accountID, recipientID string, cfg engine.RecipientConfig) (engine.Recipient, error) {
	var r engine.Recipient
	return r, d.call(ctx, http.MethodPost, accountPath(accountID, "recipients", recipientID), cfg, &r)
}

// SetStatus is POST /v2/accounts/{ACCOUNT_ID}/recipients/{RECIPIENT_ID}/status.
func (d *RESTDriver) SetStatus(ctx context.Context, accountID, recipientID string, req engine.StatusRequest) (engine.Recipient, error) {
	var r engine.Recipient
	return r, d.call(ctx, http.MethodPost, accountPath(accountID, "recipients", recipientID, "status"), req, &r)
}

// Sync is POST /v2/accounts/{ACCOUNT_ID}/recipients/{RECIPIENT_ID}/sync.
func (d *RESTDriver) Sync(ctx context.Context, accountID, recipientID string) error {
	return d.call(ctx, http.MethodPost, accountPath(accountID, "recipients", recipientID, "sync"), nil, nil)
}

// Arrive is POST /v2/accounts/{ACCOUNT_ID}/calls.
func (d *RESTDriver) Arrive(ctx context.Context, accountID string, c engine.Arrival) (engine.Call, error) {
	var call engine.Call
	return call, d.call(ctx, http.MethodPost, accountPath(accountID, "calls"), c, &call)
}

// Hangup is POST /v2/accounts/{ACCOUNT_ID}/calls/{SESSION_ID}/hangup.
func (d *RESTDriver) Hangup(ctx context.Context, accountID, sessionID string, by event.Party) error {
	return d.call(ctx, http.MethodPost, accountPath(accountID, "calls", sessionID, "hangup"), map[string]any{"hangup_by": by}, nil)
}

// Accept is POST /v2/accounts/{ACCOUNT_ID}/calls/{SESSION_ID}/accept.
func (d *RESTDriver) Accept(ctx context.Context, accountID, sessionID, recipientID string) error {
	return d.call(ctx, http.MethodPost, accountPath(accountID, "calls", sessionID, "accept"), map[string]any{"recipient_id": recipientID}, nil)
}

// Reject is POST /v2/accounts/{ACCOUNT_ID}/calls/{SESSION_ID}/reject.
func (d *RESTDriver) Reject(ctx context.Context, accountID, sessionID, recipientID string, reason event.RejectReason) error {
	return d.call(ctx, http.MethodPost, accountPath(accountID, "calls", sessionID, "reject"), map[string]any{"recipient_id": recipientID, "reason": reason}, nil)
}

// Finalize is POST /v2/accounts/{ACCOUNT_ID}/calls/{SESSION_ID}/finalize.
func (d *RESTDriver) Finalize(ctx context.Context, accountID, sessionID string, f engine.Finalization) error {
	return d.call(ctx, http.MethodPost, accountPath(accountID, "calls", sessionID, "finalize"), f, nil)
}

// StartExternalCall is POST …/recipients/{RECIPIENT_ID}/external_call with action start.
func (d *RESTDriver) StartExternalCall(ctx context.Context, accountID, recipientID string, x engine.ExternalCall) (engine.Call, error) {
	var call engine.Call
	in := map[string]any{"action": "start", "session_id": x.SessionID, "direction": x.Direction, "number": x.Number}
	return call, d.call(ctx, http.MethodPost, accountPath(accountID, "recipients", recipientID, "external_call"), in, &call)
}

// EndExternalCall is POST …/recipients/{RECIPIENT_ID}/external_call with action end.
func (d *RESTDriver) EndExternalCall(ctx context.Context, accountID, recipientID string, by event.Party) error {
	in := map[string]any{"action": "end", "hangup_by": by}
	return d.call(ctx, http.MethodPost, accountPath(accountID, "recipients", recipientID, "external_call"), in, nil)
}

// StartWiretap is POST /v2/accounts/{ACCOUNT_ID}/wiretaps with action start.
func (d *RESTDriver) StartWiretap(ctx context.Context, accountID string, w engine.Wiretap) error {
	return d.call(ctx, http.MethodPost, accountPath(accountID, "wiretaps"), wiretapBody("start", w), nil)
}

// StopWiretap is POST /v2/accounts/{ACCOUNT_ID}/wiretaps with action stop.
func (d *RESTDriver) StopWiretap(ctx context.Context, accountID string, w engine.Wiretap) error {
	return d.call(ctx, http.MethodPost, accountPath(accountID, "wiretaps"), wiretapBody("stop", w), nil)
}

func wiretapBody(action string, w engine.Wiretap) map[string]any {
	return map[string]any{"action": action, "recipient_id": w.RecipientID, "supervisor_id": w.SupervisorID, "mode": w.Mode}
}

// Snapshot is GET /v2/accounts/{ACCOUNT_ID}/qubicle_state.
func (d *RESTDriver) Snapshot(ctx context.Context, accountID string) (engine.Snapshot, error) {
	var snap engine.Snapshot
	return snap, d.call(ctx, http.MethodGet, accountPath(accountID, "qubicle_state"), nil, &snap)
}

var _ Driver = (*RESTDriver)(nil)
