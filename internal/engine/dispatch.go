package engine

import (
	"cmp"
	"math"
	"slices"

	"github.com/ccevents/ccevents/internal/event"
)

// dispatch offers waiting callers to eligible ready recipients, oldest
// caller first across the account's queues, until no ready recipient is
// left or no caller can be served. Called after every change that can make
// an offer possible.
func (a *account) dispatch() {
	if a.readyCount == 0 {
		return
	}
	var callers []*session
	for _, q := range a.queues {
		for _, s := range q.waiting {
			if len(s.offers) == 0 || q.cfg.Strategy == event.StrategyRingAll {
				callers = append(callers, s)
			}
		}
	}
	slices.SortFunc(callers, func(x, y *session) int { return cmp.Compare(x.order, y.order) })
	for _, s := range callers {
		if a.readyCount == 0 {
			return
		}
		q := s.queue
		cands := a.eligible(q, s, true)
		if len(cands) == 0 && len(s.offers) == 0 && len(s.excluded) > 0 {
			// Everyone eligible has turned this caller down once: start over.
			if cands = a.eligible(q, s, false); len(cands) > 0 {
				clear(s.excluded)
			}
		}
		if len(cands) == 0 {
			continue
		}
		switch q.cfg.Strategy {
		case event.StrategyRingAll:
			for _, r := range cands {
				a.offer(s, r)
			}
		case event.StrategyRoundRobin:
			r := cands[0] // members are sorted by id: take the first after the last one offered
			for _, c := range cands {
				if c.cfg.ID > q.rrLast {
					r = c
					break
				}
			}
			q.rrLast = r.cfg.ID
			a.offer(s, r)
		case event.StrategyFewestCalls:
			a.offer(s, slices.MinFunc(cands, func(x, y *recipient) int {
				if x.calls != y.calls {
					return x.calls - y.calls
				}
				return x.idleSince.Compare(y.idleSince)
			}))
		default: // most_idle
			a.offer(s, slices.MinFunc(cands, func(x, y *recipient) int { return x.idleSince.Compare(y.idleSince) }))
		}
	}
}

// eligible lists, in id order, the recipients who may be offered s now:
// ready, serving q, not paused for q, not held back after a quick reject,
// and (if excluding) not having turned s down already.
func (a *account) eligible(q *queue, s *session, excluding bool) []*recipient {
	var out []*recipient
	for _, r := range q.members {
		if r.state != event.StateReady || r.isPaused(q.cfg.ID) || r.heldUntil.After(a.now) {
			continue
		}
		if excluding && s.excluded[r.cfg.ID] {
			continue
		}
		out = append(out, r)
	}
	return out
}

// estimatedWait is the documented estimate for a caller at position p of
// q (docs/engine.md):
//
//	0                                   if p ≤ R
//	ceil((p − R) × AHT / max(S, 1))     otherwise, capped at max_wait_s
//
// where R counts ready recipients serving q (not paused for it), S counts
// the recipients working q (logged in, not paused, ready, offered, busy
// or in wrap-up) and AHT is the mean handle time (answer to end of
// wrap-up) of q's last 20 calls, or the configured default before any.
func (a *account) estimatedWait(q *queue, p int) int {
	var ready, staffed int
	for _, r := range q.members {
		if r.isPaused(q.cfg.ID) {
			continue
		}
		switch r.state {
		case event.StateReady:
			ready++
			staffed++
		case event.StateOffered, event.StateBusy, event.StateWrapup:
			staffed++
		}
	}
	ahead := p - ready
	if ahead <= 0 {
		return 0
	}
	aht := q.averageHandle(a.e.cfg.DefaultHandleTime).Seconds()
	est := int(math.Ceil(float64(ahead) * aht / float64(max(staffed, 1))))
	if q.cfg.MaxWaitS > 0 && est > q.cfg.MaxWaitS {
		est = q.cfg.MaxWaitS
	}
	return est
}
