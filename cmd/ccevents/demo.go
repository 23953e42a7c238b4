package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/ccevents/ccevents/internal/auth"
	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/sim"
	"github.com/ccevents/ccevents/internal/sipfront"
	"github.com/ccevents/ccevents/internal/sipstore"
)

// demoTokenTTL is long enough for an afternoon of exploring.
const demoTokenTTL = 12 * time.Hour

// demoInfo is DATA_DIR/demo.json: what a script needs to talk to the demo.
type demoInfo struct {
	AccountID string `json:"account_id"`
	APIKey    string `json:"api_key"`
	AuthToken string `json:"auth_token"`
	ExpiresAt string `json:"expires_at"`
	WSURL     string `json:"ws_url"`
	APIURL    string `json:"api_url"`
	Wallboard string `json:"wallboard_url"`
	// SIP says where to point a softphone: the SIP address, the demo
	// queues' numbers and the demo recipients' SIP credentials.
	SIP *demoSIP `json:"sip,omitempty"`
}

// demoTelephony is the SIP side of the demo, when it runs.
type demoTelephony struct {
	store *sipstore.Store
	sip   *sipfront.Server
}

// demoAccount returns the demo account recorded in demo.json, or creates a
// child of root when there is none (or it no longer exists).
func demoAccount(ctx context.Context, svc *auth.Service, root auth.Account, path string) (string, string, error) {
	var prev demoInfo
	if raw, err := os.ReadFile(path); err == nil && json.Unmarshal(raw, &prev) == nil && prev.AccountID != "" {
		if _, err := svc.Account(ctx, prev.AccountID); err == nil {
			return prev.AccountID, prev.APIKey, nil
		} else if !errors.Is(err, auth.ErrNotFound) {
			return "", "", fmt.Errorf("look up the demo account: %w", err)
		}
	}
	acct, key, err := svc.CreateAccount(ctx, root.ID, "Demo contact center")
	if err != nil {
		return "", "", fmt.Errorf("create the demo account: %w", err)
	}
	return acct.ID, key, nil
}

// startDemo sets up the demo account's queues and recipients, starts the
// traffic simulation and tells the user how to watch it.
func startDemo(ctx context.Context, cfg serveConfig, svc *auth.Service, eng engine.Service, root auth.Account, addrs boundAddrs, tel demoTelephony, log *slog.Logger, stdout io.Writer) error {
	path := filepath.Join(cfg.DataDir, "demo.json")
	accountID, apiKey, err := demoAccount(ctx, svc, root, path)
	if err != nil {
		return err
	}
	if err := sim.SetupDemo(ctx, eng, accountID); err != nil {
		return fmt.Errorf("set up the demo: %w", err)
	}
	token, claims, err := svc.IssueToken(ctx, accountID, demoTokenTTL)
	if err != nil {
		return fmt.Errorf("issue the demo token: %w", err)
	}
	info := demoInfo{
		AccountID: accountID, APIKey: apiKey, AuthToken: token,
		ExpiresAt: claims.ExpiresAt.UTC().Format(time.RFC3339),
		WSURL:     addrs.wsScheme + "://" + addrs.ws, APIURL: "http://" + addrs.api, Wallboard: "http://" + addrs.api + "/wallboard",
	}
	if tel.sip != nil && tel.store != nil {
		if info.SIP, err = setupDemoSIP(ctx, tel.store, accountID, tel.sip.Addr(), path); err != nil {
			return err
		}
	}
	if err := writeJSONFile(path, info); err != nil {
		return err
	}
	go func() {
		simCfg := sim.Config{AccountID: accountID, Rate: cfg.DemoRate, Logger: log.With("component", "sim")}
		if tel.sip != nil {
			// A recipient whose phone is registered answers for themself.
			simCfg.Leave = func(id string) bool { _, ok := tel.sip.Registered(accountID, id); return ok }
		}
		err := sim.Run(ctx, eng, simCfg)
		if err != nil && ctx.Err() == nil {
			log.Error("demo traffic stopped", "err", err)
		}
	}()
	sub := fmt.Sprintf(`{"action":"subscribe","auth_token":"%s","request_id":"demo-1","data":{"account_id":"%s","binding":"qubicle.queue.%s.*"}}`, token, accountID, accountID)
	fmt.Fprintf(stdout, `
ccevents demo is running: simulated calls arrive in account %[1]s.

  websocket   %[2]s
  REST API    %[3]s
  wallboard   %[4]s   (log in with the API key below)
  account_id  %[1]s
  api_key     %[5]s
  auth_token  valid until %[6]s, in %[7]s

Subscribe: connect any websocket client to %[2]s and send
%[8]s

Or watch every event of the account from another terminal:
  go run ./cmd/ccevents listen --url %[2]s --api-url %[3]s --api-key %[5]s --format pretty

`, accountID, info.WSURL, info.APIURL, info.Wallboard, apiKey, info.ExpiresAt, path, sub)
	if info.SIP != nil {
		fmt.Fprintf(stdout, "Real calls: point a softphone at sip:%s (user alice, password in %s under \"sip\"),\nthen call the sales queue at sip:%s@%s. See docs/telephony.md.\n\n",
			info.SIP.Addr, path, info.SIP.Queues["sales"], info.SIP.Addr)
	}
	log.Info("demo started", "account_id", accountID, "rate_per_minute", cfg.DemoRate, "file", path)
	return nil
}

// boundAddrs are the host:port the servers listen on, written so a client
// on this machine can use them (":5555" becomes "localhost:5555").
type boundAddrs struct {
	ws, api  string
	wsScheme string // ws, or wss with --tls-cert
}

func dialable(addr net.Addr) string {
	host, port, err := net.SplitHostPort(addr.String())
	if err != nil {
		return addr.String()
	}
	if ip := net.ParseIP(host); ip == nil || ip.IsUnspecified() {
		host = "localhost"
	}
	return net.JoinHostPort(host, port)
}
