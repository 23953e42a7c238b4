package gateway

import (
	"fmt"
	"strconv"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/limit"
	"github.com/ccevents/ccevents/internal/netlimit"
	"github.com/ccevents/ccevents/internal/promutil"
	"github.com/ccevents/ccevents/protocol"
)

// Error kinds counted in ccevents_ws_errors_total: the protocol's (what
// replies and protocol closes report, see protocol.ErrorKind) and the
// gateway's own.
const (
	errBadEvent  protocol.ErrorKind = "bad_event" // a stored event could not be delivered (bad subject or payload)
	errWrite     protocol.ErrorKind = "write"     // writing to a connection failed
	errHandshake protocol.ErrorKind = "handshake" // the websocket upgrade failed
)

var errorKinds = []protocol.ErrorKind{protocol.ErrBadRequest, protocol.ErrAuth, protocol.ErrForbidden, protocol.ErrLimit,
	protocol.ErrProtocol, protocol.ErrInternal, errBadEvent, errWrite, errHandshake}

// Drop reasons counted in ccevents_ws_dropped_total.
const (
	dropSlowConsumer = "slow_consumer" // queued events discarded when closing a slow client
	dropBadEvent     = "bad_event"     // events not deliverable to anyone
)

// Refusal reasons counted in ccevents_ws_refused_total: every abuse limit
// that turned a client or a request away.
const (
	refuseOrigin          = "origin"               // handshake from an origin not on the allow-list (403)
	refuseHandshake       = "handshake_incomplete" // connection closed before a complete HTTP request (slow or abandoned handshake)
	refuseMaxConns        = "max_conns"            // the listener holds its share of descriptors already (503)
	refuseConnsPerIP      = "conns_per_ip"         // too many connections from one address (HTTP 429 at the upgrade)
	refuseConnsPerAccount = "conns_per_account"    // too many connections subscribed to one account
	refuseBindings        = "bindings_per_conn"    // too many bindings on one connection or in one request
	refuseSubscribeRate   = "subscribe_rate"       // subscribe, unsubscribe or refresh beyond the rate
	refuseAuthBackoff     = "auth_backoff"         // token not checked: the address failed too often
	refuseTokenExpired    = "token_expired"        // connection closed at token expiry (4001)
	refuseNesting         = "nesting"              // request nested too deep
	refuseFrameSize       = "frame_size"           // message over the size limit (1009)
	refuseUTF8            = "invalid_utf8"         // text message not valid UTF-8 (1007)
	refuseBinary          = "binary"               // binary message (1003)
	refuseReplayWait      = "replay_wait"          // subscribe with since found no turn to read history within ReplayWait
)

var refuseReasons = []string{refuseOrigin, refuseHandshake, refuseMaxConns, refuseConnsPerIP, refuseConnsPerAccount, refuseBindings,
	refuseSubscribeRate, refuseAuthBackoff, refuseTokenExpired, refuseNesting, refuseFrameSize, refuseUTF8, refuseBinary, refuseReplayWait}

type metrics struct {
	conns     prometheus.Gauge
	subs      prometheus.Gauge
	eventsIn  prometheus.Counter
	eventsOut prometheus.Counter
	dropped   *prometheus.CounterVec
	closed    *prometheus.CounterVec
	errors    *prometheus.CounterVec
	refused   *prometheus.CounterVec
	// Resumes reading history: waiting for a turn, reading, and done.
	replaysWaiting prometheus.Gauge
	replaysRunning prometheus.GaugeFunc
	replays        *prometheus.CounterVec
	replayDuration prometheus.Histogram
	// Accounts with a subscribed connection, and gaps in live delivery.
	accountsFollowed prometheus.GaugeFunc
	liveGaps         *prometheus.CounterVec
	// Writes that found a client's socket full and waited for it to read.
	socketFull prometheus.Counter
	// Stored → written to the socket, per live delivery (latency.go).
	latency *latencyHistogram
	// Accepts that failed for want of file descriptors.
	exhausted prometheus.Counter
}

// Outcomes of a resume counted in ccevents_ws_replays_total.
const (
	replayRecovered = "recovered"     // every binding got all it missed
	replayPartial   = "not_recovered" // some cursor was too old, of another epoch or ahead of history
	replayFailed    = "failed"        // reading history failed; the client was closed with 1011 to retry
)

