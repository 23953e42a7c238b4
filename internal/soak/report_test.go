package soak

import "testing"

// report checks every client's streams against what was published and
// logs the run's numbers.
func report(t *testing.T, pub *publisher, acked [][]pubEvent, raws []*rawClient, sdks []*sdkClient, ab *abuse, slow *slowEpisodes) {
	t.Helper()
	perAcct := make([]int, len(acked))
	for i, evs := range acked {
		perAcct[i] = len(evs)
	}
	t.Logf("published %d events (per account %v), %d publish retries, %d found already stored",
		pub.published.Load(), perAcct, pub.retries.Load(), pub.duplicates.Load())

	var checked, streams, bad int
	var sessions, resumes, retries int64
	endings := map[string]*tally{kindSteady: {}, kindChurn: {}, kindSlow: {}, "sdk": {}}
	fails := 0
	failf := func(format string, args ...any) {
		bad++
		if fails < 10 {
			fails++
			t.Errorf(format, args...)
		}
	}
	for _, c := range raws {
		sessions += c.sessions.Load()
		resumes += c.resumes.Load()
		retries += c.retries.Load()
		c.endings.mergeInto(endings[c.kind])
		if n := c.probs.count(); n > 0 {
			failf("%s client %d (bindings %q): %d protocol problems, first: %q", c.kind, c.id, c.subs[0].bindings, n, c.probs.msgs)
		}
		for _, s := range c.subs {
			streams++
			d := s.compare(acked[s.acct.idx])
			checked += d.owed
			if !d.ok() {
				failf("%s client %d, account %s, bindings %q, live from %d: %v", c.kind, c.id, s.acct.id, s.bindings, s.start, d)
			}
		}
	}
	for _, sc := range sdks {
		sc.drops.mergeInto(endings["sdk"])
		if n := sc.probs.count(); n > 0 {
			failf("SDK client %d (bindings %q): %d problems, first: %q", sc.id, sc.s.bindings, n, sc.probs.msgs)
		}
		streams++
		d := sc.s.compare(acked[sc.s.acct.idx])
		checked += d.owed
		if !d.ok() {
			failf("SDK client %d, account %s, bindings %q, live from %d: %v", sc.id, sc.s.acct.id, sc.s.bindings, sc.s.start, d)
		}
	}
	if bad > fails {
		t.Errorf("… and %d more clients with problems", bad-fails)
	}
	if bad == 0 {
		t.Logf("all %d client streams complete: %d owed deliveries checked, each received once and in order", streams, checked)
	}
	t.Logf("raw clients: %d connections, %d resumes with since, %d subscribes sent again after retry_after", sessions, resumes, retries)
	for _, k := range []string{kindSteady, kindChurn, kindSlow, "sdk"} {
		t.Logf("how %s clients' connections ended: %v", k, endings[k])
	}
	t.Logf("slow-reader episodes: %d, %d overflowed into a slow-consumer close (paused for %v), %d interrupted by a restart", slow.episodes, slow.overflowed, slow.took, slow.interrupted)
	if endings[kindSlow].get("close 4008") == 0 && slow.episodes > slow.interrupted {
		t.Errorf("no slow reader was closed with 4008 in %d episodes: the slow-consumer path was not exercised", slow.episodes-slow.interrupted)
	}
	for _, k := range abuseKinds {
		tl := ab.outcomes[k.name]
		t.Logf("hostile %q: %v", k.name, tl)
		n := 0
		for _, e := range k.expect {
			n += tl.get(e)
		}
		if n == 0 && tl.get(outInterrupted) == 0 {
			t.Errorf("hostile %q never got the documented answer (%v)", k.name, k.expect)
		}
	}
	if n := ab.bad.count(); n > 0 {
		t.Errorf("%d hostile attempts got an undocumented answer, first: %q", n, ab.bad.msgs)
	}
}
