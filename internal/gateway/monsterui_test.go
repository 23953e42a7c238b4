package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/testkit"
	"github.com/ccevents/ccevents/internal/wstest"
	"github.com/ccevents/ccevents/protocol"
	"github.com/gobwas/ws"
)

// monsterUI behaves as 2600Hz monster-ui's websocket client
// (src/js/lib/monster.socket.js) does, message for message:
//
//   - bind sends {"action":"subscribe","auth_token":<current token>,
//     "request_id":<32 hex>,"data":{"account_id":…,"binding":…}} unless the
//     binding is bound already, and adds the listener once the reply says
//     success;
//   - a reply goes to the callback of its request_id; one whose data.errors
//     has a message beginning "failed to authenticate token" makes it log
//     in again (auth.retryLogin) and bind once more with the new token;
//   - an event goes to the listeners of exactly its subscribed_key, which
//     get its data; any other action (our notices) is only logged;
//   - after a close it reconnects after 250 ms, doubling up to 60 s, and
//     once open again, as it was reconnecting, it forgets every binding and
//     binds each one again.
type monsterUI struct {
	t     *testing.T
	url   string
	login func() string // auth.retryLogin: a fresh token

	mu         sync.Mutex
	token      string
	conn       *wstest.Conn
	open       bool
	reconnect  time.Duration // the delay of the reconnect under way; 0: none
	bindings   map[string]monsterBinding
	handshakes map[string]func(monsterReply)
	logins     int
	sent       []string // every request, as sent
	opened     chan struct{}
	conns      []*wstest.Conn  // every connection opened, closed at the end
	done       bool            // disconnect was called: no more reconnects
	closes     []wstest.Closed // close frames the gateway sent
	authErrors []string        // errors that made it log in again
}

type monsterBinding struct {
	accountID string
	events    chan json.RawMessage // the listener: what it is called with
}

type monsterReply struct {
	RequestID string `json:"request_id"`
	Status    string `json:"status"`
	Data      struct {
		Errors []string `json:"errors"`
	} `json:"data"`
}

func newMonsterUI(t *testing.T, url, token string, login func() string) *monsterUI {
	m := &monsterUI{t: t, url: url, token: token, login: login,
		bindings: map[string]monsterBinding{}, handshakes: map[string]func(monsterReply){}, opened: make(chan struct{}, 16)}
	t.Cleanup(m.disconnect)
	m.connect()
	return m
}

// disconnect closes the socket for good, as monster-ui does on logout.
func (m *monsterUI) disconnect() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.done = true
	for _, c := range m.conns {
		c.NetConn().Close()
	}
}

// connect opens the websocket; on failure it schedules the next attempt.
func (m *monsterUI) connect() {
	c, err := wstest.TryDial(m.t, m.url, ws.Dialer{})
	m.mu.Lock()
	if m.done {
		m.mu.Unlock()
		if c != nil {
			c.NetConn().Close()
		}
		return
	}
	if err != nil {
		m.mu.Unlock()
		m.scheduleReconnect()
		return
	}
	m.conns = append(m.conns, c)
	m.conn, m.open = c, true
	rebinding := m.reconnect > 0 && len(m.bindings) > 0
	m.reconnect = 0 // resetReconnect
	var again []string
	var accounts []string
	if rebinding {
		for b, mb := range m.bindings {
			again, accounts = append(again, b), append(accounts, mb.accountID)
		}
		m.bindings = map[string]monsterBinding{} // eject
	}
	m.mu.Unlock()
	go m.readLoop(c)
	for i, b := range again {
		m.bind(accounts[i], b)
	}
	m.opened <- struct{}{}
}

func (m *monsterUI) scheduleReconnect() {
	m.mu.Lock()
	if m.done {
		m.mu.Unlock()
		return
	}
	m.open = false
	m.reconnect = min(max(2*m.reconnect, 250*time.Millisecond), time.Minute)
	delay := m.reconnect
	m.mu.Unlock()
	time.AfterFunc(delay, m.connect)
}

// bind subscribes to binding on account, unless bound already.
func (m *monsterUI) bind(accountID, binding string) {
	m.mu.Lock()
	if _, bound := m.bindings[binding]; bound || !m.open {
		m.mu.Unlock()
		return
	}
	m.mu.Unlock()
	m.request("subscribe", accountID, binding, func(r monsterReply) {
		if r.Status == "success" {
			m.mu.Lock()
			if _, bound := m.bindings[binding]; !bound {
				m.bindings[binding] = monsterBinding{accountID: accountID, events: make(chan json.RawMessage, 64)}
			}
			m.mu.Unlock()
			return
		}
		for _, e := range r.Data.Errors {
			if strings.HasPrefix(e, "failed to authenticate token") {
				tok := m.login()
				m.mu.Lock()
				m.token = tok
				m.logins++
				m.authErrors = append(m.authErrors, e)
				m.mu.Unlock()
				m.bind(accountID, binding)
				return
			}
		}
	})
}

// request sends subscribe or unsubscribe with a new request id.
func (m *monsterUI) request(action, accountID, binding string, done func(monsterReply)) {
	var id [16]byte
	_, _ = rand.Read(id[:])
	requestID := hex.EncodeToString(id[:])
	m.mu.Lock()
	m.handshakes[requestID] = done
	// JSON.stringify of monster-ui's object: keys in this order; every
	// value here is plain ASCII that %q quotes as JSON does.
	msg := fmt.Appendf(nil, `{"action":%q,"auth_token":%q,"request_id":%q,"data":{"account_id":%q,"binding":%q}}`,
		action, m.token, requestID, accountID, binding)
	m.sent = append(m.sent, string(msg))
	c := m.conn
	m.mu.Unlock()
	if err := c.WriteFrame(1, msg); err != nil {
		m.mu.Lock()
		delete(m.handshakes, requestID)
		m.mu.Unlock()
	}
}

