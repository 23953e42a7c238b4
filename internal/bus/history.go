package bus

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
)

// History is read with JetStream's batched direct get: a request names a
// start sequence, a subject filter and a batch size, and the stream answers
// with up to that many matching messages and an end-of-batch marker. No
// consumer is created, so any number of clients may resume at once without
// nearing the stream's consumer limit, and nothing stays on the server
// between two batches.
//
// On a replicated stream every replica that is nearly current answers direct
// gets, so an answer may lack the newest messages. Before a Reader reports
// the end of what it was asked for, it asks the stream leader whether
// anything matching is left (see leaderNext).

// Subjects of the JetStream API requests history reading uses.
const (
	directGetSubject = "$JS.API.DIRECT.GET." + StreamName
	msgGetSubject    = "$JS.API.STREAM.MSG.GET." + StreamName
)

// directGetRequest is nats-server's JSApiMsgGetRequest, the fields we use.
type directGetRequest struct {
	Seq      uint64 `json:"seq,omitempty"`
	NextFor  string `json:"next_by_subj,omitempty"`
	Batch    int    `json:"batch,omitempty"`
	MaxBytes int    `json:"max_bytes,omitempty"`
}

// Bounds of one history read: a batch asks for at most this many messages
// and bytes, so a reader holds little while its client catches up.
const (
	DefaultReadBatch = 128
	DefaultReadBytes = 256 << 10
)

// errNotFound is a direct get that found no message.
var errNotFound = errors.New("no such message in history")

// errNoDirect is a direct get nobody answers: the stream was made without
// allow_direct (by a ccevents before direct gets, and not updated since
// by an api or engine node), so history is read from the stream leader.
var errNoDirect = errors.New("the stream does not answer direct gets")

// A Reader reads stored events in stream order from a position fixed when
// it is opened. Opening first tells the caller whether history still
// reaches back far enough, before it promises its client anything.
type Reader struct {
	b      *Bus
	filter string
	after  uint64
	until  uint64
	start  uint64
	next   uint64 // the first sequence the next batch asks for
	done   bool
}

// OpenReplay positions a Reader on the stored events matching filter (a
// NATS subject filter) with a sequence in (afterSeq, untilSeq]. It holds
// nothing on the server.
func (b *Bus) OpenReplay(ctx context.Context, filter string, afterSeq, untilSeq uint64) (*Reader, error) {
	r := &Reader{b: b, filter: filter, after: afterSeq, until: untilSeq, start: afterSeq + 1}
	if untilSeq <= afterSeq {
		r.done = true
		return r, nil
	}
	// Does the message right after the cursor still exist? History ages
	// out from its oldest end, so if it does, everything after it does.
	err := retryTransient(ctx, func(ctx context.Context) error {
		return b.directBatch(ctx, directGetRequest{Seq: afterSeq + 1}, func(Message) error { return nil }, nil)
	})
	if errors.Is(err, errNoDirect) {
		var found bool
		if _, found, err = b.leaderGet(ctx, afterSeq+1, ""); err == nil && !found {
			err = errNotFound
		}
	}
	switch {
	case err == nil:
	case errors.Is(err, errNotFound):
		// Aged out, deleted, or not yet on the replica that answered: the
		// stream leader's bounds decide.
		var bounds Bounds
		if err := retryTransient(ctx, func(ctx context.Context) error {
			var err error
			bounds, err = b.Bounds(ctx)
			return err
		}); err != nil {
			return nil, fmt.Errorf("replay %s after %d: %w", filter, afterSeq, err)
		}
		r.start = max(r.start, bounds.First)
	default:
		return nil, fmt.Errorf("replay %s after %d: %w", filter, afterSeq, err)
	}
	r.next = r.start
	return r, nil
}

// Complete reports whether history still holds everything after the
// sequence the Reader was opened after: nothing in between has aged out.
func (r *Reader) Complete() bool { return r.start <= r.after+1 }

// Start is the first sequence the Reader can deliver: the one after the
// sequence it was opened after, or the oldest stored when that one is gone.
func (r *Reader) Start() uint64 { return r.start }

