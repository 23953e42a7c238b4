package sipfront_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"math"
	"net"
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
	"github.com/ccevents/ccevents/internal/sipfront"
	"github.com/ccevents/ccevents/internal/sipstore"
)

const acc = "0123456789abcdef0123456789abcdef"

// rig is a contact center with a SIP front end on loopback: an engine on
// an in-memory bus, the telephony store, and the front end.
type rig struct {
	t      *testing.T
	ctx    context.Context
	bus    *bus.Bus
	eng    *engine.Router
	store  *sipstore.Store
	sip    *sipfront.Server
	events *eventLog
}

func newRig(t *testing.T, cfg sipfront.Config) *rig {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	octx, ocancel := context.WithTimeout(ctx, 30*time.Second)
	defer ocancel()
	b, err := bus.Open(octx, bus.Config{DataDir: t.TempDir(), Memory: true, Name: "sipfront-test"})
	if err != nil {
		t.Fatalf("open bus: %v", err)
	}
	t.Cleanup(b.Close)
	e, err := engine.New(octx, engine.Config{Publisher: b, SyncInterval: -1})
	if err != nil {
		t.Fatalf("engine: %v", err)
	}
	t.Cleanup(func() { _ = e.Close(context.Background()) })
	r, err := engine.NewRouter(engine.RouterConfig{Local: e})
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

// queue creates a queue with a number.
func (r *rig) queue(q engine.QueueConfig, number string) {
	r.t.Helper()
	_, err := r.eng.CreateQueue(r.ctx, acc, q)
	r.ok(err)
	_, err = r.store.SetNumber(r.ctx, sipstore.Number{Number: number, AccountID: acc, QueueID: q.ID})
	r.ok(err)
}

// agent creates a logged-in recipient with SIP credentials.
func (r *rig) agent(id string, wiretap bool, queues ...string) (user, password string) {
	r.t.Helper()
	_, err := r.eng.CreateRecipient(r.ctx, acc, engine.RecipientConfig{ID: id, Name: id, Queues: queues})
	r.ok(err)
	_, err = r.eng.SetStatus(r.ctx, acc, id, engine.StatusRequest{Action: engine.ActionLogin})
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

// eventually waits for cond, failing the test after limit.
func eventually(t *testing.T, limit time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(limit)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after %s: %s", limit, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// phone is a SIP user agent on loopback: a caller, an agent's or a
// supervisor's phone.
type phone struct {
	t  *testing.T
	dg *diago.Diago
	ua *sipgo.UserAgent
	// answer is what the phone does with a call to it; nil declines (603).
	answer func(d *diago.DialogServerSession)
}

func newPhone(t *testing.T, ctx context.Context, transport string) *phone {
	t.Helper()
	ua, err := sipgo.NewUA(sipgo.WithUserAgent("ccevents-test-phone"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ua.Close() })
	p := &phone{t: t, ua: ua}
	p.dg = diago.NewDiago(ua, diago.WithLogger(slog.New(slog.DiscardHandler)), diago.WithTransport(diago.Transport{Transport: transport, BindHost: "127.0.0.1", BindPort: freePort(t, transport)}),
		diago.WithMediaConfig(diago.MediaConfig{Codecs: []media.Codec{media.CodecAudioUlaw, media.CodecAudioAlaw}}))
	if err := p.dg.ServeBackground(ctx, func(d *diago.DialogServerSession) {
		if p.answer == nil {
			_ = d.Respond(603, "Decline", nil)
			return
		}
		p.answer(d)
	}); err != nil {
		t.Fatal(err)
	}
	return p
}

// handedOut are the ports freePort gave this test process: the kernel may
// offer a port again once its probe socket closes, before its user binds.
var handedOut sync.Map

func freePort(t *testing.T, transport string) int {
	t.Helper()
	for i := 0; i < 200; i++ {
		u, err := net.ListenPacket("udp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := u.LocalAddr().(*net.UDPAddr).Port
		l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(port))
		_ = u.Close()
		if err == nil {
			_ = l.Close()
			if _, taken := handedOut.LoadOrStore(port, true); !taken {
				return port
			}
		}
	}
	t.Fatal("no free port")
	return 0
}

// register registers the phone as user with ccevents at addr.
func (p *phone) register(ctx context.Context, addr, user, password string) error {
	host, port, _ := net.SplitHostPort(addr)
	pn, _ := strconv.Atoi(port)
	var err error
	// Right after ServeBackground the listener may not be in the client's
	// connection pool yet, and the client tries to bind the same port.
	for i := 0; i < 100; i++ {
		var rt *diago.RegisterTransaction
		if rt, err = p.dg.RegisterTransaction(ctx, sip.Uri{User: user, Host: host, Port: pn}, diago.RegisterOptions{Username: user, Password: password, Expiry: 5 * time.Minute}); err != nil {
			return err
		}
		if err = rt.Register(ctx); err == nil || !strings.Contains(err.Error(), "address already in use") {
			return err
		}
		time.Sleep(20 * time.Millisecond)
	}
	return err
}

// call calls number at addr.
func (p *phone) call(ctx context.Context, addr, number string, opts diago.InviteOptions) (*diago.DialogClientSession, *diago.DialogMedia, error) {
	host, port, _ := net.SplitHostPort(addr)
	pn, _ := strconv.Atoi(port)
	return p.dg.Invite(ctx, sip.Uri{User: number, Host: host, Port: pn}, opts)
}

// audio is a phone's side of a call: it sends a tone and measures what it
// hears.
type audio struct {
	mu     sync.Mutex
	heard  []float64 // per 20 ms frame: the share of energy at the listened-for frequency
	frames int
}

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

// listen records, per frame heard, how strongly freq is in it.
func (a *audio) listen(r io.Reader, freq float64) {
	buf := make([]byte, media.RTPBufSize)
	for {
		n, err := r.Read(buf)
		if err != nil {
			return
		}
		if n < 80 {
			continue
		}
		s := goertzelShare(buf[:n], freq)
		a.mu.Lock()
		a.heard = append(a.heard, s)
		a.frames++
		a.mu.Unlock()
	}
}

// toneFrames counts the frames in which freq carries most of the energy.
func (a *audio) toneFrames() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	n := 0
	for _, s := range a.heard {
		if s > 0.5 {
			n++
		}
	}
	return n
}

func (a *audio) count() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.frames
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
