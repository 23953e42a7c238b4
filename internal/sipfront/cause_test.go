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
		if ok && (code < 1 || code > 127) {
			t.Fatalf("ParseReason(%q) = %d, outside Q.850", s, code)
		}
		if ok && !CauseOfQ850(code).Valid() {
			t.Fatalf("cause %d has no catalogue name", code)
		}
	})
}
