package client

import (
	"encoding/base64"
	"strings"
	"testing"
	"time"
)

func TestParsePosition(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Position
		err  string
	}{
		{"1234", Position{Sequence: 1234}, ""},
		{"1234@8f2c", Position{Sequence: 1234, Epoch: "8f2c"}, ""},
		{" 7@e ", Position{Sequence: 7, Epoch: "e"}, ""},
		{"", Position{}, "want a sequence number"},
		{"-3", Position{}, "want a sequence number"},
		{"12abc", Position{}, "want a sequence number"},
		{"@e", Position{}, "want a sequence number"},
	} {
		got, err := ParsePosition(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePosition(%q) error %v, want %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("ParsePosition(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
		if back, _ := ParsePosition(got.String()); back != got {
			t.Errorf("ParsePosition(%v.String()) = %v, want it back", got, back)
		}
	}
}

func TestRenewAtLeavesAMarginBeforeExpiry(t *testing.T) {
	now := time.Date(2026, 11, 25, 12, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		life, before time.Duration
	}{
		{time.Hour, 12 * time.Minute},       // a fifth of the life
		{time.Minute, 30 * time.Second},     // at least 30 s
		{10 * time.Second, 5 * time.Second}, // but at most half a short life
	} {
		got := renewAt(Token{ExpiresAt: now.Add(tc.life)}, now)
		if want := now.Add(tc.life - tc.before); !got.Equal(want) {
			t.Errorf("token living %s: renew at %s, want %s before expiry", tc.life, got.Sub(now), tc.before)
		}
	}
	if !renewAt(Token{}, now).IsZero() {
		t.Error("a token without expiry must not be scheduled for renewal")
	}
}

func TestTokenInfoReadsAccountAndExpiry(t *testing.T) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"account_id":"0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10","exp":1795606363}`))
	got := tokenInfo("eyJhbGciOiJFZERTQSJ9." + payload + ".sig")
	if got.AccountID != "0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10" || got.ExpiresAt.Unix() != 1795606363 {
		t.Fatalf("tokenInfo = %+v", got)
	}
	for _, bad := range []string{"", "opaque", "a.!!!.c", "a." + base64.RawURLEncoding.EncodeToString([]byte("[]")) + ".c"} {
		if info := tokenInfo(bad); info.AccountID != "" || !info.ExpiresAt.IsZero() || info.Value != bad {
			t.Errorf("tokenInfo(%q) = %+v, want only the value", bad, info)
		}
	}
}

func TestEventReadsItsRoutingKey(t *testing.T) {
	ev := Event{RoutingKey: "qubicle.recipient.0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10.agent-7.wrapup_start"}
	if ev.Family() != "recipient" || ev.AccountID() != "0d15ea5e0b0e4c1d9f3a2b6c7d8e9f10" || ev.EntityID() != "agent-7" {
		t.Fatalf("Family %q AccountID %q EntityID %q", ev.Family(), ev.AccountID(), ev.EntityID())
	}
	if short := (Event{RoutingKey: "qubicle"}); short.AccountID() != "" {
		t.Fatalf("AccountID of a truncated key = %q, want empty", short.AccountID())
	}
}
