package loadtest

import (
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/binding"
)

func TestParseMixNormalisesShares(t *testing.T) {
	m, err := ParseMix("account=8, queue=1,recipient=1")
	if err != nil {
		t.Fatal(err)
	}
	if m[KindAccount] != 0.8 || m[KindQueue] != 0.1 || m[KindRecipient] != 0.1 {
		t.Fatalf("mix %v", m)
	}
	if got := m.String(); got != "account=0.8,queue=0.1,recipient=0.1" {
		t.Fatalf("String() = %q", got)
	}
}

func TestParseMixRefusesWhatItCannotRead(t *testing.T) {
	for _, in := range []string{"", "account", "session=1", "account=-1", "account=0", "queue=abc", "account=NaN"} {
		if _, err := ParseMix(in); err == nil {
			t.Errorf("ParseMix(%q) accepted it", in)
		}
	}
}

func TestParseRampListsEveryStep(t *testing.T) {
	r, err := ParseRamp("200:1000:200")
	if err != nil {
		t.Fatal(err)
	}
	got := r.Rates()
	want := []float64{200, 400, 600, 800, 1000}
	if len(got) != len(want) {
		t.Fatalf("rates %v, want %v", got, want)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("rates %v, want %v", got, want)
		}
	}
	if one, err := ParseRamp("500:500:0"); err != nil || len(one.Rates()) != 1 {
		t.Fatalf("single-step ramp: %v %v", one.Rates(), err)
	}
}

func TestParseRampRefusesUnboundedOrBackwardRamps(t *testing.T) {
	for _, in := range []string{"1:2", "0:10:1", "10:5:1", "1:100000:1", "1:10:0", "a:b:c"} {
		if _, err := ParseRamp(in); err == nil {
			t.Errorf("ParseRamp(%q) accepted it", in)
		}
	}
}

func TestParseAddrRangeOnlyLoopback127(t *testing.T) {
	got, err := ParseAddrRange("127.0.0.1-127.0.0.3,127.0.0.9")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[3] != netip.MustParseAddr("127.0.0.9") {
		t.Fatalf("addresses %v", got)
	}
	for _, in := range []string{"10.0.0.1", "127.0.1.1", "127.0.0.5-127.0.0.2", "::1", "127.0.0.1-10.0.0.1", ""} {
		if _, err := ParseAddrRange(in); err == nil {
			t.Errorf("ParseAddrRange(%q) accepted it", in)
		}
	}
}

func TestCheckLoopbackURLRefusesOtherHosts(t *testing.T) {
	ok := []string{"ws://127.0.0.1:5555", "ws://localhost:5555/", "ws://127.0.0.42:8080"}
	for _, u := range ok {
		if _, err := CheckLoopbackURL("gateway URL", u, "ws"); err != nil {
			t.Errorf("%s refused: %v", u, err)
		}
	}
	bad := map[string]string{
		"ws://example.com:5555":   "only targets 127.0.0.x",
		"ws://10.1.2.3:5555":      "only targets 127.0.0.x",
		"ws://[::1]:5555":         "only targets 127.0.0.x",
		"http://127.0.0.1:5555":   "scheme must be ws",
		"ws://127.0.0.1":          "give the port",
		"not a url":               "is not a URL",
		"ws://127.0.1.1:5555/x":   "only targets 127.0.0.x",
		"ws://0x7f.0.0.1:5555/xy": "only targets 127.0.0.x",
	}
	for u, want := range bad {
		_, err := CheckLoopbackURL("gateway URL", u, "ws")
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: error %v, want one saying %q", u, err, want)
		}
	}
}

func TestValidateRefusesNonLoopbackTargets(t *testing.T) {
	base := func() Scenario {
		return Scenario{GatewayURL: "ws://127.0.0.1:5555", APIURL: "http://127.0.0.1:8000", APIKey: "k",
			NATSURL: "nats://127.0.0.1:4222", Conns: 10, Queues: 1, Rates: []float64{10}, StepDuration: time.Second}
	}
	tests := []struct {
		name string
		edit func(*Scenario)
		want string
	}{
		{"gateway elsewhere", func(s *Scenario) { s.GatewayURL = "ws://192.168.1.1:5555" }, "127.0.0.x"},
		{"api elsewhere", func(s *Scenario) { s.APIURL = "http://example.com:8000" }, "127.0.0.x"},
		{"nats elsewhere", func(s *Scenario) { s.NATSURL = "nats://10.0.0.1:4222" }, "127.0.0.x"},
		{"peer elsewhere", func(s *Scenario) { s.PeerURL = "ws://10.0.0.1:8080" }, "127.0.0.x"},
		{"source elsewhere", func(s *Scenario) { s.SourceIPs = []netip.Addr{netip.MustParseAddr("10.0.0.1")} }, "127.0.0.x"},
		{"no key", func(s *Scenario) { s.APIKey = "" }, "API key"},
		{"too long", func(s *Scenario) { s.StepDuration = time.Hour }, "at most"},
		{"queue bindings without queues", func(s *Scenario) { s.Mix = Mix{KindQueue: 1}; s.Queues = 0; s.Recipients = 1 }, "0 queues"},
		{"children without a way to start them", func(s *Scenario) { s.Procs = 2 }, "Spawn"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sc := base()
			tt.edit(&sc)
			err := sc.Validate()
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("error %v, want one mentioning %q", err, tt.want)
			}
		})
	}
	sc := base()
	if err := sc.Validate(); err != nil {
		t.Fatalf("a good scenario was refused: %v", err)
	}
}

