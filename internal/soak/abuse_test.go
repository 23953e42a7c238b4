package soak

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/gobwas/ws"
	"github.com/gobwas/ws/wsutil"
)

// abuse runs hostile clients against the gateway while the well-behaved
// ones are checked: each attempt does one bad thing and checks the
// documented answer (an error reply that keeps the connection usable, or
// a close with the documented code). Protocol abuse and bad tokens come
// from separate 127.0.0.x addresses, because the auth back-off counts
// failures per address.
type abuse struct {
	run      *soakRun
	protoIPs []net.IP
	tokenIPs []net.IP

	outcomes map[string]*tally // by kind; the map itself is never modified
	bad      problems          // answers that were not the documented ones
}

// abuseKind is one kind of misbehaviour and the outcomes docs/protocol.md
// promises for it.
type abuseKind struct {
	name   string
	tokens bool // fails token checks: run from tokenIPs
	weight int
	expect []string
	do     func(ctx context.Context, a *abuse, local net.IP, rng *rand.Rand) string
}

const (
	outErrorThenPong = "error reply, then pong"
	outErrorReplies  = "error replies"
	outRateLimited   = "rate limited"
	outClosedByGW    = "closed by the gateway"
	outHTTPRefused   = "HTTP error"
	outDone          = "done"
	outInterrupted   = "interrupted by a restart"
)

var abuseKinds = []abuseKind{
	{name: "bad requests", weight: 6, expect: []string{outErrorThenPong}, do: badRequests},
	{name: "binary frame", weight: 3, expect: []string{"close 1003"}, do: sendFrame(ws.OpBinary, []byte(`{"action":"ping"}`))},
	{name: "oversize frame", weight: 2, expect: []string{"close 1009"}, do: oversize},
	{name: "invalid UTF-8", weight: 3, expect: []string{"close 1007"}, do: sendFrame(ws.OpText, []byte("{\"action\":\"ping\",\"x\":\"\xff\xfe\"}"))},
	{name: "malformed frame", weight: 4, expect: []string{"close 1002"}, do: malformedFrame},
	{name: "bad tokens", tokens: true, weight: 4, expect: []string{outErrorReplies}, do: badTokens},
	{name: "subscribe flood", weight: 1, expect: []string{outRateLimited}, do: subscribeFlood},
	{name: "slowloris handshake", weight: 1, expect: []string{outClosedByGW}, do: slowloris},
	{name: "garbage handshake", weight: 2, expect: []string{outHTTPRefused, outClosedByGW}, do: garbageHandshake},
	{name: "reset after subscribe", weight: 3, expect: []string{outDone}, do: resetAfterSubscribe},
}

func newAbuse(run *soakRun, protoIPs, tokenIPs []net.IP) *abuse {
	a := &abuse{run: run, protoIPs: protoIPs, tokenIPs: tokenIPs, outcomes: map[string]*tally{}}
	for _, k := range abuseKinds {
		a.outcomes[k.name] = &tally{}
	}
	return a
}

// loop runs attempts one after another until ctx ends: first one of each
// kind, so that every kind is tried however short the run, then kinds
// picked at random by weight.
func (a *abuse) loop(ctx context.Context, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, 7))
	total := 0
	for _, k := range abuseKinds {
		total += k.weight
	}
	offset := int(seed % uint64(len(abuseKinds))) // abusers start on different kinds
	for n := 0; ctx.Err() == nil; n++ {
		k := abuseKinds[(n+offset)%len(abuseKinds)]
		if n >= len(abuseKinds) {
			x := rng.IntN(total)
			for _, c := range abuseKinds {
				if x < c.weight {
					k = c
					break
				}
				x -= c.weight
			}
		}
		ips := a.protoIPs
		if k.tokens {
			ips = a.tokenIPs
		}
		gw := a.run.gw
		gen, down := gw.gen.Load(), gw.down.Load()
		out := k.do(ctx, a, ips[rng.IntN(len(ips))], rng)
		if ctx.Err() != nil {
			return // cut short by the end of the run
		}
		switch {
		case slices.Contains(k.expect, out):
		case down || gw.down.Load() || gw.gen.Load() != gen:
			out = outInterrupted
		default:
			a.bad.add("%s: %s; expected %s", k.name, out, strings.Join(k.expect, " or "))
		}
		a.outcomes[k.name].add(out)
		select {
		case <-ctx.Done():
		case <-time.After(50*time.Millisecond + time.Duration(rng.Int64N(int64(450*time.Millisecond)))):
		}
	}
}

// hostile is one open hostile connection.
type hostile struct {
	conn net.Conn
	w    *wsWriter
	rw   io.ReadWriter
	stop func() bool
}

