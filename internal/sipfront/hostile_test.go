package sipfront_test

import (
	"context"
	"net"
	"net/netip"
	"strconv"
	"testing"
	"time"

	"github.com/emiago/diago"
	"github.com/emiago/sipgo"
	"github.com/emiago/sipgo/sip"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/limit"
	"github.com/ccevents/ccevents/internal/sipfront"
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
	wrong := newPhone(t, r.ctx, "udp")
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

	// A flood from one address (127.0.0.2) is dropped unread and counted.
	flood, err := net.DialUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)}, net.UDPAddrFromAddrPort(netip.MustParseAddrPort(r.sip.Addr())))
	r.ok(err)
	defer flood.Close()
	msg := "OPTIONS sip:x@127.0.0.1 SIP/2.0\r\nVia: SIP/2.0/UDP 127.0.0.2:9;branch=z9hG4bK-%d\r\nFrom: <sip:f@127.0.0.1>;tag=1\r\nTo: <sip:x@127.0.0.1>\r\nCall-ID: flood-%d\r\nCSeq: 1 OPTIONS\r\nMax-Forwards: 70\r\nContent-Length: 0\r\n\r\n"
	for i := 0; i < 500; i++ {
		_, _ = flood.Write([]byte(msg))
	}
	eventually(t, 5*time.Second, "the flood is rate limited", func() bool {
		return metricValue(t, reg, "ccevents_sip_rate_limited_total") > 0
	})

}

// metricValue sums every series of a counter or gauge.
func metricValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	var sum float64
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		for _, m := range mf.GetMetric() {
			sum += m.GetCounter().GetValue() + m.GetGauge().GetValue()
		}
	}
	return sum
}

func diagoInviteOptions() diago.InviteOptions { return diago.InviteOptions{} }
