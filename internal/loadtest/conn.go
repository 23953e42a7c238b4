package loadtest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/ccevents/ccevents/protocol"
	"github.com/gobwas/ws"
)

// targetProto is what a target speaks over its websockets.
type targetProto string

// Protocols of the two targets.
const (
	// protoGateway is the ccevents gateway's JSON protocol.
	protoGateway targetProto = "gateway"
	// protoNATS is plain NATS over nats-server's websocket listener.
	protoNATS targetProto = "nats"
)

// connTimeout bounds one connection's dial, handshake and subscribe.
const connTimeout = 15 * time.Second

// connSpec is one connection's place in the scenario.
type connSpec struct {
	kind    Kind
	account int // the account's place in the run's list
	entity  int // queue or recipient index, for per-entity kinds and agents
	src     netip.Addr
}

// bindings returns what the connection subscribes to: ccevents bindings,
// or the equivalent NATS subject filters. An agent serves agentQueues of
// the account's queues, starting at its own number.
func (s connSpec) bindings(proto targetProto, account string, queues, agentQueues int) []string {
	var bs []string
	switch s.kind {
	case KindQueue:
		bs = []string{"qubicle.queue." + account + "." + queueID(s.entity)}
	case KindRecipient:
		bs = []string{"qubicle.recipient." + account + "." + recipientID(s.entity)}
	case KindAgent:
		bs = []string{"qubicle.recipient." + account + "." + recipientID(s.entity)}
		for _, q := range agentQueueList(s.entity, queues, agentQueues) {
			bs = append(bs, "qubicle.queue."+account+"."+queueID(q))
		}
	default:
		bs = []string{"qubicle.*." + account + ".*"}
	}
	if proto == protoNATS {
		for i := range bs {
			bs[i] += ".>"
		}
	}
	return bs
}

// follows lists the entity numbers whose events the connection receives
// (queues first, then recipients); nil for an account-wide connection,
// which receives every event of its account.
func (s connSpec) follows(queues, agentQueues int) []int {
	switch s.kind {
	case KindQueue:
		return []int{s.entity}
	case KindRecipient:
		return []int{queues + s.entity}
	case KindAgent:
		return append([]int{queues + s.entity}, agentQueueList(s.entity, queues, agentQueues)...)
	}
	return nil
}

// agentQueueList is the queues agent a serves: n of them, from its own
// number on, so the account's queues are served evenly.
func agentQueueList(a, queues, n int) []int {
	n = min(n, queues)
	out := make([]int, n)
	for j := range out {
		out[j] = (a + j) % queues
	}
	return out
}

// refusedError is a subscribe the gateway answered with an error.
type refusedError struct{ msg string }

func (e *refusedError) Error() string { return e.msg }

// serverClose is a close frame received from the server.
type serverClose struct {
	code   protocol.CloseCode
	reason string
}

func (e *serverClose) Error() string {
	return fmt.Sprintf("server closed the connection with code %d (%s)", e.code, e.reason)
}

// conn is one websocket connection of the load tool: it reads every frame,
// finds the bench stamp in each event and keeps per-connection counters.
// Only its reader goroutine touches the parsing state; counters are atomic
// so the group can read them at any time.
type conn struct {
	spec  connSpec
	proto targetProto
	g     *group

	nc      net.Conn // while setting up; then the socket is fdc, read by a poller
	fdc     *fdConn
	fr      *frameReader
	wmu     sync.Mutex
	frag    []byte // a fragmented message being assembled
	tail    []byte // NATS: incomplete protocol data carried to the next frame
	pongs   int    // NATS: PONGs seen (set-up waits for one)
	natsErr string

	// ents are the entity numbers the connection follows (nil: the whole
	// account) and next the index expected next on each (one for the
	// account); written by the reader, read by the group at the end.
	ents     []int
	next     []atomic.Uint64
	received atomic.Uint64
	strays   atomic.Uint64 // events of an entity or account it did not subscribe to
	gaps     atomic.Uint64
	dups     atomic.Uint64
	lost     atomic.Bool // closed by the server or the network before the end
	closing  atomic.Bool
}