// Next reads one batch of at most maxMsgs events (and about maxBytes),
// calling fn for each in order, and reports whether the Reader is done: it
// has passed the upper bound or reached the end of what is stored. An error
// from fn stops it and is returned.
func (r *Reader) Next(ctx context.Context, maxMsgs, maxBytes int, fn func(Message) error) (done bool, err error) {
	if r.done {
		return true, nil
	}
	req := directGetRequest{Seq: r.next, NextFor: r.filter, Batch: max(maxMsgs, 1), MaxBytes: max(maxBytes, 1)}
	var pending uint64
	n := 0
	err = retryTransient(ctx, func(ctx context.Context) error {
		return r.b.directBatch(ctx, req, func(m Message) error {
			if m.Sequence < r.next {
				return nil // a retried batch repeats what was read already
			}
			if m.Sequence > r.until {
				r.done = true
				return errStop
			}
			n++
			r.next = m.Sequence + 1
			if err := fn(m); err != nil {
				return err
			}
			if m.Sequence == r.until {
				r.done = true
				return errStop
			}
			return nil
		}, &pending)
	})
	switch {
	case errors.Is(err, errStop):
		return true, nil
	case errors.Is(err, errNotFound):
		pending = 0
	case errors.Is(err, errNoDirect):
		return r.nextFromLeader(ctx, fn)
	case err != nil:
		return false, fmt.Errorf("replay %s from %d: %w", r.filter, req.Seq, err)
	}
	if pending > 0 && n > 0 {
		return false, nil
	}
	// The replica that answered has nothing more. On a replicated stream it
	// may lag behind the leader: only the leader may say the read is over.
	if r.b.replicated {
		return r.nextFromLeader(ctx, fn)
	}
	r.done = true
	return true, nil
}

// nextFromLeader reads the next matching event from the stream leader:
// the end of a read on a replicated stream, and every read of a stream
// that does not allow direct gets.
func (r *Reader) nextFromLeader(ctx context.Context, fn func(Message) error) (bool, error) {
	m, ok, err := r.b.leaderGet(ctx, r.next, r.filter)
	if err != nil {
		return false, fmt.Errorf("replay %s from %d: %w", r.filter, r.next, err)
	}
	if !ok || m.Sequence > r.until {
		r.done = true
		return true, nil
	}
	r.next = m.Sequence + 1
	if err := fn(m); err != nil {
		return false, err
	}
	r.done = m.Sequence == r.until
	return r.done, nil
}

// errStop ends a batch early from inside its callback.
var errStop = errors.New("stop reading")

// Run calls fn for each event in order until it has passed the upper bound
// or reached the end of what is stored. An error from fn stops it and is
// returned.
func (r *Reader) Run(ctx context.Context, fn func(Message) error) error {
	for {
		done, err := r.Next(ctx, DefaultReadBatch, DefaultReadBytes, fn)
		if err != nil || done {
			return err
		}
	}
}

// Replay calls fn for every stored event matching filters with a sequence in
// (afterSeq, untilSeq], in order, and returns when it has passed untilSeq or
// reached the end of what is stored. An error from fn stops the replay and is
// returned. Several filters are read as one pass over the whole stream.
func (b *Bus) Replay(ctx context.Context, filters []string, afterSeq, untilSeq uint64, fn func(Message) error) error {
	filter := StreamSubjects
	if len(filters) == 1 {
		filter = filters[0]
	}
	r, err := b.OpenReplay(ctx, filter, afterSeq, untilSeq)
	if err != nil {
		return err
	}
	return r.Run(ctx, func(m Message) error {
		if len(filters) > 1 && !matchesAny(filters, m.Subject) {
			return nil
		}
		return fn(m)
	})
}

func matchesAny(filters []string, subject string) bool {
	for _, f := range filters {
		if server.SubjectMatchesFilter(subject, f) {
			return true
		}
	}
	return false
}

