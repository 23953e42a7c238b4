package sipfront

import (
	"testing"

	"github.com/ccevents/ccevents/internal/event"
)

func TestReasonHeaderQ850CauseIsRead(t *testing.T) {
	cases := []struct {
		in   string
		code int
		ok   bool
	}{
		{`Q.850;cause=16;text="Normal call clearing"`, 16, true},
		{`SIP;cause=200;text="Call completed elsewhere", Q.850;cause=26`, 26, true},
		{`q.850 ; CAUSE = 17`, 17, true},
		{`Q.850;cause="34"`, 34, true},
		{`SIP;cause=487`, 0, false},
		{`Q.850;cause=0`, 0, false},
		{`Q.850;cause=128`, 0, false},
		{`Q.850;cause=abc`, 0, false},
		{``, 0, false},
	}
	for _, tc := range cases {
		code, ok := ParseReason(tc.in)
		if code != tc.code || ok != tc.ok {
			t.Errorf("ParseReason(%q) = %d, %v; want %d, %v", tc.in, code, ok, tc.code, tc.ok)
		}
	}
}

func TestReasonHeaderKeepsTheCauseItNames(t *testing.T) {
	cases := []struct {
		in   string
		want event.Cause
		ok   bool
	}{
		{`Q.850;cause=102;text="MEDIA_TIMEOUT"`, event.CauseMediaTimeout, true},
		{`Q.850;cause=41;text="SYSTEM_SHUTDOWN"`, event.CauseSystemShutdown, true},
		{`Q.850;cause=16;text="Normal call clearing"`, event.CauseNormalClearing, true},
		{`Q.850;cause=17;text="MEDIA_TIMEOUT"`, event.CauseUserBusy, true}, // the text does not go with the code
		{`Q.850;cause=3`, event.CauseUnallocatedNumber, true},
		{`SIP;cause=487`, "", false},
	}
	for _, tc := range cases {
		got, ok := CauseOfReason(tc.in)
		if got != tc.want || ok != tc.ok {
			t.Errorf("CauseOfReason(%q) = %q, %v; want %q, %v", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

// Every catalogue cause goes out in a Reason header that reads back as
// itself.
func TestEveryCauseRoundTripsThroughTheReasonHeader(t *testing.T) {
	for _, c := range event.Causes() {
		h := reasonHeader(c)
		got, ok := CauseOfReason(h)
		if !ok || got != c {
			t.Errorf("%s goes out as %q and reads back as %q", c, h, got)
		}
	}
}

func TestEveryCodeMapsToACatalogueCause(t *testing.T) {
	for code := 1; code <= 127; code++ {
		if c := CauseOfQ850(code); !c.Valid() {
			t.Errorf("Q.850 %d maps to %q, not in the catalogue", code, c)
		}
	}
	for status := 300; status < 700; status++ {
		if c := CauseOfStatus(status); !c.Valid() {
			t.Errorf("status %d maps to %q, not in the catalogue", status, c)
		}
	}
	if got := CauseOfQ850(17); got != event.CauseUserBusy {
		t.Errorf("Q.850 17 = %s, want USER_BUSY", got)
	}
	if got := CauseOfStatus(486); got != event.CauseUserBusy {
		t.Errorf("486 = %s, want USER_BUSY", got)
	}
}

func FuzzParseReason(f *testing.F) {
	for _, s := range []string{`Q.850;cause=16;text="x"`, `SIP;cause=200, Q.850;cause=31`, `;;,,=`, `Q.850;cause=99999999999999999999`} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		code, ok := ParseReason(s)
		if c, cok := CauseOfReason(s); cok != ok || (ok && !c.Valid()) {
			t.Fatalf("CauseOfReason(%q) = %q, %v", s, c, cok)
		}
		if ok && (code < 1 || code > 127) {
			t.Fatalf("ParseReason(%q) = %d, outside Q.850", s, code)
		}
		if ok && !CauseOfQ850(code).Valid() {
			t.Fatalf("cause %d has no catalogue name", code)
		}
	})
}
