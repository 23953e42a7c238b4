package main

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/testkit"
)

// doctor runs `ccevents doctor` against urls until it exits with code
// and prints every one of wants, for at most limit (copies take a moment
// to catch up, or to be noticed gone), and returns what it printed last.
func doctor(t *testing.T, urls []string, limit time.Duration, code int, wants ...string) string {
	t.Helper()
	var printed string
	testkit.EventuallyNoError(t, limit, fmt.Sprintf("doctor to exit %d printing %q", code, wants), func() error {
		var out, errs bytes.Buffer
		got := run([]string{"doctor", "--nats", strings.Join(urls, ","), "--timeout", "20s"}, &out, &errs)
		printed = out.String() + errs.String()
		if got != code || !containsAll(printed, wants) {
			return fmt.Errorf("it exited %d printing:\n%s", got, printed)
		}
		return nil
	})
	return printed
}

func containsAll(s string, parts []string) bool {
	for _, p := range parts {
		if !strings.Contains(s, p) {
			return false
		}
	}
	return true
}

func TestDoctorNamesTheNATSServerWhoseCopiesAreNotCurrent(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a three-node cluster")
	}
	c := natstest.Start(t, 3)
	ctx, cancel := context.WithTimeout(t.Context(), 2*time.Minute)
	defer cancel()
	b := natstest.Bus(t, bus.Config{URLs: c.URLs(), Name: "test", Replicas: 3})
	if _, err := b.KeyValue(ctx, authBucket); err != nil {
		t.Fatal(err)
	}

	out := doctor(t, c.URLs(), time.Minute, 0, "stream QUBICLE                3/3 current", "bucket ccevents_auth          3/3 current",
		"ok: every stream and bucket has all its copies current")
	t.Logf("healthy cluster:\n%s", out)

	// A server goes away; its copies stop being current.
	victim := 2
	if c.StreamLeader(bus.StreamName) == victim {
		victim = 1
	}
	c.Kill(victim)
	name := c.Name(victim)
	out = doctor(t, c.URLs(), 2*time.Minute, 1, "stream QUBICLE                2/3 current",
		"problem: stream QUBICLE: the copy on "+name+" is", "problem: bucket ccevents_auth: the copy on "+name+" is")
	t.Logf("%s down:\n%s", name, out)

	c.Restart(victim)
	doctor(t, c.URLs(), 2*time.Minute, 0, "ok: every stream and bucket has all its copies current")
}
