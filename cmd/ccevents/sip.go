package main

import (
	"context"
	"crypto/md5"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/ccevents/ccevents/internal/api"
	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/limit"
	"github.com/ccevents/ccevents/internal/sim"
	"github.com/ccevents/ccevents/internal/sipfront"
	"github.com/ccevents/ccevents/internal/sipstore"
)

// demoSIPAddr is where --demo serves SIP unless --sip-addr says otherwise;
// a free port when it is taken.
const demoSIPAddr = "127.0.0.1:5060"

// sipConfig is the SIP front end's part of `ccevents serve`.
type sipConfig struct {
	Addr          string
	AdvertiseHost string
	RTPPorts      string
	Trunk         string
	TrustedNets   stringList
	MaxCalls      int
	RequestRate   float64
	MediaTimeout  time.Duration
}

func (c *sipConfig) register(fs *flag.FlagSet) {
	fs.StringVar(&c.Addr, "sip-addr", "", "address of the SIP front end, UDP and TCP (e.g. 127.0.0.1:5060); empty: no SIP (--demo uses "+demoSIPAddr+")")
	fs.StringVar(&c.AdvertiseHost, "sip-advertise-host", "", "host phones reach ccevents at, in Contact and SDP (behind NAT); empty: --sip-addr's host")
	fs.StringVar(&c.RTPPorts, "sip-rtp-ports", "", "UDP port range for RTP media, e.g. 10000-20000; empty: any free port")
	fs.StringVar(&c.Trunk, "sip-trunk", "", "host:port of a SIP trunk or PBX that agents' calls to outside numbers go to; empty: agents call only each other")
	fs.Var(&c.TrustedNets, "sip-trusted-nets", "comma-separated networks (10.0.0.0/8,203.0.113.7/32), e.g. your trunk's, that may call queue numbers without digest auth and are not rate limited; empty: anyone may call queue numbers")
	fs.IntVar(&c.MaxCalls, "sip-max-calls", sipfront.DefaultMaxCalls, "most SIP calls in progress; more are refused with 503")
	fs.Float64Var(&c.RequestRate, "sip-request-rate", sipfront.DefaultRequestRate, "SIP messages per second one address (an IPv6 /64) may send, burst 4x; more are dropped unread over UDP and close the connection over TCP; --sip-trusted-nets are exempt (negative: unlimited)")
	fs.DurationVar(&c.MediaTimeout, "sip-media-timeout", sipfront.DefaultMediaTimeout, "a call whose caller sends no audio this long ends with MEDIA_TIMEOUT (0: never)")
}

func (c *sipConfig) validate() error {
	if c.Addr != "" {
		if _, err := netip.ParseAddrPort(c.Addr); err != nil && !strings.HasPrefix(c.Addr, ":") {
			return fmt.Errorf("--sip-addr: %q is not IP:PORT (e.g. 127.0.0.1:5060)", c.Addr)
		}
	}
	if _, _, err := c.rtpRange(); err != nil {
		return err
	}
	if _, err := c.trusted(); err != nil {
		return err
	}
	if c.MaxCalls < 1 {
		return fmt.Errorf("--sip-max-calls must be at least 1, got %d", c.MaxCalls)
	}
	return nil
}

func (c *sipConfig) rtpRange() (int, int, error) {
	if c.RTPPorts == "" {
		return 0, 0, nil
	}
	a, b, ok := strings.Cut(c.RTPPorts, "-")
	lo, err1 := strconv.Atoi(a)
	hi, err2 := strconv.Atoi(b)
	if !ok || err1 != nil || err2 != nil || lo < 1024 || hi > 65535 || hi-lo < 2 {
		return 0, 0, fmt.Errorf("--sip-rtp-ports: %q is not a range like 10000-20000 (1024-65535, at least 2 ports)", c.RTPPorts)
	}
	return lo, hi, nil
}

func (c *sipConfig) trusted() ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, n := range c.TrustedNets {
		p, err := netip.ParsePrefix(n)
		if err != nil {
			return nil, fmt.Errorf("--sip-trusted-nets: %q is not a network like 10.0.0.0/8", n)
		}
		out = append(out, p)
	}
	return out, nil
}

// openSIPStore opens the telephony configuration for the REST API and the
// SIP front end.
func openSIPStore(ctx context.Context, b *bus.Bus, owner bool, log *slog.Logger) (*sipstore.Store, error) {
	// The api role owns the bucket's settings; a SIP front end on an
	// engine node only reads it.
	open := b.EnsureKeyValue
	if owner {
		open = b.KeyValue
	}
	kv, err := open(ctx, sipstore.Bucket)
	if err != nil {
		return nil, err
	}
	st, err := sipstore.Open(ctx, kv, log.With("component", "sipstore"))
	if err != nil {
		return nil, fmt.Errorf("open the telephony configuration: %w", err)
	}
	return st, nil
}

