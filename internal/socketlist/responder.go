package socketlist

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"
)

// Lister is a gateway: it lists its own sockets.
type Lister interface {
	Sockets(ctx context.Context, q Query) Answer
}

// ServeConfig says who a gateway is and where it registers.
type ServeConfig struct {
	// Name names the gateway in answers and in the registry; it must be
	// unique in the cluster (a gateway's default, host:port, is).
	Name string
	// Registry is the registry bucket (RegistryBucket, opened with
	// bus.ExpireAfter(RegistryTTL)); its TTL sets the write interval.
	Registry jetstream.KeyValue
	// AnswerTimeout bounds the work on one answer. Default DefaultTimeout:
	// after that nobody reads it.
	AnswerTimeout time.Duration
	Registerer    prometheus.Registerer
	Logger        *slog.Logger
}

// Outcomes counted in ccevents_ws_registry_writes_total.
const (
	writeOK       = "ok"       // the gateway's entry was written
	writeFailed   = "failed"   // NATS did not take it; the next write retries
	writeConflict = "conflict" // another process wrote the same key: two gateways share a name
)

// Responder answers listing requests for one gateway and keeps it in the
// registry while it does. Leave ends both.
type Responder struct {
	nc       *nats.Conn
	kv       jetstream.KeyValue
	key      string
	value    presence
	interval time.Duration
	timeout  time.Duration
	log      *slog.Logger
	writes   *prometheus.CounterVec

	sub        *nats.Subscription
	stopWrites context.CancelFunc
	writesDone chan struct{}
	leaveOnce  sync.Once
	leaveErr   error
}

// leaveTimeout bounds joining the registry, and leaving it when ctx ended
// on its own.
const leaveTimeout = 5 * time.Second

// Serve answers listing requests on Subject with l's sockets, and keeps the
// gateway in the registry, until ctx ends or Leave is called. It registers
// only once its subscription is in place, so a gateway in the registry can
// always be asked.
func Serve(ctx context.Context, nc *nats.Conn, l Lister, cfg ServeConfig) (*Responder, error) {
	if cfg.Name == "" || cfg.Registry == nil {
		return nil, errors.New("serve the websocket listing: a gateway needs a name and the registry bucket")
	}
	ttl, err := registryTTL(ctx, cfg.Registry)
	if err != nil {
		return nil, err
	}
	var inst [8]byte
	_, _ = rand.Read(inst[:])
	r := &Responder{
		nc: nc, kv: cfg.Registry, key: registryKey(cfg.Name),
		value:    presence{Name: cfg.Name, Instance: hex.EncodeToString(inst[:]), Since: time.Now().UTC().Format(time.RFC3339)},
		interval: ttl / 3, timeout: cfg.AnswerTimeout, log: cfg.Logger,
		writes: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "ccevents_ws_registry_writes_total",
			Help: "Writes of this gateway's entry in the gateway registry, by outcome (ok, failed, conflict: another gateway has the same name).",
		}, []string{"outcome"}),
		writesDone: make(chan struct{}),
	}
	if r.timeout <= 0 {
		r.timeout = DefaultTimeout
	}
	if r.log == nil {
		r.log = slog.New(slog.DiscardHandler)
	}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(r.writes); err != nil {
			return nil, fmt.Errorf("register gateway registry metrics: %w", err)
		}
	}
	for _, o := range []string{writeOK, writeFailed, writeConflict} {
		r.writes.WithLabelValues(o)
	}

	if r.sub, err = nc.Subscribe(Subject, func(m *nats.Msg) { r.answer(ctx, l, m) }); err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", Subject, err)
	}
	// The server must know the subscription before the registry says the
	// gateway can be asked.
	jctx, cancel := context.WithTimeout(ctx, leaveTimeout)
	var rev uint64
	if err = nc.FlushWithContext(jctx); err == nil {
		rev, err = r.write(jctx, 0)
	}
	cancel()
	if err != nil {
		_ = r.sub.Unsubscribe()
		return nil, fmt.Errorf("join the gateway registry %s as %q: %w", cfg.Registry.Bucket(), cfg.Name, err)
	}
	wctx, stop := context.WithCancel(context.WithoutCancel(ctx))
	r.stopWrites = stop
	go r.keepWriting(wctx, rev)
	context.AfterFunc(ctx, func() {
		lctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), leaveTimeout)
		defer cancel()
		_ = r.Leave(lctx)
	})
	r.log.Info("joined the gateway registry", "gateway", cfg.Name, "write_interval", r.interval)
	return r, nil
}

