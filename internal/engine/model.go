package engine

import (
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/ccevents/ccevents/internal/event"
	"github.com/ccevents/ccevents/internal/shorten"
	"github.com/ccevents/ccevents/internal/stats"
)

// Defaults and limits of queue settings, in seconds unless named otherwise.
const (
	DefaultOfferTimeoutS    = 20
	DefaultFinalizeTimeoutS = 60
	maxOfferTimeoutS        = 600
	maxWrapupS              = 3600
	maxMaxWaitS             = 86400
	maxMaxSize              = 100000
	maxFinalizeTimeoutS     = 3600
	maxServiceLevelS        = 3600
	maxShortAbandonS        = 600
	maxNameLen              = 256
	maxNotesLen             = 4096
)

// Per-account limits that keep one account from exhausting the engine.
const (
	maxQueues     = 1000
	maxRecipients = 10000
	maxSessions   = 100000
	maxQueuesPerR = 100
)

// QueueConfig is a queue's configuration, as created over REST and stored.
// Zero values are useful: strategy most_idle, a 20 s offer timeout, no
// wrap-up, no maximum wait or size, a 60 s finalize window, and a service
// level of 80 % in 20 s with 5 s short abandons.
type QueueConfig struct {
	// ID is 1-64 characters of A-Z a-z 0-9 _ -; empty asks the engine for one.
	ID   string `json:"id"`
	Name string `json:"name"`
	// Strategy picks the recipient for the next caller: most_idle (alias
	// longest_idle), round_robin, fewest_calls or ring_all.
	Strategy event.Strategy `json:"strategy"`
	// OfferTimeoutS is how long an offer rings before it counts as rejected.
	OfferTimeoutS int `json:"offer_timeout_s"`
	// WrapupS is the wrap-up window after each call; 0 means none.
	WrapupS int `json:"wrapup_s"`
	// MaxWaitS is how long a caller may wait before leaving with timeout; 0 is unlimited.
	MaxWaitS int `json:"max_wait_s"`
	// MaxSize is how many callers may wait at once; 0 is unlimited.
	MaxSize int `json:"max_size"`
	// FinalizeTimeoutS is how long the disposition/notes window stays open after a call.
	FinalizeTimeoutS int `json:"finalize_timeout_s"`
	// ServiceLevelS is the service-level threshold: a call answered after
	// waiting at most this long is answered in service level (default 20).
	ServiceLevelS int `json:"service_level_s"`
	// ServiceLevelTargetPct is the share of calls, in percent, the queue
	// aims to answer within ServiceLevelS (default 80); statistics report
	// it for displays to compare with.
	ServiceLevelTargetPct int `json:"service_level_target_pct"`
	// ShortAbandonS: callers who hang up before waiting this long are
	// short abandons, left out of service level and abandon rate. nil is
	// the default, 5; 0 makes no abandon short.
	ShortAbandonS *int `json:"short_abandon_s,omitempty"`
}

// normalize applies defaults and checks every field, returning a sentence
// naming the first problem.
func (c *QueueConfig) normalize() error {
	if c.ID == "" {
		c.ID = event.NewEventID()
	} else if !event.ValidEntityID(c.ID) {
		return invalidf("queue id must be 1-64 characters of A-Z a-z 0-9 _ -, got %q", short(c.ID))
	} else if c.ID == event.StatsTotal {
		return invalidf("queue id %s is reserved: qubicle.stats.{ACCOUNT_ID}.%s carries the account-wide statistics", event.StatsTotal, event.StatsTotal)
	}
	c.Name = strings.TrimSpace(c.Name)
	if c.Name == "" {
		return invalidf("queue name is required")
	}
	if utf8.RuneCountInString(c.Name) > maxNameLen {
		return invalidf("queue name is longer than %d characters", maxNameLen)
	}
	switch c.Strategy {
	case "", "longest_idle":
		c.Strategy = event.StrategyMostIdle
	}
	if !c.Strategy.Valid() {
		return invalidf("strategy must be one of most_idle (or longest_idle), round_robin, fewest_calls, ring_all; got %q", short(string(c.Strategy)))
	}
	if c.OfferTimeoutS == 0 {
		c.OfferTimeoutS = DefaultOfferTimeoutS
	}
	if c.FinalizeTimeoutS == 0 {
		c.FinalizeTimeoutS = DefaultFinalizeTimeoutS
	}
	if c.ServiceLevelS == 0 {
		c.ServiceLevelS = stats.DefaultServiceLevelS
	}
	if c.ServiceLevelTargetPct == 0 {
		c.ServiceLevelTargetPct = stats.DefaultServiceLevelTargetPct
	}
	if c.ShortAbandonS == nil {
		d := stats.DefaultShortAbandonS
		c.ShortAbandonS = &d
	}
	for _, f := range []struct {
		name     string
		v, lo, h int
	}{
		{"offer_timeout_s", c.OfferTimeoutS, 1, maxOfferTimeoutS},
		{"wrapup_s", c.WrapupS, 0, maxWrapupS},
		{"max_wait_s", c.MaxWaitS, 0, maxMaxWaitS},
		{"max_size", c.MaxSize, 0, maxMaxSize},
		{"finalize_timeout_s", c.FinalizeTimeoutS, 1, maxFinalizeTimeoutS},
		{"service_level_s", c.ServiceLevelS, 1, maxServiceLevelS},
		{"service_level_target_pct", c.ServiceLevelTargetPct, 1, 100},
		{"short_abandon_s", *c.ShortAbandonS, 0, maxShortAbandonS},
	} {
		if f.v < f.lo || f.v > f.h {
			return invalidf("%s must be between %d and %d, got %d", f.name, f.lo, f.h, f.v)
		}
	}
	return nil
}

