package engine

import (
	"context"
	"slices"

	"github.com/ccevents/ccevents/internal/event"
)

// CreateQueue creates a queue and starts it running (queue.create).
func (e *Engine) CreateQueue(ctx context.Context, accountID string, cfg QueueConfig) (Queue, error) {
	if err := cfg.normalize(); err != nil {
		return Queue{}, err
	}
	return reply(ctx, e.do, accountID, func(a *account) (Queue, error) {
		if a.queues[cfg.ID] != nil {
			return Queue{}, conflictf("queue %s already exists", cfg.ID)
		}
		if len(a.queues) >= maxQueues {
			return Queue{}, conflictf("account %s already has the maximum of %d queues", accountID, maxQueues)
		}
		q := &queue{cfg: cfg}
		a.queues[cfg.ID] = q
		a.stats.Configure(cfg.ID, cfg.statsSettings())
		a.emitQueueCreate(q)
		a.persistQueue(q)
		return a.queueView(q, false), nil
	})
}

// UpdateQueue replaces a queue's settings. Callers already waiting keep the
// wrap-up and finalize settings they arrived with; the strategy and offer
// timeout apply from the next offer.
func (e *Engine) UpdateQueue(ctx context.Context, accountID, queueID string, cfg QueueConfig) (Queue, error) {
	if err := matchPathID("queue", &cfg.ID, queueID); err != nil {
		return Queue{}, err
	}
	if err := cfg.normalize(); err != nil {
		return Queue{}, err
	}
	return reply(ctx, e.do, accountID, func(a *account) (Queue, error) {
		q, err := a.queue(queueID)
		if err != nil {
			return Queue{}, err
		}
		q.cfg = cfg
		a.stats.Configure(cfg.ID, cfg.statsSettings())
		a.persistQueue(q)
		return a.queueView(q, false), nil
	})
}

// DeleteQueue stops a queue and removes it: waiting callers leave with
// queue_deleted and their calls end, recipients stop serving it, and
// queue.delete goes out. Calls already answered continue.
func (e *Engine) DeleteQueue(ctx context.Context, accountID, queueID string) error {
	return e.do(ctx, accountID, func(a *account) error {
		q, err := a.queue(queueID)
		if err != nil {
			return err
		}
		n := len(q.waiting)
		for len(q.waiting) > 0 {
			a.endWaiting(q.waiting[0], event.LeaveQueueDeleted, event.RescindQueueDeleted, event.PartySystem, event.CauseNormalUnspecified)
		}
		a.emit(&event.QueueDelete{Envelope: event.Envelope{QueueID: q.cfg.ID}, QueueName: q.cfg.Name, Reason: event.QueueDeleted, Waiting: n})
		delete(a.queues, queueID)
		a.forget(queueKey(a.id, queueID))
		for _, r := range slices.Clone(q.members) {
			r.cfg.Queues = slices.DeleteFunc(r.cfg.Queues, func(id string) bool { return id == queueID })
			delete(r.paused, queueID)
			a.persistRecipient(r)
			if r.loggedIn() {
				a.emitSync(r)
			}
		}
		for _, s := range a.sessions {
			if s.queue == q {
				s.queue = nil
			}
		}
		a.dispatch()
		return nil
	})
}

// Queues lists the account's queues, sorted by id.
func (e *Engine) Queues(ctx context.Context, accountID string) ([]Queue, error) {
	return reply(ctx, e.read, accountID, func(a *account) ([]Queue, error) {
		out := make([]Queue, 0, len(a.queues)) // never nil: a list with nothing in it is [] in JSON
		for _, q := range a.sortedQueues() {
			out = append(out, a.queueView(q, false))
		}
		return out, nil
	})
}

// Queue reports one queue, with its waiting callers.
func (e *Engine) Queue(ctx context.Context, accountID, queueID string) (Queue, error) {
	return reply(ctx, e.read, accountID, func(a *account) (Queue, error) {
		q, err := a.queue(queueID)
		if err != nil {
			return Queue{}, err
		}
		return a.queueView(q, true), nil
	})
}

func (a *account) queue(id string) (*queue, error) {
	q := a.queues[id]
	if q == nil {
		return nil, notFoundf("queue %s does not exist", short(id))
	}
	return q, nil
}

func (a *account) queueView(q *queue, callers bool) Queue {
	v := Queue{
		QueueConfig:    q.cfg,
		Members:        make([]string, 0, len(q.members)),
		Waiting:        len(q.waiting),
		AverageHandleS: int(q.averageHandle(a.e.cfg.DefaultHandleTime).Seconds()),
	}
	v.Day = dayString(dayOf(a.now))
	v.DeliveredToday, v.AbandonedToday = a.stats.Today(q.cfg.ID, a.now.UnixMilli())
	for _, r := range q.members {
		v.Members = append(v.Members, r.cfg.ID)
	}
	if len(q.waiting) > 0 {
		v.LongestWaitMS = ms(a.now.Sub(q.waiting[0].joined))
	}
	if callers {
		v.Callers = make([]Caller, 0, len(q.waiting))
		for i, s := range q.waiting {
			c := Caller{
				SessionID: s.id, CallerIDName: s.callerName, CallerIDNumber: s.callerNumber,
				Position: i + 1, JoinedAt: stamp(s.joined), WaitMS: ms(a.now.Sub(s.joined)),
				EstimatedWaitS: a.estimatedWait(q, i+1), OfferedTo: make([]string, 0, len(s.offers)),
			}
			for _, o := range s.offers {
				c.OfferedTo = append(c.OfferedTo, o.r.cfg.ID)
			}
			v.Callers = append(v.Callers, c)
		}
	}
	return v
}
