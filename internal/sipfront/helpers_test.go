package sipfront_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/diago/media"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/nats-io/nats.go"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/engine/cluster"
	"github.com/ccevents/ccevents/internal/engine/enginetest"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/sipfront"
	"github.com/ccevents/ccevents/internal/sipstore"
	"github.com/ccevents/ccevents/internal/testkit"
)

const acc = "0123456789abcdef0123456789abcdef"

// rig is a contact center with a SIP front end on loopback: an engine on
// an in-memory bus, the telephony store, and the front end.
type rig struct {
	t      testing.TB
	ctx    context.Context
	bus    *bus.Bus
	eng    *cluster.Router
	store  *sipstore.Store
	sip    *sipfront.Server
	events *eventLog
}

func newRig(t testing.TB, cfg sipfront.Config) *rig {
	t.Helper()
	// The rig runs for the test: its phones and the front end stop when
	// the test's context ends, before the cleanups close the rest.
	ctx := t.Context()
	b := natstest.Bus(t, bus.Config{Memory: true, Name: "sipfront-test"})
	octx, ocancel := context.WithTimeout(ctx, 30*time.Second)
	defer ocancel()
	e := enginetest.Start(t, engine.Config{Publisher: b, SyncInterval: -1})
	r, err := cluster.NewRouter(cluster.RouterConfig{Local: e})
	if err != nil {
		t.Fatal(err)
	}
	kv, err := b.KeyValue(octx, sipstore.Bucket)
	if err != nil {
		t.Fatal(err)
	}
	st, err := sipstore.Open(octx, kv, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(st.Close)
	log := &eventLog{}
	sub, err := b.Conn().Subscribe("qubicle.>", log.add)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sub.Unsubscribe() })
	cfg.Addr, cfg.Engine, cfg.Store, cfg.Conn = "127.0.0.1:0", r, st, b.Conn()
	if cfg.MediaTimeout == 0 {
		cfg.MediaTimeout = -1
	}
	if cfg.Logger == nil {
		// The front end's log, shown when the test fails.
		logs := &testkit.Buffer{}
		cfg.Logger = slog.New(slog.NewTextHandler(logs, &slog.HandlerOptions{Level: slog.LevelDebug}))
		t.Cleanup(func() {
			if t.Failed() {
				t.Logf("the SIP front end's log:\n%s", logs.String())
				t.Logf("the events:\n%s", log.String())
			}
		})
	}
	s, err := sipfront.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start(ctx); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cctx, c := context.WithTimeout(context.Background(), 10*time.Second)
		defer c()
		_ = s.Close(cctx)
	})
	return &rig{t: t, ctx: ctx, bus: b, eng: r, store: st, sip: s, events: log}
}

func (r *rig) ok(err error) {
	r.t.Helper()
	if err != nil {
		r.t.Fatal(err)
	}
}

// do runs an engine command in the test account, for its error only.
func do[Req, Resp any](r *rig, cmd *engine.Command[Req, Resp], req Req) error {
	_, err := cmd.Call(r.ctx, r.eng, acc, req)
	return err
}

// queue creates a queue with a number.
func (r *rig) queue(q engine.QueueConfig, number string) {
	r.t.Helper()
	_, err := engine.CreateQueue.Call(r.ctx, r.eng, acc, q)
	r.ok(err)
	_, err = r.store.SetNumber(r.ctx, sipstore.Number{Number: number, AccountID: acc, QueueID: q.ID})
	r.ok(err)
}

// agent creates a logged-in recipient with SIP credentials.
func (r *rig) agent(id string, wiretap bool, queues ...string) (user, password string) {
	r.t.Helper()
	_, err := engine.CreateRecipient.Call(r.ctx, r.eng, acc, engine.RecipientConfig{ID: id, Name: id, Queues: queues})
	r.ok(err)
	_, err = engine.SetStatus.Call(r.ctx, r.eng, acc, engine.SetStatusRequest{RecipientID: id, StatusRequest: engine.StatusRequest{Action: engine.ActionLogin}})
	r.ok(err)
	c, pw, err := r.store.SetCredential(r.ctx, acc, id, sipstore.NewCredential{Wiretap: wiretap})
	r.ok(err)
	return c.User, pw
}

// eventLog is every event of the bus, in order.
type eventLog struct {
	mu  sync.Mutex
	evs []loggedEvent
}

type loggedEvent struct {
	Name   string
	Fields map[string]any
}

