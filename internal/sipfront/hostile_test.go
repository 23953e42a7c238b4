package sipfront_test

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/textproto"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/limit"
	"github.com/ccevents/ccevents/internal/promutil"
	"github.com/ccevents/ccevents/internal/sipfront"
	"github.com/ccevents/ccevents/internal/testkit"
)

// request sends one request to the front end and returns the final answer.
func request(t *testing.T, ctx context.Context, c *sipgo.Client, method sip.RequestMethod, addr, user string, headers ...sip.Header) *sip.Response {
	t.Helper()
	host, port, _ := net.SplitHostPort(addr)
	pn, _ := strconv.Atoi(port)
	req := sip.NewRequest(method, sip.Uri{User: user, Host: host, Port: pn})
	req.AppendHeader(&sip.ToHeader{Address: sip.Uri{User: user, Host: host}, Params: sip.NewParams()})
	for _, h := range headers {
		req.AppendHeader(h)
	}
	if method == sip.INVITE {
		req.SetBody([]byte("v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio 40000 RTP/AVP 0\r\n"))
		req.AppendHeader(sip.NewHeader("Content-Type", "application/sdp"))
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	res, err := c.Do(ctx, req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, user, err)
	}
	return res
}

func TestHostileSIPGetsTheRightAnswerAndBreaksNothing(t *testing.T) {
	reg := prometheus.NewRegistry()
	r := newRig(t, sipfront.Config{Registerer: reg, RequestRate: 20, RequestBurst: 40,
		AuthBackoff: limit.BackoffConfig{Failures: 3, Window: time.Minute, Initial: time.Minute, Max: time.Minute}})
	r.queue(engine.QueueConfig{ID: "q", Name: "Q"}, "3000")
	user, pw := r.agent("alice", false, "q")

	ua, err := sipgo.NewUA()
	r.ok(err)
	defer ua.Close()
	c, err := sipgo.NewClient(ua, sipgo.WithClientHostname("127.0.0.1"))
	r.ok(err)

	// Unauthenticated REGISTER and INVITE are challenged.
	if res := request(t, r.ctx, c, sip.REGISTER, r.sip.Addr(), user, &sip.ContactHeader{Address: sip.Uri{User: user, Host: "127.0.0.1", Port: 5999}}); res.StatusCode != 401 || res.GetHeader("WWW-Authenticate") == nil {
		t.Fatalf("REGISTER without credentials: %d, want 401 with a challenge", res.StatusCode)
	}
	if res := request(t, r.ctx, c, sip.INVITE, r.sip.Addr(), "+15550199"); res.StatusCode != 400 {
		t.Fatalf("INVITE without Contact: %d, want 400", res.StatusCode)
	}
	contact := &sip.ContactHeader{Address: sip.Uri{User: "x", Host: "127.0.0.1", Port: 5999}}
	if res := request(t, r.ctx, c, sip.INVITE, r.sip.Addr(), "+15550199", contact); res.StatusCode != 407 || res.GetHeader("Proxy-Authenticate") == nil {
		t.Fatalf("INVITE to an outside number without credentials: %d, want 407 with a challenge", res.StatusCode)
	}

	// Malformed messages are dropped; the server keeps answering.
	conn, err := net.Dial("udp", r.sip.Addr())
	r.ok(err)
	defer conn.Close()
	for _, junk := range []string{"\x00\x01\x02garbage", "INVITE\r\n\r\n", "SIP/2.0 200 OK\r\nVia: x\r\n\r\n", "REGISTER sip:x SIP/2.0\r\nContent-Length: 99999999\r\n\r\n"} {
		_, _ = conn.Write([]byte(junk))
	}
	if res := request(t, r.ctx, c, sip.OPTIONS, r.sip.Addr(), "x"); res.StatusCode != 200 {
		t.Fatalf("OPTIONS after junk: %d, want 200", res.StatusCode)
	}

	// A wrong password, repeated: challenged until the address must wait.
	wrong := newPhone(t, r.ctx, "udp", nil)
	for i := 0; i < 3; i++ {
		if err := wrong.register(r.ctx, r.sip.Addr(), user, "not-the-password"); err == nil {
			t.Fatal("REGISTER with a wrong password succeeded")
		}
	}
	if got := metricValue(t, reg, "ccevents_sip_auth_failures_total"); got < 3 {
		t.Errorf("auth failures counted %v, want at least 3", got)
	}
	if err := wrong.register(r.ctx, r.sip.Addr(), user, pw); err == nil {
		t.Error("the right password was accepted from an address that must wait after failures")
	}
	res := request(t, r.ctx, c, sip.REGISTER, r.sip.Addr(), user, &sip.ContactHeader{Address: sip.Uri{User: user, Host: "127.0.0.1", Port: 5999}})
	if res.StatusCode != 403 || res.GetHeader("Retry-After") == nil {
		t.Errorf("REGISTER from an address in back-off: %d, want 403 with Retry-After", res.StatusCode)
	}

	// A flood from one address (127.0.0.2, UDP) is dropped unread and
	// counted, and never starves another: a request from 127.0.0.1 sent
	// while it goes on is answered.
	flood := startFlood(t, r.sip.Addr(), net.IPv4(127, 0, 0, 2), 5000)
	testkit.Eventually(t, 10*time.Second, "the UDP flood is rate limited", func() bool {
		return metricValue(t, reg, "ccevents_sip_rate_limited_total", "transport", "udp") > 0
	})
	if res := request(t, r.ctx, c, sip.OPTIONS, r.sip.Addr(), "x"); res.StatusCode != 200 {
		t.Fatalf("OPTIONS from 127.0.0.1 during a flood from 127.0.0.2: %d, want 200", res.StatusCode)
	}
	t.Logf("flood: %d datagrams sent while 127.0.0.1 was answered", flood.stop())

	// Over TCP, a connection over the rate is closed; others are served.
	tcpFlood := tcpOptions(t, net.IPv4(127, 0, 0, 3), r.sip.Addr())
	closedAfter := 0
	for ; closedAfter < 500 && tcpFlood.ask() == nil; closedAfter++ {
	}
	if closedAfter == 500 {
		t.Fatal("a TCP connection sending 500 requests as fast as they are answered was never cut off")
	}
	if got := metricValue(t, reg, "ccevents_sip_rate_limited_total", "transport", "tcp"); got == 0 {
		t.Error("the TCP flood was not counted")
	}
	if err := tcpOptions(t, net.IPv4(127, 0, 0, 1), r.sip.Addr()).ask(); err != nil {
		t.Fatalf("OPTIONS over TCP from 127.0.0.1 after a TCP flood from 127.0.0.3: %v", err)
	}
}