// ipBindAddressNoPort is Linux's IP_BIND_ADDRESS_NO_PORT socket option.
const ipBindAddressNoPort = 24

// bindAddressNoPort lets the kernel choose the local port at connect time,
// by the whole address 4-tuple, rather than when the source address is
// bound: a port bound first is reserved towards every destination, so each
// source address would run out of ephemeral ports much sooner.
func bindAddressNoPort(_, _ string, rc syscall.RawConn) error {
	var serr error
	err := rc.Control(func(fd uintptr) {
		serr = syscall.SetsockoptInt(int(fd), syscall.IPPROTO_IP, ipBindAddressNoPort, 1)
	})
	if err != nil {
		return err
	}
	return serr
}

// open dials, upgrades and subscribes to bindings of account; on success
// the connection is ready for its read loop.
func (c *conn) open(ctx context.Context, url, token, account string, bindings []string, reqID int) error {
	ctx, cancel := context.WithTimeout(ctx, connTimeout)
	defer cancel()
	src := net.TCPAddr{IP: c.spec.src.AsSlice()}
	d := ws.Dialer{
		Timeout: connTimeout,
		NetDial: func(ctx context.Context, network, addr string) (net.Conn, error) {
			// No TCP keep-alive: the run is minutes long and the gateway
			// pings; its four setsockopt calls per connection are tool CPU
			// taken from the server's two cores during set-up.
			nd := net.Dialer{LocalAddr: &src, Control: bindAddressNoPort, KeepAlive: -1}
			return nd.DialContext(ctx, network, addr)
		},
	}
	nc, hbr, _, err := d.Dial(ctx, url)
	if err != nil {
		return fmt.Errorf("connect from %s: %w", c.spec.src, err)
	}
	c.nc = nc
	c.fr = newFrameReader(nc)
	if hbr != nil {
		// The server spoke right after the handshake (NATS sends INFO).
		c.fr.makeRoom(hbr.Buffered())
		n, _ := io.ReadFull(hbr, c.fr.buf[c.fr.w:c.fr.w+hbr.Buffered()])
		c.fr.w += n
		ws.PutReader(hbr)
	}
	if dl, ok := ctx.Deadline(); ok {
		_ = nc.SetDeadline(dl)
	}
	if c.proto == protoNATS {
		err = c.subscribeNATS(bindings)
	} else {
		err = c.subscribeGateway(token, account, bindings, reqID)
	}
	if err != nil {
		nc.Close()
		return err
	}
	_ = nc.SetDeadline(time.Time{})
	return nil
}

func (c *conn) subscribeGateway(token, account string, bindings []string, reqID int) error {
	id := "bench-" + strconv.Itoa(reqID)
	req := protocol.Request{Action: protocol.Subscribe, AuthToken: token, RequestID: protocol.NewRequestID(id),
		Data: protocol.RequestData{AccountID: account, Bindings: make([]protocol.BindingSpec, len(bindings))}}
	for i, b := range bindings {
		req.Data.Bindings[i].Binding = b
	}
	msg, err := json.Marshal(req)
	if err != nil {
		return err
	}
	if err := c.write(ws.OpText, msg); err != nil {
		return fmt.Errorf("send subscribe: %w", err)
	}
	for {
		p, err := c.readMessage()
		if err != nil {
			return fmt.Errorf("wait for the subscribe reply: %w", err)
		}
		if !bytes.Contains(p, []byte(`"reply"`)) {
			continue // an event or notice before our reply
		}
		var data protocol.SubscriptionData
		r := protocol.Reply{Data: &data}
		if json.Unmarshal(p, &r) != nil || r.Action != protocol.ReplyAction || r.RequestID.Text() != id {
			continue
		}
		if r.Status != protocol.StatusSuccess {
			msg := data.Message
			if msg == "" && len(data.Errors) > 0 {
				msg = data.Errors[0]
			}
			return &refusedError{fmt.Sprintf("subscribe %s refused: %s", strings.Join(bindings, ", "), msg)}
		}
		return nil
	}
}