func (l *eventLog) add(m *nats.Msg) {
	parts := strings.Split(m.Subject, ".")
	var f map[string]any
	_ = json.Unmarshal(m.Data, &f)
	l.mu.Lock()
	l.evs = append(l.evs, loggedEvent{Name: parts[1] + "." + parts[4], Fields: f})
	l.mu.Unlock()
}

func (l *eventLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	var b strings.Builder
	for _, e := range l.evs {
		fmt.Fprintf(&b, "%s %v\n", e.Name, e.Fields)
	}
	return b.String()
}

// of returns the events of one session, in order.
func (l *eventLog) of(session string) []loggedEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []loggedEvent
	for _, e := range l.evs {
		if e.Fields["session_id"] == session {
			out = append(out, e)
		}
	}
	return out
}

// count is how many events of the name there are.
func (l *eventLog) count(name string) int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := 0
	for _, e := range l.evs {
		if e.Name == name {
			n++
		}
	}
	return n
}

// matching returns, in order, the events of the name whose fields include
// want (every event of the name when want is nil).
func (l *eventLog) matching(name string, want map[string]any) []loggedEvent {
	l.mu.Lock()
	defer l.mu.Unlock()
	var out []loggedEvent
next:
	for _, e := range l.evs {
		if e.Name != name {
			continue
		}
		for k, v := range want {
			if e.Fields[k] != v {
				continue next
			}
		}
		out = append(out, e)
	}
	return out
}

func (l *eventLog) find(name string, match func(map[string]any) bool) (loggedEvent, bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.evs {
		if e.Name == name && (match == nil || match(e.Fields)) {
			return e, true
		}
	}
	return loggedEvent{}, false
}

func names(evs []loggedEvent) []string {
	out := make([]string, len(evs))
	for i, e := range evs {
		out[i] = e.Name
	}
	return out
}

// phone is a SIP user agent on loopback: a caller, an agent's or a
// supervisor's phone, or a trunk's far end.
type phone struct {
	t    testing.TB
	dg   *diago.Diago
	ua   *sipgo.UserAgent
	addr string // host:port it listens on

	mu   sync.Mutex
	byes []string // the Reason header of every BYE received ("" for none)
}

// newPhone starts a phone; answer is what it does with a call to it (nil
// declines with 603). It is given here, before the phone serves, so that
// no call can see it half set.
func newPhone(t testing.TB, ctx context.Context, transport string, answer func(d *diago.DialogServerSession)) *phone {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("ccevents-test-phone"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ua.Close() })
	p := &phone{t: t, ua: ua}
	// Port 0: the phone binds a port nobody else holds, and diago puts the
	// one it got in its Contact.
	p.dg = diago.NewDiago(ua, diago.WithLogger(slog.New(slog.DiscardHandler)), diago.WithTransport(diago.Transport{Transport: transport, BindHost: "127.0.0.1"}),
		diago.WithMediaConfig(diago.MediaConfig{Codecs: []media.Codec{media.CodecAudioUlaw, media.CodecAudioAlaw}}),
		diago.WithServerRequestMiddleware(p.noteByes))
	if err := p.dg.ServeBackground(ctx, func(d *diago.DialogServerSession) {
		if answer == nil {
			_ = d.Respond(603, "Decline", nil)
			return
		}
		answer(d)
	}); err != nil {
		t.Fatal(err)
	}
	// ServeBackground returns once the port is bound, a moment before the
	// transport layer lists it.
	var ports []int
	testkit.Eventually(t, 10*time.Second, "the phone's port is listed", func() bool {
		ports = ua.TransportLayer().ListenPorts(transport)
		return len(ports) > 0
	})
	p.addr = net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[0]))
	if transport == "udp" {
		// ServeBackground returns before the listener joins the connection
		// pool; a request sent before that binds the same port again.
		testkit.Eventually(t, 10*time.Second, "the phone's listener is ready", func() bool {
			c, err := ua.TransportLayer().GetConnection("udp", p.addr)
			return err == nil && c != nil
		})
	}
	return p
}

func (p *phone) noteByes(next sipgo.RequestHandler) sipgo.RequestHandler {
	return func(req *sip.Request, tx sip.ServerTransaction) {
		if req.Method == sip.BYE {
			reason := ""
			if h := req.GetHeader("Reason"); h != nil {
				reason = h.Value()
			}
			p.mu.Lock()
			p.byes = append(p.byes, reason)
			p.mu.Unlock()
		}
		next(req, tx)
	}
}

// byeReasons are the Reason headers of the BYEs the phone received.
func (p *phone) byeReasons() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return slices.Clone(p.byes)
}