func TestSpecsFollowTheMixInEveryProcess(t *testing.T) {
	p := plan{Conns: 1000, Mix: Mix{KindAccount: 0.8, KindQueue: 0.1, KindRecipient: 0.1}, Queues: 7, Recipients: 3,
		SourceIPs: []string{"127.0.0.1", "127.0.0.2"}}
	all, err := specs(p)
	if err != nil {
		t.Fatal(err)
	}
	count := func(s []connSpec) map[Kind]int {
		m := map[Kind]int{}
		for _, c := range s {
			m[c.kind]++
		}
		return m
	}
	if c := count(all); c[KindAccount] != 800 || c[KindQueue] != 100 || c[KindRecipient] != 100 {
		t.Fatalf("kinds %v", c)
	}
	// A quarter of the connections (one of four processes) has a quarter of each kind, ±1.
	if c := count(all[250:500]); c[KindAccount] < 199 || c[KindAccount] > 201 || c[KindQueue] < 24 || c[KindQueue] > 26 {
		t.Fatalf("one process's share %v", c)
	}
	for i, s := range all {
		if s.src != netip.MustParseAddr(p.SourceIPs[i%2]) {
			t.Fatalf("connection %d from %s", i, s.src)
		}
		if (s.kind == KindQueue && s.entity >= 7) || (s.kind == KindRecipient && s.entity >= 3) {
			t.Fatalf("connection %d bound to entity %d of its kind", i, s.entity)
		}
	}
}

func TestKindCountsAddUp(t *testing.T) {
	for _, n := range []int{1, 2, 3, 7, 10, 999} {
		c := kindCounts(Mix{KindAccount: 1.0 / 3, KindQueue: 1.0 / 3, KindRecipient: 1.0 / 3}, n)
		if c[0]+c[1]+c[2] != n {
			t.Fatalf("n=%d: counts %v", n, c)
		}
	}
}

func TestBindingsMatchBetweenGatewayAndPeer(t *testing.T) {
	acct := "0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10"
	tests := []struct {
		spec          connSpec
		gateway, nats string
	}{
		{connSpec{kind: KindAccount}, "qubicle.*." + acct + ".*", "qubicle.*." + acct + ".*.>"},
		{connSpec{kind: KindQueue, entity: 3}, "qubicle.queue." + acct + ".bench-q3", "qubicle.queue." + acct + ".bench-q3.>"},
		{connSpec{kind: KindRecipient, entity: 0}, "qubicle.recipient." + acct + ".bench-r0", "qubicle.recipient." + acct + ".bench-r0.>"},
	}
	for _, tt := range tests {
		if g := tt.spec.binding(protoGateway, acct); g != tt.gateway {
			t.Errorf("%s gateway binding %q, want %q", tt.spec.kind, g, tt.gateway)
		}
		if n := tt.spec.binding(protoNATS, acct); n != tt.nats {
			t.Errorf("%s NATS subject %q, want %q", tt.spec.kind, n, tt.nats)
		}
	}
}

func TestBindingsAreValidAndSeeTheirEvents(t *testing.T) {
	acct := "0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10"
	subjects := []string{
		"qubicle.queue." + acct + ".bench-q0.join",
		"qubicle.queue." + acct + ".bench-q1.join",
		"qubicle.recipient." + acct + ".bench-r0.ready",
	}
	tests := []struct {
		spec connSpec
		sees []bool
	}{
		{connSpec{kind: KindAccount}, []bool{true, true, true}},
		{connSpec{kind: KindQueue, entity: 1}, []bool{false, true, false}},
		{connSpec{kind: KindRecipient, entity: 0}, []bool{false, false, true}},
	}
	for _, tt := range tests {
		b, err := binding.Parse(tt.spec.binding(protoGateway, acct))
		if err != nil {
			t.Fatalf("%s binding refused: %v", tt.spec.kind, err)
		}
		if b.BusFilter() != tt.spec.binding(protoNATS, acct) {
			t.Errorf("%s: gateway bus filter %q, peer subject %q", tt.spec.kind, b.BusFilter(), tt.spec.binding(protoNATS, acct))
		}
		for i, s := range subjects {
			if b.Matches(s) != tt.sees[i] {
				t.Errorf("%s binding matches %s: %v, want %v", tt.spec.kind, s, b.Matches(s), tt.sees[i])
			}
		}
	}
}
