package loadtest

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// The multi-tenant scenario: many accounts, each with its agents and its
// wallboards, as a reseller hosting thousands of small contact centers.

// maxAccounts bounds the accounts one run creates.
const maxAccounts = 100_000

// tenant reports whether the scenario is the multi-tenant one.
func (sc *Scenario) tenant() bool { return sc.Accounts > 0 }

// validateTenants checks the multi-tenant settings and derives the
// connection count from them.
func (sc *Scenario) validateTenants() error {
	if !sc.tenant() {
		if sc.Agents > 0 || sc.Wallboards > 0 || sc.AgentQueues > 0 {
			return errors.New("agents, wallboards and agent queues belong to the multi-tenant scenario: give the number of accounts too")
		}
		return nil
	}
	switch {
	case sc.Accounts > maxAccounts:
		return fmt.Errorf("at most %d accounts, got %d", maxAccounts, sc.Accounts)
	case sc.Agents < 0 || sc.Wallboards < 0 || sc.Agents+sc.Wallboards == 0:
		return fmt.Errorf("each account needs at least one agent or wallboard connection (agents %d, wallboards %d)", sc.Agents, sc.Wallboards)
	case sc.Queues < 1:
		return fmt.Errorf("each account needs at least one queue, got %d", sc.Queues)
	case sc.AgentQueues < 0 || sc.AgentQueues > sc.Queues:
		return fmt.Errorf("an agent serves between 0 and the account's %d queues, got %d", sc.Queues, sc.AgentQueues)
	case sc.Mix != nil && sc.Mix[KindAccount] != 1:
		return errors.New("the binding mix belongs to the single-account scenario; the multi-tenant one has agents and wallboards")
	}
	sc.Recipients = max(sc.Agents, 1)
	sc.Conns = sc.Accounts * (sc.Agents + sc.Wallboards)
	return nil
}

// benchTenants are the accounts of a multi-tenant run: children of one
// bench account, whose token sees them all, as a reseller's does.
type benchTenants struct {
	parent benchAccount
	ids    []string
}

// accountCreateConcurrency is how many accounts the bench creates at once.
const accountCreateConcurrency = 32

// newBenchTenants creates a bench account under the key's account and n
// accounts under it.
func newBenchTenants(ctx context.Context, apiURL, key string, n int, log *slog.Logger) (benchTenants, error) {
	parent, err := newBenchAccount(ctx, apiURL, key)
	if err != nil {
		return benchTenants{}, err
	}
	a := &apiClient{base: apiURL, http: &http.Client{Timeout: 15 * time.Second}}
	ids := make([]string, n)
	var next, done atomic.Int64
	errs := make([]error, accountCreateConcurrency)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range min(accountCreateConcurrency, n) {
		wg.Go(func() {
			for {
				i := int(next.Add(1) - 1)
				if i >= n || ctx.Err() != nil {
					return
				}
				var child struct {
					AccountID string `json:"account_id"`
				}
				name := fmt.Sprintf("tenant %d", i)
				if _, err := a.call(ctx, http.MethodPut, "/v2/accounts/"+parent.ID, parent.Token, map[string]string{"name": name}, &child); err != nil {
					errs[w] = fmt.Errorf("create account %d of %d: %w", i+1, n, err)
					next.Store(int64(n)) // stop the others
					return
				}
				ids[i] = child.AccountID
				if d := done.Add(1); d%1000 == 0 {
					log.Info("creating accounts", "done", d, "of", n)
				}
			}
		})
	}
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		return benchTenants{}, err
	}
	if err := ctx.Err(); err != nil {
		return benchTenants{}, err
	}
	log.Info("accounts ready", "accounts", n, "seconds", time.Since(start).Seconds())
	return benchTenants{parent: parent, ids: ids}, nil
}