// flood sends OPTIONS datagrams from one loopback address at a steady
// rate until stopped (at most 30 s).
type flood struct {
	stopped chan struct{}
	sent    chan int
}

func startFlood(t testing.TB, addr string, from net.IP, perSecond int) *flood {
	t.Helper()
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: from}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(addr)))
	if err != nil {
		t.Fatal(err)
	}
	f := &flood{stopped: make(chan struct{}), sent: make(chan int, 1)}
	go func() {
		defer conn.Close()
		tick := time.NewTicker(10 * time.Millisecond)
		defer tick.Stop()
		deadline := time.After(30 * time.Second)
		n := 0
		for {
			for range perSecond / 100 {
				_, _ = fmt.Fprintf(conn, optionsFmt, "UDP", from, n, n)
				n++
			}
			select {
			case <-f.stopped:
				f.sent <- n
				return
			case <-deadline:
				f.sent <- n
				return
			case <-tick.C:
			}
		}
	}()
	t.Cleanup(func() { f.stop() })
	return f
}

// stop ends the flood and returns how many datagrams it sent.
func (f *flood) stop() int {
	select {
	case <-f.stopped:
		return 0
	default:
	}
	close(f.stopped)
	return <-f.sent
}

const optionsFmt = "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/%s %s:9;branch=z9hG4bK-%d\r\nFrom: <sip:f@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: flood-%d\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"

// tcpConn is a raw SIP over TCP connection from one loopback address.
type tcpConn struct {
	t    *testing.T
	conn net.Conn
	from net.IP
	r    *bufio.Reader
	n    int
}

func tcpOptions(t *testing.T, from net.IP, addr string) *tcpConn {
	t.Helper()
	d := net.Dialer{LocalAddr: &net.TCPAddr{IP: from}, Timeout: 5 * time.Second}
	conn, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return &tcpConn{t: t, conn: conn, from: from, r: bufio.NewReader(conn)}
}

// ask sends one OPTIONS and reads its answer, which must be 200.
func (c *tcpConn) ask() error {
	c.n++
	_ = c.conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := fmt.Fprintf(c.conn, optionsFmt, "TCP", c.from, c.n, c.n); err != nil {
		return err
	}
	tp := textproto.NewReader(c.r)
	status, err := tp.ReadLine()
	if err != nil {
		return err
	}
	h, err := tp.ReadMIMEHeader()
	if err != nil {
		return err
	}
	if n, _ := strconv.Atoi(h.Get("Content-Length")); n > 0 {
		if _, err := c.r.Discard(n); err != nil {
			return err
		}
	}
	if !strings.HasPrefix(status, "SIP/2.0 200 ") {
		return fmt.Errorf("answered %q", status)
	}
	return nil
}

// metricValue sums the series of a metric whose labels include the name,
// value pairs given.
func metricValue(t testing.TB, reg *prometheus.Registry, name string, labels ...string) float64 {
	t.Helper()
	v, err := promutil.Sum(reg, name, labels...)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// BenchmarkUDPFloodDrain floods the front end's UDP socket from one
// address as fast as one sender can and reports how many datagrams per
// second its read loop discards (guard_drops/s) and the share the kernel
// dropped before the loop read them (kernel_lost_%): beyond the loop's
// rate, datagrams from everyone are lost in the kernel and only SIP's
// retransmissions get a request through.
func BenchmarkUDPFloodDrain(b *testing.B) {
	reg := prometheus.NewRegistry()
	r := newRig(b, sipfront.Config{Registerer: reg, RequestRate: 1, RequestBurst: 1})
	conn, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(r.sip.Addr())))
	if err != nil {
		b.Fatal(err)
	}
	defer conn.Close()
	msg := []byte(fmt.Sprintf(optionsFmt, "UDP", "127.0.0.2", 1, 1))
	dropped := func() float64 { return metricValue(b, reg, "ccevents_sip_rate_limited_total", "transport", "udp") }
	before := dropped()
	start := time.Now()
	n := 0
	for b.Loop() {
		_, _ = conn.Write(msg)
		n++
	}
	// Wait for the loop to read what the socket still holds.
	last := dropped()
	for {
		time.Sleep(100 * time.Millisecond)
		now := dropped()
		if now == last {
			break
		}
		last = now
	}
	elapsed := time.Since(start).Seconds()
	got := last - before
	b.ReportMetric(got/elapsed, "guard_drops/s")
	b.ReportMetric(100*(float64(n)-got)/float64(n), "kernel_lost_%")
}