func (c *conn) subscribeNATS(subjects []string) error {
	// The server's INFO comes first; CONNECT, the SUBs and PING go out in
	// one frame and the PONG proves the subscriptions are registered.
	info, err := c.readMessage()
	if err != nil {
		return fmt.Errorf("wait for the NATS INFO: %w", err)
	}
	cmd, err := c.g.plan.NATSAuth.connectLine(info)
	if err != nil {
		return err
	}
	for i, subj := range subjects {
		cmd = fmt.Appendf(cmd, "SUB %s %d\r\n", subj, i+1)
	}
	cmd = append(cmd, "PING\r\n"...)
	if err := c.write(ws.OpBinary, cmd); err != nil {
		return fmt.Errorf("send NATS subscribe: %w", err)
	}
	for c.pongs == 0 {
		p, err := c.readMessage()
		if err != nil {
			return fmt.Errorf("wait for the NATS PONG: %w", err)
		}
		if err := c.feedNATS(p, 0); err != nil {
			return err
		}
		if c.natsErr != "" {
			return fmt.Errorf("NATS refused the subscription: %s", c.natsErr)
		}
	}
	return nil
}

// write sends one masked frame; the reader (pongs, close replies) and the
// group (final close) may both write, hence the lock.
func (c *conn) write(op ws.OpCode, p []byte) error {
	c.wmu.Lock()
	defer c.wmu.Unlock()
	if c.fdc != nil {
		return writeClientFrame(c.fdc, op, p)
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(5 * time.Second))
	return writeClientFrame(c.nc, op, p)
}

// readMessage returns the next complete data message, reading as needed:
// the blocking path used while setting up.
func (c *conn) readMessage() ([]byte, error) {
	for {
		h, p, err := c.fr.next()
		if err != nil {
			return nil, err
		}
		msg, err := c.frame(h, p)
		if err != nil || msg != nil {
			return msg, err
		}
	}
}

// frame handles one frame: it returns a complete data message (nil while a
// fragmented one is being assembled), answers pings, and turns a close frame
// into *serverClose. The message is valid until the next read.
func (c *conn) frame(h frameHeader, p []byte) ([]byte, error) {
	if h.masked {
		ws.Cipher(p, h.mask, 0)
	}
	switch h.op {
	case ws.OpText, ws.OpBinary:
		if h.fin {
			return p, nil
		}
		c.frag = append(c.frag[:0], p...)
	case ws.OpContinuation:
		c.frag = append(c.frag, p...)
		if len(c.frag) > maxFrameBytes {
			return nil, fmt.Errorf("server sent a message over %d bytes", maxFrameBytes)
		}
		if h.fin {
			return c.frag, nil
		}
	case ws.OpPing:
		if err := c.write(ws.OpPong, p); err != nil {
			return nil, err
		}
	case ws.OpClose:
		code, reason := ws.ParseCloseFrameData(p)
		_ = c.write(ws.OpClose, ws.NewCloseFrameBody(code, ""))
		return nil, &serverClose{code: protocol.CloseCode(code), reason: reason}
	}
	return nil, nil
}

// readReady reads the socket once, as its poller found it readable, and
// handles every complete frame then buffered. An error ends the connection.
func (c *conn) readReady() error {
	return c.afterRead(c.fr.fill())
}

// afterRead handles what a read of the socket brought, unless it failed:
// a socket found empty (or a read interrupted) is not a failure.
func (c *conn) afterRead(err error) error {
	if err != nil && !errors.Is(err, syscall.EAGAIN) && !errors.Is(err, syscall.EINTR) {
		return err
	}
	return c.handleBuffered()
}

