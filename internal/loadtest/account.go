package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// benchAccount is the account a run's events and connections use.
type benchAccount struct {
	ID    string
	Token string
}

// apiClient speaks the few REST calls the bench needs.
type apiClient struct {
	base string
	http *http.Client
}

type apiEnvelope struct {
	Status    string          `json:"status"`
	Message   string          `json:"message"`
	AuthToken string          `json:"auth_token"`
	Data      json.RawMessage `json:"data"`
}

func (a *apiClient) call(ctx context.Context, method, path, token string, body any, out any) (string, error) {
	b, err := json.Marshal(map[string]any{"data": body})
	if err != nil {
		return "", err
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(a.base, "/")+path, bytes.NewReader(b))
	if err != nil {
		return "", err
	}
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("X-Auth-Token", token)
	}
	resp, err := a.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("%s %s: %w (is `ccevents serve` running?)", method, path, err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return "", fmt.Errorf("%s %s: read the response: %w", method, path, err)
	}
	var env apiEnvelope
	if err := json.Unmarshal(raw, &env); err != nil {
		return "", fmt.Errorf("%s %s: HTTP %d with a body that is not the API's JSON", method, path, resp.StatusCode)
	}
	if resp.StatusCode >= 300 || env.Status != "success" {
		msg := env.Message
		if msg == "" {
			msg = http.StatusText(resp.StatusCode)
		}
		return "", fmt.Errorf("%s %s: HTTP %d: %s", method, path, resp.StatusCode, msg)
	}
	if out != nil {
		if err := json.Unmarshal(env.Data, out); err != nil {
			return "", fmt.Errorf("%s %s: unexpected response data: %w", method, path, err)
		}
	}
	return env.AuthToken, nil
}

// login exchanges an API key for a token.
func (a *apiClient) login(ctx context.Context, key string) (benchAccount, error) {
	var data struct {
		AccountID string `json:"account_id"`
	}
	token, err := a.call(ctx, http.MethodPut, "/v2/api_auth", "", map[string]string{"api_key": key}, &data)
	if err != nil {
		return benchAccount{}, fmt.Errorf("log in with the API key: %w", err)
	}
	if token == "" || data.AccountID == "" {
		return benchAccount{}, fmt.Errorf("log in with the API key: the reply has no auth_token or account_id")
	}
	return benchAccount{ID: data.AccountID, Token: token}, nil
}

// newBenchAccount creates a child account of the key's account, so the run's
// connections and events are isolated from anything else, and logs in as it.
func newBenchAccount(ctx context.Context, apiURL, key string) (benchAccount, error) {
	a := &apiClient{base: apiURL, http: &http.Client{Timeout: 15 * time.Second}}
	parent, err := a.login(ctx, key)
	if err != nil {
		return benchAccount{}, err
	}
	var child struct {
		AccountID string `json:"account_id"`
		APIKey    string `json:"api_key"`
	}
	name := "bench " + time.Now().UTC().Format("2006-01-02T15:04:05Z")
	if _, err := a.call(ctx, http.MethodPut, "/v2/accounts/"+parent.ID, parent.Token, map[string]string{"name": name}, &child); err != nil {
		return benchAccount{}, fmt.Errorf("create the bench account: %w", err)
	}
	if child.APIKey == "" {
		return benchAccount{}, fmt.Errorf("create the bench account: the reply has no api_key")
	}
	return a.login(ctx, child.APIKey)
}