// answerAndTalk answers a call at once, says tone until the call ends and
// records in heard what it hears (at the frequencies heard listens for).
func answerAndTalk(heard *audio, tone float64) func(d *diago.DialogServerSession) {
	return func(d *diago.DialogServerSession) {
		med, err := d.Answer(diago.AnswerOptions{})
		if err != nil {
			return
		}
		ar, _ := med.AudioReader()
		aw, _ := med.AudioWriter()
		go heard.listen(ar)
		talk(d.Context(), aw, tone)
	}
}

// handedOut are the ports freePort gave this test process, so two of its
// tests are not given the same one.
var handedOut sync.Map

// freePort is a UDP port nobody listened on a moment ago, for a program
// that takes a port number and binds it itself (SIPp's media port).
// Another process may bind it first: callers retry on a bind failure.
// Everything this process binds itself listens on port 0 instead.
func freePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		_ = u.Close()
		if _, taken := handedOut.LoadOrStore(port, true); !taken {
			return port
		}
	}
	t.Fatal("no free port")
	return 0
}

// register registers the phone as user with ccevents at addr.
func (p *phone) register(ctx context.Context, addr, user, password string) error {
	host, port, _ := net.SplitHostPort(addr)
	pn, _ := strconv.Atoi(port)
	rt, err := p.dg.RegisterTransaction(ctx, sip.Uri{User: user, Host: host, Port: pn}, diago.RegisterOptions{Username: user, Password: password, Expiry: 5 * time.Minute})
	if err != nil {
		return err
	}
	return rt.Register(ctx)
}

// call calls number at addr.
func (p *phone) call(ctx context.Context, addr, number string, opts diago.InviteOptions) (*diago.DialogClientSession, *diago.DialogMedia, error) {
	host, port, _ := net.SplitHostPort(addr)
	pn, _ := strconv.Atoi(port)
	return p.dg.Invite(ctx, sip.Uri{User: number, Host: host, Port: pn}, opts)
}

// audio is what a phone hears: per 20 ms frame, the share of its energy
// at each of the frequencies listened for.
type audio struct {
	freqs []float64
	mu    sync.Mutex
	heard [][]float64
}

// Shares of a frame's energy at a frequency that count as hearing a tone.
const (
	alone = 0.5  // the tone by itself
	mixed = 0.25 // one of two tones of equal strength mixed
)

func listenFor(freqs ...float64) *audio { return &audio{freqs: freqs} }