func (a *abuse) open(ctx context.Context, local net.IP) (*hostile, string) {
	conn, err := dialWS(ctx, a.run.gw.wsURL(), local)
	if err != nil {
		return nil, "dial failed"
	}
	w := &wsWriter{conn: conn}
	h := &hostile{conn: conn, w: w, rw: struct {
		io.Reader
		io.Writer
	}{bufio.NewReader(conn), w}}
	h.stop = context.AfterFunc(ctx, func() { conn.Close() })
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	return h, ""
}

func (h *hostile) close() {
	h.stop()
	h.conn.Close()
}

// next reads the next text message, skipping events; on the end of the
// connection it returns how it ended.
func (h *hostile) next() (frame, string) {
	for {
		msg, op, err := wsutil.ReadServerData(h.rw)
		if err != nil {
			return frame{}, ending(err)
		}
		var f frame
		if op != ws.OpText || json.Unmarshal(msg, &f) != nil {
			return frame{}, "unreadable message"
		}
		if f.Action == "event" {
			continue
		}
		return f, ""
	}
}

// ask sends one text message and returns the next answer, or how the
// connection ended.
func (h *hostile) ask(msg []byte) (frame, string) {
	if err := h.w.text(msg); err != nil {
		return frame{}, "write failed: " + ending(err)
	}
	return h.next()
}

// refuses sends one request the gateway must answer with an error reply
// and keep the connection; it returns "" when it did, else what happened
// instead. what names the request in that outcome.
func (h *hostile) refuses(msg []byte, what string) string {
	f, end := h.ask(msg)
	if end == "" && (f.Action != "reply" || f.Status != "error") {
		return fmt.Sprintf("answered %s %s to %s", f.Action, f.Status, what)
	}
	return end
}

// closeCode sends raw bytes and returns how the gateway ended the
// connection, or what it answered instead.
func (h *hostile) closeCode(raw []byte) string {
	if _, err := h.w.Write(raw); err != nil {
		return "write failed: " + ending(err)
	}
	f, end := h.next()
	if end != "" {
		return end
	}
	return "answered " + f.Action + " " + f.Status
}

func sendFrame(op ws.OpCode, payload []byte) func(context.Context, *abuse, net.IP, *rand.Rand) string {
	return func(ctx context.Context, a *abuse, local net.IP, _ *rand.Rand) string {
		h, fail := a.open(ctx, local)
		if h == nil {
			return fail
		}
		defer h.close()
		return h.closeCode(clientFrame(op, true, payload))
	}
}

// clientFrame encodes one frame, masked as a client's must be; the
// payload is copied, not masked in place.
func clientFrame(op ws.OpCode, fin bool, payload []byte) []byte {
	return ws.MustCompileFrame(ws.MaskFrame(ws.NewFrame(op, fin, payload)))
}

func oversize(ctx context.Context, a *abuse, local net.IP, _ *rand.Rand) string {
	h, fail := a.open(ctx, local)
	if h == nil {
		return fail
	}
	defer h.close()
	pad := strings.Repeat("x", 70<<10)
	return h.closeCode(clientFrame(ws.OpText, true, []byte(`{"action":"ping","pad":"`+pad+`"}`)))
}

// malformedFrame breaks the framing rules of RFC 6455 one way or another.
func malformedFrame(ctx context.Context, a *abuse, local net.IP, rng *rand.Rand) string {
	h, fail := a.open(ctx, local)
	if h == nil {
		return fail
	}
	defer h.close()
	ping := []byte(`{"action":"ping"}`)
	var raw []byte
	switch rng.IntN(5) {
	case 0: // a client frame without a mask
		raw = ws.MustCompileFrame(ws.NewTextFrame(ping))
	case 1: // a reserved opcode
		raw = clientFrame(0x3, true, ping)
	case 2: // a continuation with nothing to continue
		raw = clientFrame(ws.OpContinuation, true, ping)
	case 3: // a control frame over 125 bytes
		raw = clientFrame(ws.OpPing, true, bytes.Repeat([]byte{'p'}, 200))
	case 4: // a fragmented control frame
		raw = clientFrame(ws.OpPing, false, []byte("p"))
	}
	return h.closeCode(raw)
}

