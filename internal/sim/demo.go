package sim

import (
	"context"
	"errors"
	"fmt"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/event"
)

// DemoQueues are the queues SetupDemo creates: one per routing strategy a
// newcomer is likely to ask about.
func DemoQueues() []engine.QueueConfig {
	return []engine.QueueConfig{
		{ID: "sales", Name: "Sales", Strategy: event.StrategyRoundRobin, OfferTimeoutS: 15, WrapupS: 10, MaxWaitS: 300, FinalizeTimeoutS: 45},
		{ID: "support", Name: "Support", Strategy: event.StrategyMostIdle, OfferTimeoutS: 20, WrapupS: 15, MaxWaitS: 600, MaxSize: 20, FinalizeTimeoutS: 60},
		{ID: "vip", Name: "VIP line", Strategy: event.StrategyRingAll, OfferTimeoutS: 20, WrapupS: 5, MaxWaitS: 180, MaxSize: 5, FinalizeTimeoutS: 30,
			ServiceLevelS: 15, ServiceLevelTargetPct: 90},
	}
}

// DemoRecipients are the agents SetupDemo creates and logs in.
func DemoRecipients() []engine.RecipientConfig {
	return []engine.RecipientConfig{
		{ID: "alice", Name: "Alice Martin", Queues: []string{"sales", "vip"}},
		{ID: "bob", Name: "Bob Nguyen", Queues: []string{"sales", "support"}},
		{ID: "carol", Name: "Carol Diaz", Queues: []string{"support", "vip"}},
		{ID: "dave", Name: "Dave Okafor", Queues: []string{"support"}},
		{ID: "erin", Name: "Erin Kowalski", Queues: []string{"sales", "support", "vip"}},
		{ID: "frank", Name: "Frank Silva", Queues: []string{"sales", "support"}},
	}
}

// SetupDemo creates the demo queues and recipients in an account, skipping
// those that exist, and logs every demo recipient in. Running it twice is
// harmless.
func SetupDemo(ctx context.Context, svc engine.Service, accountID string) error {
	for _, q := range DemoQueues() {
		if _, err := engine.CreateQueue.Call(ctx, svc, accountID, q); err != nil && !errors.Is(err, engine.ErrConflict) {
			return fmt.Errorf("create demo queue %s: %w", q.ID, err)
		}
	}
	for _, r := range DemoRecipients() {
		if _, err := engine.CreateRecipient.Call(ctx, svc, accountID, r); err != nil && !errors.Is(err, engine.ErrConflict) {
			return fmt.Errorf("create demo recipient %s: %w", r.ID, err)
		}
		_, err := engine.SetStatus.Call(ctx, svc, accountID, engine.SetStatusRequest{RecipientID: r.ID, StatusRequest: engine.StatusRequest{Action: engine.ActionLogin}})
		if err != nil && !errors.Is(err, engine.ErrConflict) {
			return fmt.Errorf("log in demo recipient %s: %w", r.ID, err)
		}
	}
	return nil
}