// directBatch sends one direct get and calls fn for every message of the
// answer. A batch request ends with an end-of-batch marker, whose count of
// matching messages left after the batch goes to *pending; a request that
// finds nothing returns errNotFound. Each call has a deadline of its own: a
// lost answer is retried rather than waited for.
func (b *Bus) directBatch(ctx context.Context, req directGetRequest, fn func(Message) error, pending *uint64) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, attemptTimeout)
	defer cancel()
	// An answer is at most the batch and its end marker (or one status):
	// a channel that size, where SubscribeSync would allocate 64K slots.
	msgs := make(chan *nats.Msg, req.Batch+2)
	inbox := b.conn.NewInbox() // the connection's own prefix: no producer may read history (identity.go)
	sub, err := b.conn.ChanSubscribe(inbox, msgs)
	if err != nil {
		return fmt.Errorf("direct get: %w", err)
	}
	defer func() { _ = sub.Unsubscribe() }()
	if err := b.conn.PublishRequest(directGetSubject, inbox, body); err != nil {
		return fmt.Errorf("direct get: %w", err)
	}
	for {
		var msg *nats.Msg
		select {
		case msg = <-msgs:
		case <-ctx.Done():
			return fmt.Errorf("direct get: %w", ctx.Err())
		}
		switch status := msg.Header.Get("Status"); status {
		case "":
		case "404":
			return errNotFound
		case "204": // end of batch
			if pending != nil {
				*pending, _ = strconv.ParseUint(msg.Header.Get("Nats-Num-Pending"), 10, 64)
			}
			return nil
		case "503":
			b.warnNoDirect.Do(func() {
				b.log.Warn("the event stream does not allow direct gets (made by an older ccevents); reading history from the stream leader one event at a time until an api or engine node updates it")
			})
			return errNoDirect
		default:
			return fmt.Errorf("direct get: the stream answered %s %s", status, msg.Header.Get("Description"))
		}
		m, err := directMessage(msg)
		if err != nil {
			return err
		}
		if err := fn(m); err != nil {
			return err
		}
		if req.Batch == 0 {
			return nil // a single get has no end-of-batch marker
		}
	}
}

// directMessage reads a stored message out of a direct get answer.
func directMessage(msg *nats.Msg) (Message, error) {
	seq, err := strconv.ParseUint(msg.Header.Get("Nats-Sequence"), 10, 64)
	if err != nil || seq == 0 {
		return Message{}, fmt.Errorf("direct get: answer without a sequence (%q)", msg.Header.Get("Nats-Sequence"))
	}
	ts, _ := time.Parse(time.RFC3339Nano, msg.Header.Get("Nats-Time-Stamp"))
	return Message{Subject: msg.Header.Get("Nats-Subject"), Data: msg.Data, Sequence: seq, Time: ts}, nil
}

// leaderGet asks the stream leader for the first message matching filter
// at or after seq (with no filter, the message at seq): the one answer no
// lagging replica can give.
func (b *Bus) leaderGet(ctx context.Context, seq uint64, filter string) (Message, bool, error) {
	body, err := json.Marshal(directGetRequest{Seq: seq, NextFor: filter})
	if err != nil {
		return Message{}, false, err
	}
	var resp struct {
		Error *struct {
			Code        int    `json:"code"`
			ErrCode     int    `json:"err_code"`
			Description string `json:"description"`
		} `json:"error"`
		Message *struct {
			Subject string    `json:"subject"`
			Seq     uint64    `json:"seq"`
			Data    []byte    `json:"data"`
			Time    time.Time `json:"time"`
		} `json:"message"`
	}
	err = retryTransient(ctx, func(ctx context.Context) error {
		msg, err := b.conn.RequestWithContext(ctx, msgGetSubject, body)
		if err != nil {
			return err
		}
		resp.Error, resp.Message = nil, nil
		return json.Unmarshal(msg.Data, &resp)
	})
	switch {
	case err != nil:
		return Message{}, false, fmt.Errorf("read from the stream leader: %w", err)
	case resp.Error != nil && resp.Error.ErrCode == msgNotFoundErrCode:
		return Message{}, false, nil
	case resp.Error != nil:
		return Message{}, false, fmt.Errorf("read from the stream leader: %s", resp.Error.Description)
	case resp.Message == nil:
		return Message{}, false, errors.New("read from the stream leader: empty answer")
	}
	m := resp.Message
	return Message{Subject: m.Subject, Data: m.Data, Sequence: m.Seq, Time: m.Time}, true, nil
}

// msgNotFoundErrCode is JetStream's error code for "no message found".
const msgNotFoundErrCode = 10037