// answer answers one listing request.
func (r *Responder) answer(ctx context.Context, l Lister, m *nats.Msg) {
	if m.Reply == "" {
		return
	}
	var a Answer
	var q Query
	if err := json.Unmarshal(m.Data, &q); err != nil {
		a.Error = "the listing request could not be read; the asking node may need an upgrade"
	} else {
		qctx, cancel := context.WithTimeout(ctx, r.timeout)
		a = l.Sockets(qctx, q)
		cancel()
	}
	// The registry knows the gateway by this name: answers must match it.
	a.Gateway = r.value.Name
	data := encodeWithin(a, int(r.nc.MaxPayload())-1024)
	if err := m.Respond(data); err != nil {
		r.log.Warn("answer a websocket listing", "err", err)
	}
}

// write writes the gateway's entry, over revision rev when it is not 0,
// and returns the new revision. A write over someone else's revision
// means another process has this key.
func (r *Responder) write(ctx context.Context, rev uint64) (uint64, error) {
	data, _ := json.Marshal(r.value) // plain struct: cannot fail
	var err error
	if rev != 0 {
		var next uint64
		if next, err = r.kv.Update(ctx, r.key, data, rev); err == nil {
			r.writes.WithLabelValues(writeOK).Inc()
			return next, nil
		}
		if errors.Is(err, jetstream.ErrKeyRevisionMismatch) && r.takenByAnother(ctx) {
			r.writes.WithLabelValues(writeConflict).Inc()
			r.log.Error("another gateway registered with this gateway's name; listings cannot tell them apart: give each gateway its own name (--ws-addr's port or host)", "gateway", r.value.Name)
		}
	}
	next, err := r.kv.Put(ctx, r.key, data)
	if err != nil {
		r.writes.WithLabelValues(writeFailed).Inc()
		return 0, err
	}
	r.writes.WithLabelValues(writeOK).Inc()
	return next, nil
}

// takenByAnother reports whether the key now holds another process's
// entry, rather than having expired while this one could not write.
func (r *Responder) takenByAnother(ctx context.Context) bool {
	e, err := r.kv.Get(ctx, r.key)
	if err != nil {
		return false
	}
	var p presence
	return json.Unmarshal(e.Value(), &p) == nil && p.Instance != r.value.Instance
}

// keepWriting rewrites the entry every interval until ctx ends.
func (r *Responder) keepWriting(ctx context.Context, rev uint64) {
	defer close(r.writesDone)
	t := time.NewTicker(r.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if ctx.Err() != nil { // both were ready: Leave wins
				return
			}
		}
		// A write in flight is not cut short by Leave: abandoned, it could
		// still land after Leave's delete and put the entry back.
		wctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), r.interval)
		next, err := r.write(wctx, rev)
		cancel()
		if err != nil {
			if ctx.Err() == nil {
				r.log.Warn("could not write to the gateway registry; listings drop this gateway if it stays so", "gateway", r.value.Name, "err", err)
			}
			next = 0 // the outcome is unknown: write without a revision next time
		}
		rev = next
	}
}

// Leave removes the gateway from the registry and stops answering, in that
// order, so no listing waits for a gateway that will not answer. The entry
// is removed only while it is still this process's.
func (r *Responder) Leave(ctx context.Context) error {
	r.leaveOnce.Do(func() {
		r.stopWrites()
		<-r.writesDone
		r.leaveErr = r.deregister(ctx)
		if err := r.sub.Unsubscribe(); err != nil && !errors.Is(err, nats.ErrConnectionClosed) && r.leaveErr == nil {
			r.leaveErr = fmt.Errorf("stop answering websocket listings: %w", err)
		}
		if r.leaveErr != nil {
			r.log.Warn("left the gateway registry uncleanly; listings wait for this gateway until its entry expires", "gateway", r.value.Name, "err", r.leaveErr)
		} else {
			r.log.Info("left the gateway registry", "gateway", r.value.Name)
		}
	})
	return r.leaveErr
}

// deregister deletes the entry if it is still this process's. The delete
// is conditional on the revision read, so another process's entry written
// meanwhile is never removed; a mismatch means the entry changed after the
// read (a write of ours that was in flight when writes stopped lands late,
// or the read was served by a replica behind), so it is read again.
func (r *Responder) deregister(ctx context.Context) error {
	for {
		e, err := r.kv.Get(ctx, r.key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("leave the gateway registry: %w", err)
		}
		var p presence
		if json.Unmarshal(e.Value(), &p) != nil || p.Instance != r.value.Instance {
			return nil // another process's now: not ours to remove
		}
		err = r.kv.Delete(ctx, r.key, jetstream.LastRevision(e.Revision()))
		if err == nil {
			return nil
		}
		if !errors.Is(err, jetstream.ErrKeyRevisionMismatch) || ctx.Err() != nil {
			return fmt.Errorf("leave the gateway registry: %w", err)
		}
	}
}
