package engine

import "time"

// MinOfferInterval is the least time between the start of an offer a
// recipient rejected and the next offer to them. A person takes longer
// than this to decline a call and the shortest offer timeout (1 s) is not
// shorter, so it holds back only devices that reject at machine speed: a
// phone set to do-not-disturb answering 486 at once, or a desktop that
// declines every offer. Without it such a recipient, if they are the only
// one eligible, is offered the same caller (or each waiting caller in
// turn) again at once, as fast as the engine and the device can go.
const MinOfferInterval = time.Second

// holdAfterReject keeps the recipient of rejected offer o from being
// offered anything until MinOfferInterval after o began, and dispatches
// again when that time comes.
func (a *account) holdAfterReject(o *offer) {
	until := o.at.Add(MinOfferInterval)
	if !until.After(a.now) {
		return
	}
	r := o.r
	r.heldUntil = until
	stopTimer(r.holdTimer)
	r.holdTimer = a.after(until.Sub(a.now), func() {
		r.holdTimer = nil
		a.dispatch()
	})
	a.e.metrics.offerHolds.Inc()
}