// talk sends a sine tone of freq Hz (μ-law) until ctx ends.
func talk(ctx context.Context, w io.Writer, freq float64) {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	frame := make([]byte, 160)
	var n int
	for {
		for i := range frame {
			v := 0.5 * math.Sin(2*math.Pi*freq*float64(n)/8000)
			frame[i] = linearToUlaw(int16(v * 32767))
			n++
		}
		if _, err := w.Write(frame); err != nil {
			return
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// listen records what r carries until it ends.
func (a *audio) listen(r io.Reader) {
	buf := make([]byte, media.RTPBufSize)
	for {
		n, err := r.Read(buf)
		if err != nil {
			return
		}
		if n < 80 {
			continue
		}
		shares := make([]float64, len(a.freqs))
		for i, f := range a.freqs {
			shares[i] = goertzelShare(buf[:n], f)
		}
		a.mu.Lock()
		a.heard = append(a.heard, shares)
		a.mu.Unlock()
	}
}

// toneFrames counts the frames in which freq (one listened for) carries
// more than share of the energy.
func (a *audio) toneFrames(freq, share float64) int {
	i := slices.Index(a.freqs, freq)
	if i < 0 {
		panic(fmt.Sprintf("toneFrames: not listening for %v Hz", freq))
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, s := range a.heard {
		if s[i] > share {
			n++
		}
	}
	return n
}

// count is the number of frames heard.
func (a *audio) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.heard)
}

// goertzelShare is the share of a μ-law frame's energy at freq.
func goertzelShare(frame []byte, freq float64) float64 {
	k := 2 * math.Cos(2*math.Pi*freq/8000)
	var s1, s2, total float64
	for _, b := range frame {
		x := float64(ulawToLinear(b)) / 32768
		total += x * x
		s := x + k*s1 - s2
		s2, s1 = s1, s
	}
	if total < 1e-6 {
		return 0
	}
	power := s1*s1 + s2*s2 - k*s1*s2
	return 2 * power / (float64(len(frame)) * total)
}

func linearToUlaw(s int16) byte {
	const bias, clip = 0x84, 32635
	sign := byte(0)
	v := int(s)
	if v < 0 {
		v, sign = -v, 0x80
	}
	v = min(v, clip) + bias
	exp := 7
	for mask := 0x4000; v&mask == 0 && exp > 0; mask >>= 1 {
		exp--
	}
	mant := (v >> (exp + 3)) & 0x0f
	return ^(sign | byte(exp<<4) | byte(mant))
}

func ulawToLinear(u byte) int16 {
	u = ^u
	sign, exp, mant := u&0x80, int(u>>4)&7, int(u&0x0f)
	v := ((mant << 3) + 0x84) << exp
	v -= 0x84
	if sign != 0 {
		return int16(-v)
	}
	return int16(v)
}

// Tones the parties of a test call say, told apart by frequency (the hold
// music stays below 450 Hz).
const (
	callerTone     = 1000.0
	agentTone      = 1500.0
	supervisorTone = 2000.0
	farTone        = 700.0 // the far end of an external call
)

// bridged is a queue call answered by an agent's phone: the caller says
// callerTone, the agent agentTone, and each hears the other.
type bridged struct {
	sid, agentUser          string
	callerPhone, agentPhone *phone
	caller                  *diago.DialogClientSession
	callerQuiet             context.CancelFunc // the caller stops talking
	callerHeard             *audio             // agentTone and supervisorTone
	agentHeard              *audio             // callerTone and supervisorTone
	agentEnded              chan struct{}      // closed when the agent's phone has hung up or been hung up
}

// bridgedCall makes queue "sales" (number 1000) and its agent "alice",
// whose registered phone answers at once, and connects a caller to her.
func (r *rig) bridgedCall() *bridged {
	r.t.Helper()
	r.queue(engine.QueueConfig{ID: "sales", Name: "Sales", OfferTimeoutS: 20, WrapupS: 1, FinalizeTimeoutS: 1}, "1000")
	user, pw := r.agent("alice", false, "sales")
	b := &bridged{agentUser: user, agentHeard: listenFor(callerTone, supervisorTone), callerHeard: listenFor(agentTone, supervisorTone), agentEnded: make(chan struct{})}
	talkAndTell := answerAndTalk(b.agentHeard, agentTone)
	agentPhone := newPhone(r.t, r.ctx, "udp", func(d *diago.DialogServerSession) {
		defer close(b.agentEnded)
		talkAndTell(d)
	})
	r.ok(agentPhone.register(r.ctx, r.sip.Addr(), user, pw))
	b.agentPhone = agentPhone
	caller := newPhone(r.t, r.ctx, "udp", nil)
	b.callerPhone = caller
	ctx, cancel := context.WithTimeout(r.ctx, 30*time.Second)
	defer cancel()
	d, med, err := caller.call(ctx, r.sip.Addr(), "1000", diago.InviteOptions{})
	r.ok(err)
	r.t.Cleanup(func() { _ = d.Close() })
	b.caller = d
	cr, _ := med.AudioReader()
	cw, _ := med.AudioWriter()
	go b.callerHeard.listen(cr)
	talkCtx, quiet := context.WithCancel(d.Context())
	r.t.Cleanup(quiet)
	b.callerQuiet = quiet
	go talk(talkCtx, cw, callerTone)
	testkit.Eventually(r.t, 15*time.Second, "the caller and the agent hear each other", func() bool {
		return b.agentHeard.toneFrames(callerTone, alone) >= 10 && b.callerHeard.toneFrames(agentTone, alone) >= 10
	})
	del, _ := r.events.find("recipient.delivered", nil)
	b.sid, _ = del.Fields["session_id"].(string)
	return b
}

// waitEvent waits for an event of the name whose fields include want.
func (r *rig) waitEvent(name string, want map[string]any) loggedEvent {
	r.t.Helper()
	match := func(f map[string]any) bool {
		for k, v := range want {
			if f[k] != v {
				return false
			}
		}
		return true
	}
	var ev loggedEvent
	testkit.Eventually(r.t, 15*time.Second, fmt.Sprintf("%s %v", name, want), func() bool {
		var ok bool
		ev, ok = r.events.find(name, match)
		return ok
	})
	return ev
}

// closed waits for ch to close.
func closed(t testing.TB, ch <-chan struct{}, what string) {
	t.Helper()
	select {
	case <-ch:
	case <-time.After(15 * time.Second):
		t.Fatalf("after 15s: %s", what)
	}
}

// statusOf is the final status of a failed INVITE, 0 if it got none.
func statusOf(err error) int {
	var e *sipgo.ErrDialogResponse
	if errors.As(err, &e) {
		return e.Res.StatusCode
	}
	var v sipgo.ErrDialogResponse
	if errors.As(err, &v) {
		return v.Res.StatusCode
	}
	return 0
}