// Outcomes of a gap in live delivery counted in ccevents_ws_live_gaps_total.
const (
	gapRepaired = "repaired" // the missing events were read from history and delivered in order
	gapLost     = "lost"     // history no longer held them: every connection was closed to resume
)

// replayTurns is the server's turn channel: the resumes reading history
// now are the turns taken.
// perAccount counts the connections subscribed to each account.
func newMetrics(reg prometheus.Registerer, replayTurns chan struct{}, perAccount *limit.Counter) (*metrics, error) {
	m := &metrics{
		conns: promutil.Gauge("ccevents_ws_connections",
			"Open websocket connections."),
		subs: promutil.Gauge("ccevents_ws_subscriptions",
			"Bindings active over all websocket connections."),
		eventsIn: promutil.Counter("ccevents_events_in_total",
			"Events the gateway received from the bus that matched at least one subscribed binding."),
		eventsOut: promutil.Counter("ccevents_events_out_total",
			"Event frames queued to websocket connections (one per event and connection), live and replayed."),
		dropped: promutil.CounterVec("ccevents_ws_dropped_total",
			"Event frames not delivered, by reason.",
			"reason", dropSlowConsumer, dropBadEvent),
		closed: promutil.CounterVec[string]("ccevents_ws_closed_total",
			"Websocket connections closed by the gateway, by close code.",
			"code"),
		errors: promutil.CounterVec("ccevents_ws_errors_total",
			"Errors met on websocket connections, by kind.",
			"kind", errorKinds...),
		refused: promutil.CounterVec("ccevents_ws_refused_total",
			"Connections, requests and messages turned away by an abuse limit, by reason.",
			"reason", refuseReasons...),
		replaysWaiting: promutil.Gauge("ccevents_ws_replays_waiting",
			"Resumes waiting for a turn to read history (see --replay-concurrency)."),
		replaysRunning: promutil.GaugeFunc("ccevents_ws_replays_running",
			"Resumes reading history from the stream now.",
			func() float64 { return float64(len(replayTurns)) }),
		replays: promutil.CounterVec("ccevents_ws_replays_total",
			"Subscribes with since, by outcome: recovered or not_recovered as answered, and failed when reading history failed, before the answer or during the replay after it (such a resume counts twice).",
			"outcome", replayRecovered, replayPartial, replayFailed),
		replayDuration: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "ccevents_ws_replay_duration_seconds",
			Help:    "Time from a subscribe with since (or snapshot) to the last replayed event queued for its client, including the wait for a turn.",
			Buckets: prometheus.ExponentialBuckets(0.001, 4, 9), // 1 ms … 65 s
		}),
		accountsFollowed: promutil.GaugeFunc("ccevents_ws_accounts_followed",
			"Accounts with at least one subscribed websocket connection on this gateway. Each costs the gateway memory only: the whole stream is followed with one consumer.",
			func() float64 { return float64(perAccount.Keys()) }),
		liveGaps: promutil.CounterVec("ccevents_ws_live_gaps_total",
			"Gaps in the gateway's live event stream (a lost or reconnecting bus connection), by outcome: repaired from history, or lost (every connection closed so clients resume).",
			"outcome", gapRepaired, gapLost),
		socketFull: promutil.Counter("ccevents_ws_socket_full_total",
			"Times a connection's socket was full, so its frames waited (up to the write timeout) for the client to read; a steady rise means clients reading slower than their events arrive."),
		latency: newLatencyHistogram(),
	}
	if err := promutil.RegisterAll(reg, m.conns, m.subs, m.eventsIn, m.eventsOut, m.dropped, m.closed, m.errors, m.refused,
		m.replaysWaiting, m.replaysRunning, m.replays, m.replayDuration, m.accountsFollowed, m.liveGaps, m.socketFull, m.latency); err != nil {
		return nil, fmt.Errorf("register gateway metrics: %w", err)
	}
	var err error
	if m.exhausted, err = netlimit.ExhaustedCounter(reg, "ws"); err != nil {
		return nil, fmt.Errorf("register gateway metrics: %w", err)
	}
	return m, nil
}

func (m *metrics) error(kind protocol.ErrorKind) { m.errors.WithLabelValues(string(kind)).Inc() }

func (m *metrics) closedWith(code int) { m.closed.WithLabelValues(strconv.Itoa(code)).Inc() }

func (m *metrics) refuse(reason string) { m.refused.WithLabelValues(reason).Inc() }