// statsSettings are what the queue's statistics are measured against.
func (c *QueueConfig) statsSettings() stats.Settings {
	return stats.Settings{Name: c.Name, ServiceLevelS: c.ServiceLevelS, ServiceLevelTargetPct: c.ServiceLevelTargetPct, ShortAbandonS: *c.ShortAbandonS}
}

// RecipientConfig is a recipient's configuration: who they are and which
// queues they serve.
type RecipientConfig struct {
	// ID is 1-64 characters of A-Z a-z 0-9 _ -; empty asks the engine for one.
	ID   string `json:"id"`
	Name string `json:"name"`
	// Queues are the ids of the queues the recipient serves; each must exist.
	Queues []string `json:"queues"`
}

func (c *RecipientConfig) normalize() error {
	if c.ID == "" {
		c.ID = event.NewEventID()
	} else if !event.ValidEntityID(c.ID) {
		return invalidf("recipient id must be 1-64 characters of A-Z a-z 0-9 _ -, got %q", short(c.ID))
	}
	c.Name = strings.TrimSpace(c.Name)
	if utf8.RuneCountInString(c.Name) > maxNameLen {
		return invalidf("recipient name is longer than %d characters", maxNameLen)
	}
	if len(c.Queues) > maxQueuesPerR {
		return invalidf("a recipient may serve at most %d queues, got %d", maxQueuesPerR, len(c.Queues))
	}
	qs := make([]string, 0, len(c.Queues))
	for _, q := range c.Queues {
		if !event.ValidEntityID(q) {
			return invalidf("queue id must be 1-64 characters of A-Z a-z 0-9 _ -, got %q", short(q))
		}
		qs = append(qs, q)
	}
	slices.Sort(qs)
	c.Queues = slices.Compact(qs)
	return nil
}

// Queue is a queue as the engine reports it: its configuration, who serves
// it and who is waiting.
type Queue struct {
	QueueConfig
	// Members are the recipients configured to serve the queue.
	Members []string `json:"members"`
	// Waiting is how many callers are in the queue, ringing or not.
	Waiting int `json:"waiting"`
	// LongestWaitMS is how long the caller at the head has waited.
	LongestWaitMS int64 `json:"longest_wait_ms"`
	// AverageHandleS is the recent average handle time the estimated wait uses.
	AverageHandleS int `json:"average_handle_s"`
	// Day is the UTC date (2026-11-25) DeliveredToday and AbandonedToday
	// count: "today" is the UTC day, and both start again from 0 at 00:00
	// UTC. To keep them current from a snapshot, add the events after its
	// Sequence whose timestamp falls on the same UTC day, and start from 0
	// on the first event of a later day.
	Day string `json:"day"`
	// DeliveredToday counts the queue's queue.delivered events of Day.
	DeliveredToday int `json:"delivered_today"`
	// AbandonedToday counts the queue's queue.leave events of Day with
	// reason abandoned.
	AbandonedToday int `json:"abandoned_today"`
	// Callers are the waiting callers in position order.
	Callers []Caller `json:"callers"`
}