// badRequests sends requests the gateway must refuse with an error reply
// while keeping the connection, then checks it still answers a ping.
func badRequests(ctx context.Context, a *abuse, local net.IP, rng *rand.Rand) string {
	accts := a.run.accts
	mine, other := accts[rng.IntN(len(accts))], accts[rng.IntN(len(accts))]
	for other == mine && len(accts) > 1 {
		other = accts[rng.IntN(len(accts))]
	}
	sub := func(acc, b string) string {
		return fmt.Sprintf(`{"action":"subscribe","auth_token":%q,"request_id":"b","data":{"account_id":%q,"binding":%q}}`, mine.token, acc, b)
	}
	bad := []string{
		`{"action":"subscribe","data":`,
		`not json at all`,
		`[1,2,3]`,
		`{"action":42}`,
		`{"action":"dance","request_id":"b"}`,
		`{"action":"subscribe","auth_token":"x","data":{"bindings":7}}`,
		strings.Repeat(`{"a":`, 3000) + "1" + strings.Repeat("}", 3000), // nesting bomb
		strings.Repeat("[", 50000),
		sub(other.id, "qubicle.queue."+other.id+".*"),                // another account's events
		sub(mine.id, "qubicle.queue.*"),                              // wildcard account
		sub(mine.id, "qubicle.queue.#"),                              // # at the account
		sub(mine.id, "qubicle.queue."+other.id+".*"),                 // binding names another account
		sub(mine.id, "qubicle.queue."+strings.ToUpper(mine.id)+".*"), // case look-alike
		sub(mine.id, "qubicle.queue."+mine.id+".*.explode"),          // unknown event
		sub(mine.id, "qubicle.nonsense."+mine.id+".*"),               // unknown family
	}
	h, fail := a.open(ctx, local)
	if h == nil {
		return fail
	}
	defer h.close()
	for range 1 + rng.IntN(3) {
		req := bad[rng.IntN(len(bad))]
		if out := h.refuses([]byte(req), fmt.Sprintf("%.60s", req)); out != "" {
			return out
		}
	}
	f, end := h.ask([]byte(`{"action":"ping","request_id":"p"}`))
	if end != "" {
		return end
	}
	var d replyData
	if f.Action != "reply" || f.Status != "success" || f.RequestID != "p" || json.Unmarshal(f.Data, &d) != nil || !d.Pong {
		return fmt.Sprintf("answered the ping with %s %s", f.Action, f.Status)
	}
	return outErrorThenPong
}

// badTokens subscribes with tokens that must not verify: missing,
// garbage, forged, or a real one with a changed signature. Beyond a few
// failures a minute the gateway asks the address to wait (retry_after).
func badTokens(ctx context.Context, a *abuse, local net.IP, rng *rand.Rand) string {
	acc := a.run.accts[rng.IntN(len(a.run.accts))]
	real := acc.token
	flipped := real[:len(real)-2] + string("AB"[rng.IntN(2)]) + real[len(real)-1:]
	if flipped == real {
		flipped = real[:len(real)-2] + "CD"
	}
	tokens := []string{"", "garbage", "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl", flipped, strings.Repeat("A", 4000)}
	h, fail := a.open(ctx, local)
	if h == nil {
		return fail
	}
	defer h.close()
	for range 1 + rng.IntN(12) {
		msg, _ := json.Marshal(map[string]any{"action": "subscribe", "auth_token": tokens[rng.IntN(len(tokens))], "request_id": "t",
			"data": map[string]any{"account_id": acc.id, "binding": "qubicle.*." + acc.id}})
		if out := h.refuses(msg, "a bad token"); out != "" {
			return out
		}
	}
	return outErrorReplies
}

// subscribeFlood sends far more subscribe requests than the per-connection
// rate allows; the excess must be refused, the rest answered.
func subscribeFlood(ctx context.Context, a *abuse, local net.IP, rng *rand.Rand) string {
	acc := a.run.accts[rng.IntN(len(a.run.accts))]
	h, fail := a.open(ctx, local)
	if h == nil {
		return fail
	}
	defer h.close()
	const n = 250
	msg, _ := json.Marshal(map[string]any{"action": "subscribe", "auth_token": acc.token, "request_id": "f",
		"data": map[string]any{"account_id": acc.id, "binding": "qubicle.session." + acc.id + ".call-0"}})
	var batch []byte
	for range n {
		batch = append(batch, clientFrame(ws.OpText, true, msg)...)
	}
	if _, err := h.w.Write(batch); err != nil {
		return "write failed: " + ending(err)
	}
	refused := 0
	for range n {
		f, end := h.next()
		if end != "" {
			return end
		}
		if f.Action != "reply" {
			continue
		}
		var d replyData
		_ = json.Unmarshal(f.Data, &d)
		if f.Status == "error" {
			if !strings.Contains(d.Message, "too many") {
				return "refused for another reason: " + d.Message
			}
			refused++
		}
	}
	if refused == 0 {
		return "not limited"
	}
	return outRateLimited
}