// handleBuffered takes every complete frame out of the read buffer.
func (c *conn) handleBuffered() error {
	for {
		h, p, ok, err := c.fr.buffered()
		if err != nil || !ok {
			return err
		}
		msg, err := c.frame(h, p)
		if err == nil && msg != nil {
			err = c.message(msg)
		}
		if err != nil {
			return err
		}
	}
}

// message counts the bench events in one data message.
func (c *conn) message(p []byte) error {
	if c.proto == protoNATS {
		return c.feedNATS(p, c.fr.at)
	}
	c.scan(p, c.fr.at)
	return nil
}

// feedNATS parses NATS protocol data in any framing, keeping an incomplete
// tail for the next frame.
func (c *conn) feedNATS(p []byte, now int64) error {
	if len(c.tail) > 0 {
		c.tail = append(c.tail, p...)
		p = c.tail
	}
	var werr error
	rest, err := natsParse(p, func(ev natsEvent, data []byte) {
		switch ev {
		case natsMsg:
			c.scan(data, now)
		case natsPing:
			if e := c.write(ws.OpBinary, []byte("PONG\r\n")); e != nil && werr == nil {
				werr = e
			}
		case natsPong:
			c.pongs++
		case natsErr:
			c.natsErr = string(data)
		}
	})
	if err != nil {
		return err
	}
	// rest may alias c.tail; append's copy is an overlapping-safe memmove.
	c.tail = append(c.tail[:0], rest...)
	// An -ERR after set-up is kept: a fatal one is followed by the server
	// closing, and ended() reports it then.
	return werr
}

// scan records every bench stamp in one message. One message normally holds
// one event; a server that batches events into one frame is counted right.
func (c *conn) scan(p []byte, now int64) {
	hist := c.g.hist.Load()
	for {
		s, rest, ok, bad := nextStamp(p)
		if !ok {
			return
		}
		p = rest
		if bad {
			c.g.unparsed.Add(1)
			continue
		}
		slot, idx := c.slot(s)
		if slot < 0 {
			c.strays.Add(1)
			continue
		}
		next := &c.next[slot]
		switch n := next.Load(); {
		case idx == n:
			next.Store(n + 1)
		case idx > n:
			c.gaps.Add(idx - n)
			next.Store(idx + 1)
		default:
			c.dups.Add(1)
		}
		c.received.Add(1)
		if now != 0 {
			hist.Record(time.Duration(now - s.sentNS))
		}
	}
}

// slot finds the stream a stamped event belongs to on this connection and
// the event's index in it; slot is -1 for an event the connection did not
// subscribe to (another account's, or another entity's).
func (c *conn) slot(s stamp) (slot int, idx uint64) {
	if s.n != c.spec.account {
		return -1, 0
	}
	if c.ents == nil {
		return 0, s.account
	}
	for i, k := range c.ents {
		if k == s.k {
			return i, s.entity
		}
	}
	return -1, 0
}

// ended records why a connection stopped, unless the tool closed it; the
// caller closes the socket.
func (c *conn) ended(err error) {
	if c.closing.Load() {
		return
	}
	c.lost.Store(true)
	var sc *serverClose
	switch {
	case errors.As(err, &sc) && sc.code == protocol.CloseSlowConsumer:
		c.g.slowCloses.Add(1)
	case c.proto == protoNATS && bytes.Contains(bytes.ToLower([]byte(c.natsErr)), []byte("slow consumer")):
		c.g.slowCloses.Add(1)
	default:
		c.g.otherCloses.Add(1)
		c.g.noteError(err)
	}
}

// close ends the connection from our side with a normal close frame.
func (c *conn) close() {
	if c.nc == nil || !c.closing.CompareAndSwap(false, true) {
		return
	}
	if !c.lost.Load() {
		_ = c.write(ws.OpClose, ws.NewCloseFrameBody(ws.StatusNormalClosure, ""))
	}
	if c.fdc != nil {
		c.fdc.shutdown() // its poller sees the end and closes the socket
		return
	}
	c.nc.Close()
}