// Caller is one caller waiting in a queue.
type Caller struct {
	SessionID      string `json:"session_id"`
	CallerIDName   string `json:"caller_id_name,omitempty"`
	CallerIDNumber string `json:"caller_id_number"`
	Position       int    `json:"position"`
	// JoinedAt is when the caller joined (RFC 3339, milliseconds, UTC).
	JoinedAt       string   `json:"joined_at"`
	WaitMS         int64    `json:"wait_ms"`
	EstimatedWaitS int      `json:"estimated_wait_s"`
	OfferedTo      []string `json:"offered_to"`
}

// Recipient is a recipient as the engine reports it.
type Recipient struct {
	RecipientConfig
	State event.State `json:"state"`
	// Since is when State began (RFC 3339, milliseconds, UTC).
	Since   string `json:"since"`
	SinceMS int64  `json:"since_ms"`
	// Availability is ready or away: where the recipient goes when the
	// current call, wrap-up or external call ends. Empty when logged out.
	Availability event.State `json:"availability,omitempty"`
	PausedQueues []string    `json:"paused_queues"`
	// ActiveSession is the call the recipient is on, if any.
	ActiveSession *event.ActiveSession `json:"active_session"`
	// Offer is the call ringing the recipient, if any.
	Offer *Offer `json:"offer"`
}

// Offer is a call ringing a recipient.
type Offer struct {
	SessionID string `json:"session_id"`
	QueueID   string `json:"queue_id"`
	OfferedAt string `json:"offered_at"`
}

// Action is a recipient status change.
type Action string

// Recipient status actions.
const (
	ActionLogin  Action = "login"
	ActionLogout Action = "logout"
	ActionReady  Action = "ready"
	ActionAway   Action = "away"
	ActionPause  Action = "pause"
	ActionResume Action = "resume"
)

// StatusRequest asks for a recipient status change. QueueID is required
// for pause and resume; Reason is optional free text for away and pause.
type StatusRequest struct {
	Action  Action `json:"action"`
	QueueID string `json:"queue_id,omitempty"`
	Reason  string `json:"reason,omitempty"`
}

// Arrival is a call arriving in a queue, as a telephony adapter reports it.
type Arrival struct {
	// SessionID is the adapter's call id; empty asks the engine for one.
	SessionID      string `json:"session_id,omitempty"`
	QueueID        string `json:"queue_id"`
	CallerIDName   string `json:"caller_id_name,omitempty"`
	CallerIDNumber string `json:"caller_id_number,omitempty"`
	// Callee is the number dialled; empty uses the queue id.
	Callee string `json:"callee,omitempty"`
}

// Call states reported in Call.State.
const (
	CallWaiting   = "waiting"
	CallConnected = "connected"
	CallEnded     = "ended"
)

// Call is the engine's answer to an arrival or an external call.
type Call struct {
	SessionID      string `json:"session_id"`
	QueueID        string `json:"queue_id,omitempty"`
	RecipientID    string `json:"recipient_id,omitempty"`
	State          string `json:"state"`
	Position       int    `json:"position,omitempty"`
	EstimatedWaitS int    `json:"estimated_wait_s"`
	// LeaveReason says why a call ended at once (queue_full).
	LeaveReason event.LeaveReason `json:"leave_reason,omitempty"`
}

// ExternalCall starts a call that does not come from a queue.
type ExternalCall struct {
	// SessionID is the adapter's call id; empty asks the engine for one.
	SessionID string          `json:"session_id,omitempty"`
	Direction event.Direction `json:"direction,omitempty"` // default outbound
	Number    string          `json:"number"`              // the other party
}

// Wiretap names a supervisor monitoring a recipient's call.
type Wiretap struct {
	RecipientID  string            `json:"recipient_id"`
	SupervisorID string            `json:"supervisor_id"`
	Mode         event.WiretapMode `json:"mode,omitempty"` // default listen
}

// Finalization closes a call's disposition/notes window.
type Finalization struct {
	// RecipientID, when set, must be the recipient who handled the call.
	RecipientID string `json:"recipient_id,omitempty"`
	Disposition string `json:"disposition,omitempty"`
	Notes       string `json:"notes,omitempty"`
}

// short trims a user-supplied value for quoting in an error message. A
// value a few bytes over an id's 64 is quoted whole, so the reader sees
// exactly what was too long.
func short(s string) string {
	if len(s) <= 70 {
		return s
	}
	return shorten.String(s, 64)
}
