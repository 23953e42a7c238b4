package loadtest

import (
	"net/netip"
	"slices"
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

func TestParseRampListsEveryStep(t *testing.T) {
	r, err := ParseRamp("200:1000:200")
	if err != nil {
		t.Fatal(err)
	}
	if got, want := r.Rates(), []float64{200, 400, 600, 800, 1000}; !slices.Equal(got, want) {
		t.Fatalf("rates %v, want %v", got, want)
	}
	if one, err := ParseRamp("500:500:0"); err != nil || len(one.Rates()) != 1 {
		t.Fatalf("single-step ramp: %v %v", one.Rates(), err)
	}
}

func TestParseAddrRangeListsEveryAddress(t *testing.T) {
	got, err := ParseAddrRange("127.0.0.1-127.0.0.3,127.0.0.9")
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 4 || got[3] != netip.MustParseAddr("127.0.0.9") {
		t.Fatalf("addresses %v", got)
	}
}

// The scenario's parsers refuse what they cannot read: a mix without a
// positive share of a known kind, a ramp that is unbounded or runs
// backwards, addresses outside 127.0.0.x.
func TestParsersRefuseWhatTheyCannotRead(t *testing.T) {
	tests := []struct {
		name  string
		parse func(string) error
		bad   []string
	}{
		{"ParseMix", func(s string) error { _, err := ParseMix(s); return err },
			[]string{"", "account", "session=1", "account=-1", "account=0", "queue=abc", "account=NaN"}},
		{"ParseRamp", func(s string) error { _, err := ParseRamp(s); return err },
			[]string{"1:2", "0:10:1", "10:5:1", "1:100000:1", "1:10:0", "a:b:c"}},
		{"ParseAddrRange", func(s string) error { _, err := ParseAddrRange(s); return err },
			[]string{"10.0.0.1", "127.0.1.1", "127.0.0.5-127.0.0.2", "::1", "127.0.0.1-10.0.0.1", ""}},
	}
	for _, tt := range tests {
		for _, in := range tt.bad {
			if err := tt.parse(in); err == nil {
				t.Errorf("%s(%q) accepted it", tt.name, in)
			}
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
		return Scenario{GatewayURLs: []string{"ws://127.0.0.1:5555"}, APIURL: "http://127.0.0.1:8000", APIKey: "k",
			NATSURL: "nats://127.0.0.1:4222", Conns: 10, Queues: 1, Rates: []float64{10}, StepDuration: time.Second}
	}
	tests := []struct {
		name string
		edit func(*Scenario)
		want string
	}{
		{"gateway elsewhere", func(s *Scenario) { s.GatewayURLs = []string{"ws://192.168.1.1:5555"} }, "127.0.0.x"},
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
		gateway, nats []string
	}{
		{connSpec{kind: KindAccount}, []string{"qubicle.*." + acct + ".*"}, []string{"qubicle.*." + acct + ".*.>"}},
		{connSpec{kind: KindQueue, entity: 3}, []string{"qubicle.queue." + acct + ".bench-q3"}, []string{"qubicle.queue." + acct + ".bench-q3.>"}},
		{connSpec{kind: KindRecipient, entity: 0}, []string{"qubicle.recipient." + acct + ".bench-r0"}, []string{"qubicle.recipient." + acct + ".bench-r0.>"}},
		{connSpec{kind: KindAgent, entity: 2},
			[]string{"qubicle.recipient." + acct + ".bench-r2", "qubicle.queue." + acct + ".bench-q2", "qubicle.queue." + acct + ".bench-q0"},
			[]string{"qubicle.recipient." + acct + ".bench-r2.>", "qubicle.queue." + acct + ".bench-q2.>", "qubicle.queue." + acct + ".bench-q0.>"}},
	}
	for _, tt := range tests {
		if g := tt.spec.bindings(protoGateway, acct, 3, 2); !slices.Equal(g, tt.gateway) {
			t.Errorf("%s gateway bindings %q, want %q", tt.spec.kind, g, tt.gateway)
		}
		if n := tt.spec.bindings(protoNATS, acct, 3, 2); !slices.Equal(n, tt.nats) {
			t.Errorf("%s NATS subjects %q, want %q", tt.spec.kind, n, tt.nats)
		}
	}
}

func TestBindingsAreValidAndSeeTheirEvents(t *testing.T) {
	acct := "0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10"
	subjects := []string{
		"qubicle.queue." + acct + ".bench-q0.join",
		"qubicle.queue." + acct + ".bench-q1.join",
		"qubicle.recipient." + acct + ".bench-r0.ready",
		"qubicle.session." + acct + ".bench-s7a.create",
	}
	tests := []struct {
		spec connSpec
		sees []bool
	}{
		{connSpec{kind: KindAccount}, []bool{true, true, true, true}},
		{connSpec{kind: KindQueue, entity: 1}, []bool{false, true, false, false}},
		{connSpec{kind: KindRecipient, entity: 0}, []bool{false, false, true, false}},
		{connSpec{kind: KindAgent, entity: 0}, []bool{true, false, true, false}}, // serves one of two queues
	}
	for _, tt := range tests {
		gw, peer := tt.spec.bindings(protoGateway, acct, 2, 1), tt.spec.bindings(protoNATS, acct, 2, 1)
		sees := make([]bool, len(subjects))
		for j, text := range gw {
			b, err := binding.Parse(text)
			if err != nil {
				t.Fatalf("%s binding refused: %v", tt.spec.kind, err)
			}
			if b.BusFilter() != peer[j] {
				t.Errorf("%s: gateway bus filter %q, peer subject %q", tt.spec.kind, b.BusFilter(), peer[j])
			}
			for i, s := range subjects {
				sees[i] = sees[i] || b.Matches(s)
			}
		}
		if !slices.Equal(sees, tt.sees) {
			t.Errorf("%s bindings see %v of %v, want %v", tt.spec.kind, sees, subjects, tt.sees)
		}
	}
}

// The multi-tenant scenario places each account's agents, then its
// wallboards, and every agent follows its recipient and its queues.
func TestTenantSpecsPlaceAgentsAndWallboardsPerAccount(t *testing.T) {
	p := plan{Tenant: true, Accounts: []string{"a", "b", "c"}, Agents: 2, Wallboards: 1, AgentQueues: 2, Queues: 3, Recipients: 2,
		Conns: 9, SourceIPs: []string{"127.0.0.1"}}
	all, err := specs(p)
	if err != nil {
		t.Fatal(err)
	}
	want := []connSpec{{kind: KindAgent, account: 0, entity: 0}, {kind: KindAgent, account: 0, entity: 1}, {kind: KindAccount, account: 0}}
	for i, s := range all[:3] {
		s.src = netip.Addr{}
		if s != want[i] {
			t.Fatalf("connection %d is %+v, want %+v", i, s, want[i])
		}
	}
	if a := all[8]; a.account != 2 || a.kind != KindAccount {
		t.Fatalf("last connection %+v, want account 2's wallboard", a)
	}
	// Agent 1 follows recipient 1 (entity 3+1) and queues 1 and 2.
	if f := all[1].follows(3, 2); !slices.Equal(f, []int{4, 1, 2}) {
		t.Fatalf("agent 1 follows %v", f)
	}
	if _, err := specs(plan{Tenant: true, Accounts: []string{"a"}, Agents: 1, Conns: 2, SourceIPs: []string{"127.0.0.1"}}); err == nil {
		t.Fatal("a plan whose connections do not fit its accounts was accepted")
	}
}

func TestValidateDerivesTheTenantConnections(t *testing.T) {
	sc := Scenario{GatewayURLs: []string{"ws://127.0.0.1:5555"}, APIURL: "http://127.0.0.1:8000", APIKey: "k",
		Accounts: 100, Agents: 3, Wallboards: 1, AgentQueues: 2, Queues: 4, Rates: []float64{0}, StepDuration: time.Second}
	if err := sc.Validate(); err != nil {
		t.Fatal(err)
	}
	if sc.Conns != 400 || sc.Recipients != 3 {
		t.Fatalf("conns %d, recipients %d; want 400 and 3", sc.Conns, sc.Recipients)
	}
	for _, tt := range []struct {
		edit func(*Scenario)
		want string
	}{
		{func(s *Scenario) { s.Agents, s.Wallboards = 0, 0 }, "at least one agent or wallboard"},
		{func(s *Scenario) { s.AgentQueues = 5 }, "between 0 and the account's 4 queues"},
		{func(s *Scenario) { s.Accounts = 0 }, "give the number of accounts"},
		{func(s *Scenario) { s.ServerPIDs = []int{1, 2} }, "one server process per gateway URL"},
	} {
		bad := sc
		tt.edit(&bad)
		if err := bad.Validate(); err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("error %v, want one mentioning %q", err, tt.want)
		}
	}
}