// dialTCP opens a plain TCP connection from local to the websocket port,
// for abuse below the websocket layer; it is closed when ctx ends or done
// is called.
func (a *abuse) dialTCP(ctx context.Context, local net.IP) (conn net.Conn, done func(), err error) {
	nd := net.Dialer{LocalAddr: &net.TCPAddr{IP: local}, Timeout: 20 * time.Second}
	conn, err = nd.DialContext(ctx, "tcp", a.run.gw.wsAddr)
	if err != nil {
		return nil, nil, err
	}
	stop := context.AfterFunc(ctx, func() { conn.Close() })
	return conn, func() { stop(); conn.Close() }, nil
}

// slowloris starts an HTTP upgrade request and never finishes it; the
// handshake timeout must close the socket.
func slowloris(ctx context.Context, a *abuse, local net.IP, _ *rand.Rand) string {
	conn, done, err := a.dialTCP(ctx, local)
	if err != nil {
		return "dial failed"
	}
	defer done()
	if _, err := conn.Write([]byte("GET / HTTP/1.1\r\nHost: soak\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n")); err != nil {
		return "write failed"
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	_, err = io.Copy(io.Discard, conn)
	if err == nil || strings.Contains(err.Error(), "reset") {
		return outClosedByGW
	}
	return "still open after 30s"
}

// garbageHandshake sends bytes that are no HTTP request at all.
func garbageHandshake(ctx context.Context, a *abuse, local net.IP, rng *rand.Rand) string {
	conn, done, err := a.dialTCP(ctx, local)
	if err != nil {
		return "dial failed"
	}
	defer done()
	junk := make([]byte, 64+rng.IntN(512))
	for i := range junk {
		junk[i] = byte(rng.UintN(256))
	}
	junk = append(junk, "\r\n\r\n"...)
	if _, err := conn.Write(junk); err != nil {
		return outClosedByGW
	}
	_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
	resp, err := io.ReadAll(conn)
	switch {
	case bytes.HasPrefix(resp, []byte("HTTP/1.1 4")):
		return outHTTPRefused
	case len(resp) == 0 && (err == nil || strings.Contains(err.Error(), "reset")):
		return outClosedByGW
	}
	return fmt.Sprintf("answered %.40q (%v)", resp, err)
}

// resetAfterSubscribe subscribes and drops the TCP connection with a reset
// before reading anything: the gateway must clean up after it.
func resetAfterSubscribe(ctx context.Context, a *abuse, local net.IP, rng *rand.Rand) string {
	acc := a.run.accts[rng.IntN(len(a.run.accts))]
	h, fail := a.open(ctx, local)
	if h == nil {
		return fail
	}
	defer h.close()
	msg, _ := json.Marshal(map[string]any{"action": "subscribe", "auth_token": acc.token,
		"data": map[string]any{"account_id": acc.id, "binding": "qubicle.*." + acc.id, "since": map[string]any{"sequence": 1}}})
	if err := h.w.text(msg); err != nil {
		return outDone
	}
	time.Sleep(time.Duration(rng.Int64N(int64(200 * time.Millisecond))))
	if tc, ok := h.conn.(*net.TCPConn); ok {
		_ = tc.SetLinger(0)
	}
	return outDone
}

// connFlood opens connections from one address, which nothing else uses,
// up to the per-address limit and 20 beyond. Each of the first limit must
// be admitted (it answers a ping); each one beyond must be turned away at
// the upgrade with HTTP 429, as Kazoo's blackhole does.
func connFlood(ctx context.Context, r *soakRun, local net.IP, limit int) (admitted, refused int, other string) {
	var open []net.Conn
	defer func() {
		for _, c := range open {
			c.Close()
		}
	}()
	ping := clientFrame(ws.OpText, true, []byte(`{"action":"ping","request_id":"p"}`))
	for i := 0; i < limit+20 && ctx.Err() == nil; i++ {
		conn, err := dialWS(ctx, r.gw.wsURL(), local)
		var status ws.StatusError
		switch {
		case i >= limit && errors.As(err, &status) && status == http.StatusTooManyRequests:
			refused++
			continue
		case err != nil:
			return admitted, refused, fmt.Sprintf("connection %d: dial failed: %v", i+1, err)
		}
		open = append(open, conn)
		_ = conn.SetDeadline(time.Now().Add(30 * time.Second))
		if _, err := conn.Write(ping); err != nil {
			return admitted, refused, fmt.Sprintf("connection %d: write failed: %s", i+1, ending(err))
		}
		rw := struct {
			io.Reader
			io.Writer
		}{conn, &wsWriter{conn: conn}}
		msg, _, err := wsutil.ReadServerData(rw)
		switch {
		case i < limit && err == nil && bytes.Contains(msg, []byte(`"pong":true`)):
			admitted++
		default:
			return admitted, refused, fmt.Sprintf("connection %d: %s %.80s", i+1, ending(err), msg)
		}
	}
	return admitted, refused, ""
}
