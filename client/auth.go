package client

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Token is an auth token with what the REST API said about it.
type Token struct {
	// Value is the token to send as auth_token or X-Auth-Token.
	Value string
	// AccountID is the account the token belongs to.
	AccountID string
	// ExpiresAt is when the gateway stops accepting it.
	ExpiresAt time.Time
}

// APIError is an error answer of the REST API, with the message it gave.
type APIError struct {
	// StatusCode is the HTTP status, e.g. 401.
	StatusCode int
	// Message is the API's explanation, written for people.
	Message string
}

// Error returns the API's message with its status.
func (e *APIError) Error() string {
	if e.Message == "" {
		return fmt.Sprintf("HTTP %d", e.StatusCode)
	}
	return fmt.Sprintf("%s (HTTP %d)", e.Message, e.StatusCode)
}

// Login exchanges an API key for an auth token with PUT /v2/api_auth on the
// REST API at apiURL (e.g. http://127.0.0.1:8000). hc nil means
// http.DefaultClient. A refused key returns an *APIError with status 401.
func Login(ctx context.Context, apiURL, apiKey string, hc *http.Client) (Token, error) {
	body, err := json.Marshal(map[string]any{"data": map[string]string{"api_key": apiKey}})
	if err != nil {
		return Token{}, err
	}
	var out struct {
		Data struct {
			AccountID string `json:"account_id"`
			ExpiresAt string `json:"expires_at"`
		} `json:"data"`
		AuthToken string `json:"auth_token"`
	}
	if err := restCall(ctx, hc, http.MethodPut, strings.TrimRight(apiURL, "/")+"/v2/api_auth", "", body, &out); err != nil {
		return Token{}, fmt.Errorf("log in with the API key: %w", err)
	}
	if out.AuthToken == "" {
		return Token{}, fmt.Errorf("log in with the API key: the API answered without an auth_token")
	}
	t := Token{Value: out.AuthToken, AccountID: out.Data.AccountID}
	if exp, err := time.Parse(time.RFC3339, out.Data.ExpiresAt); err == nil {
		t.ExpiresAt = exp
	}
	return t, nil
}

// keyRefused reports whether err is the REST API refusing the API key:
// logging in again cannot help.
func keyRefused(err error) bool {
	var apiErr *APIError
	return errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusUnauthorized
}

// restCall sends one request to the REST API and decodes a success envelope
// into out; an error envelope becomes an *APIError.
func restCall(ctx context.Context, hc *http.Client, method, url, token string, body []byte, out any) error {
	if hc == nil {
		hc = http.DefaultClient
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, url, rd)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := hc.Do(req)
	if err != nil {
		return fmt.Errorf("%s %s: %w", method, url, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 32<<20))
	if err != nil {
		return fmt.Errorf("%s %s: read the answer: %w", method, url, err)
	}
	if resp.StatusCode >= 300 {
		return &APIError{StatusCode: resp.StatusCode, Message: errorMessage(raw)}
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("%s %s: the answer is not the expected JSON: %w", method, url, err)
	}
	return nil
}

// tokens holds the current auth token and, with an API key, renews it.
type tokens struct {
	apiURL string
	apiKey string // empty: the token is fixed
	hc     *http.Client

	mu  sync.Mutex
	cur Token
}

func (t *tokens) current() Token {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.cur
}

// renewable reports whether a fresh token can be obtained.
func (t *tokens) renewable() bool { return t.apiKey != "" }

// renew logs in again and stores the new token.
func (t *tokens) renew(ctx context.Context) (Token, error) {
	tok, err := Login(ctx, t.apiURL, t.apiKey, t.hc)
	if err != nil {
		return Token{}, err
	}
	t.mu.Lock()
	t.cur = tok
	t.mu.Unlock()
	return tok, nil
}

// renewAt is when a token should be replaced: after four fifths of its
// remaining life, and at least 30 s (or half its life) before it expires.
func renewAt(tok Token, now time.Time) time.Time {
	if tok.ExpiresAt.IsZero() {
		return time.Time{}
	}
	life := tok.ExpiresAt.Sub(now)
	margin := max(life/5, min(30*time.Second, life/2))
	return tok.ExpiresAt.Add(-margin)
}

// tokenInfo reads the account and expiry a ccevents token states, without
// verifying it (the gateway does that): it lets a client started with a
// bare token know its account and warn before it expires.
func tokenInfo(value string) Token {
	t := Token{Value: value}
	parts := strings.Split(value, ".")
	if len(parts) != 3 {
		return t
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		return t
	}
	var claims struct {
		AccountID string `json:"account_id"`
		Exp       int64  `json:"exp"`
	}
	if json.Unmarshal(raw, &claims) != nil {
		return t
	}
	t.AccountID = claims.AccountID
	if claims.Exp > 0 {
		t.ExpiresAt = time.Unix(claims.Exp, 0)
	}
	return t
}