// startSIP starts the SIP front end on addr.
func startSIP(ctx context.Context, cfg serveConfig, addr string, b *bus.Bus, eng engine.Service, st *sipstore.Store, reg prometheus.Registerer, log *slog.Logger) (*sipfront.Server, error) {
	lo, hi, _ := cfg.SIP.rtpRange()
	nets, _ := cfg.SIP.trusted()
	timeout := cfg.SIP.MediaTimeout
	if timeout == 0 {
		timeout = -1
	}
	s, err := sipfront.New(sipfront.Config{
		Addr: addr, AdvertiseHost: cfg.SIP.AdvertiseHost, RTPPortMin: lo, RTPPortMax: hi,
		Trunk: cfg.SIP.Trunk, TrustedNets: nets, MaxCalls: cfg.SIP.MaxCalls,
		RequestRate: cfg.SIP.RequestRate, RequestBurst: 4 * max(1, int(cfg.SIP.RequestRate)),
		MediaTimeout: timeout,
		// The demo's simulator answers for recipients whose phone is not
		// registered (demo.go); only registered phones are rung.
		IgnoreUnregistered: cfg.Demo,
		AuthBackoff: limit.BackoffConfig{
			Failures: cfg.AuthFailureLimit, Window: cfg.AuthFailureWindow,
			Initial: cfg.AuthFailureBackoff, Max: cfg.AuthFailureBackoffMax,
		},
		Engine: eng, Store: st, Conn: b.Conn(), Registerer: reg, Logger: log.With("component", "sip"),
	})
	if err != nil {
		return nil, err
	}
	if err := s.Start(ctx); err != nil {
		return nil, err
	}
	return s, nil
}

// sipListenAddr is where SIP is served: --sip-addr, or the demo's port.
func sipListenAddr(cfg serveConfig) string {
	if cfg.SIP.Addr != "" || !cfg.Demo {
		return cfg.SIP.Addr
	}
	if l, err := netListenUDP(demoSIPAddr); err == nil {
		_ = l.Close()
		return demoSIPAddr
	}
	return "127.0.0.1:0"
}

// registeredFunc adapts the front end's registrations for the API.
func registeredFunc(s *sipfront.Server) func(string, string) (api.SIPRegistration, bool) {
	if s == nil {
		return nil
	}
	return func(acc, rec string) (api.SIPRegistration, bool) {
		r, ok := s.Registered(acc, rec)
		return api.SIPRegistration(r), ok
	}
}

// demoSIP is demo.json's "sip": where to point a softphone.
type demoSIP struct {
	Addr       string                      `json:"addr"`
	Queues     map[string]string           `json:"queues"`
	Recipients map[string]demoSIPRecipient `json:"recipients"`
}

type demoSIPRecipient struct {
	User     string `json:"user"`
	Password string `json:"password"`
}

// demoQueueNumbers are the demo queues' numbers.
var demoQueueNumbers = map[string]string{"sales": "1001", "support": "1002", "vip": "1003"}

// setupDemoSIP gives the demo queues numbers and the demo recipients SIP
// credentials, keeping the passwords demo.json already had so a softphone
// set up once keeps working. The passwords are written to demo.json
// (mode 0600): the demo is for trying things out on one machine.
func setupDemoSIP(ctx context.Context, st *sipstore.Store, accountID, addr, demoPath string) (*demoSIP, error) {
	var prev struct {
		SIP *demoSIP `json:"sip"`
	}
	if raw, err := os.ReadFile(demoPath); err == nil {
		_ = json.Unmarshal(raw, &prev)
	}
	out := &demoSIP{Addr: addr, Queues: map[string]string{}, Recipients: map[string]demoSIPRecipient{}}
	for q, n := range demoQueueNumbers {
		if _, err := st.SetNumber(ctx, sipstore.Number{Number: n, AccountID: accountID, QueueID: q, PositionAnnounceS: 30}); err != nil && !errors.Is(err, sipstore.ErrConflict) {
			return nil, fmt.Errorf("give demo queue %s a number: %w", q, err)
		}
		out.Queues[q] = n
	}
	for _, r := range sim.DemoRecipients() {
		want := sipstore.NewCredential{User: r.ID, Wiretap: r.ID == "alice"}
		if prev.SIP != nil {
			if p, ok := prev.SIP.Recipients[r.ID]; ok && p.User == r.ID {
				want.Password = p.Password
			}
		}
		if c, ok := st.CredentialOf(accountID, r.ID); ok && want.Password != "" && c.HA1MD5 == sipstore.HA1(md5.New, c.User, c.Realm, want.Password) {
			out.Recipients[r.ID] = demoSIPRecipient{User: c.User, Password: want.Password}
			continue
		}
		c, pw, err := st.SetCredential(ctx, accountID, r.ID, want)
		if errors.Is(err, sipstore.ErrConflict) { // the user name is another account's
			want.User = ""
			c, pw, err = st.SetCredential(ctx, accountID, r.ID, want)
		}
		if err != nil {
			return nil, fmt.Errorf("give demo recipient %s SIP credentials: %w", r.ID, err)
		}
		out.Recipients[r.ID] = demoSIPRecipient{User: c.User, Password: pw}
	}
	return out, nil
}

func netListenUDP(addr string) (interface{ Close() error }, error) {
	return net.ListenPacket("udp", addr)
}