// readLoop dispatches what the gateway sends until the socket closes.
func (m *monsterUI) readLoop(c *wstest.Conn) {
	for {
		p, err := c.Next()
		if err != nil {
			if cl, ok := err.(wstest.Closed); ok {
				m.mu.Lock()
				m.closes = append(m.closes, cl)
				m.mu.Unlock()
			}
			m.scheduleReconnect()
			return
		}
		var f struct {
			Action        string          `json:"action"`
			SubscribedKey string          `json:"subscribed_key"`
			Data          json.RawMessage `json:"data"`
		}
		if json.Unmarshal(p, &f) != nil {
			continue
		}
		switch f.Action {
		case "reply":
			var r monsterReply
			_ = json.Unmarshal(p, &r)
			m.mu.Lock()
			done := m.handshakes[r.RequestID]
			delete(m.handshakes, r.RequestID)
			m.mu.Unlock()
			if done != nil {
				done(r)
			}
		case "event":
			m.mu.Lock()
			mb, ok := m.bindings[f.SubscribedKey]
			m.mu.Unlock()
			if ok {
				mb.events <- f.Data
			}
		}
	}
}

// bound waits until binding has its listener.
func (m *monsterUI) bound(binding string) monsterBinding {
	m.t.Helper()
	var mb monsterBinding
	testkit.Eventually(m.t, waitLong, "monster-ui to bind "+binding, func() bool {
		m.mu.Lock()
		defer m.mu.Unlock()
		var ok bool
		mb, ok = m.bindings[binding]
		return ok
	})
	return mb
}

// opens waits for the socket to open (again).
func (m *monsterUI) opens() {
	m.t.Helper()
	select {
	case <-m.opened:
	case <-time.After(waitLong):
		m.t.Fatal("monster-ui did not connect")
	}
}

// expect waits for the listener's next call and checks it is for the
// event want (the payload's "event" field).
func (mb monsterBinding) expect(t *testing.T, want string) {
	t.Helper()
	select {
	case data := <-mb.events:
		var p struct {
			Event string `json:"event"`
		}
		if err := json.Unmarshal(data, &p); err != nil {
			t.Fatalf("listener called with %s: %v", data, err)
		}
		if p.Event != want {
			t.Fatalf("listener got %q, want %q", p.Event, want)
		}
	case <-time.After(waitLong):
		t.Fatalf("the listener was not called, want %q", want)
	}
}

// requestsSince returns the requests sent after the first n, decoded.
func (m *monsterUI) requestsSince(n int) []map[string]any {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []map[string]any
	for _, s := range m.sent[n:] {
		var v map[string]any
		_ = json.Unmarshal([]byte(s), &v)
		out = append(out, v)
	}
	return out
}

func (m *monsterUI) requestCount() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.sent)
}

func TestMonsterUIRebindsAcrossAGatewayRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t, Config{})
	acc := e.account("")
	ui := newMonsterUI(t, e.url, e.token(acc), func() string {
		t.Error("monster-ui was made to log in again")
		return e.token(acc)
	})
	ui.opens()
	ui.bind(acc, "qubicle.queue")
	q := ui.bound("qubicle.queue")
	e.publish("qubicle.queue." + acc + ".Q1.join")
	q.expect(t, "queue.join")

	before := ui.requestCount()
	e.restartGateway(Config{}) // a notice, close 1001, then a new gateway on the same address
	ui.opens()
	q = ui.bound("qubicle.queue")
	e.publish("qubicle.queue." + acc + ".Q1.leave")
	q.expect(t, "queue.leave")
	sent := ui.requestsSince(before)
	if len(sent) != 1 || sent[0]["action"] != "subscribe" || sent[0]["data"].(map[string]any)["binding"] != "qubicle.queue" {
		t.Fatalf("on reconnect monster-ui sent %v, want one subscribe to qubicle.queue", sent)
	}
	ui.mu.Lock()
	defer ui.mu.Unlock()
	if len(ui.closes) != 1 || ui.closes[0].Code != 1001 {
		t.Fatalf("closes %v, want one 1001 going away", ui.closes)
	}
}

func TestMonsterUILogsInAgainWhenItsTokenExpires(t *testing.T) {
	t.Parallel()
	e, clock, acc, tok, exp := newShortTokenEnv(t)
	ui := newMonsterUI(t, e.url, tok, func() string { return e.token(acc) })
	ui.opens()
	ui.bind(acc, "qubicle.session")
	s := ui.bound("qubicle.session")
	e.publish("qubicle.session." + acc + ".S1.create")
	s.expect(t, "session.create")

	// At expiry the gateway closes the socket (4001); monster-ui reconnects
	// and rebinds with the token it has, is told "failed to authenticate
	// token", logs in and binds again.
	clock.AdvanceTo(exp)
	ui.opens()
	testkit.Eventually(t, waitLong, "monster-ui to log in again", func() bool {
		ui.mu.Lock()
		defer ui.mu.Unlock()
		return ui.logins == 1
	})
	s = ui.bound("qubicle.session")
	e.publish("qubicle.session." + acc + ".S1.delete")
	s.expect(t, "session.delete")
	ui.mu.Lock()
	defer ui.mu.Unlock()
	if len(ui.closes) != 1 || ui.closes[0].Code != protocol.CloseTokenExpired {
		t.Fatalf("closes %v, want one 4001", ui.closes)
	}
	if len(ui.authErrors) != 1 || !strings.HasPrefix(ui.authErrors[0], "failed to authenticate token: auth token has expired at ") {
		t.Fatalf("errors that made it log in: %q", ui.authErrors)
	}
}
