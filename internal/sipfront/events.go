package sipfront

import (
	"encoding/json"
	"fmt"

	"github.com/nats-io/nats.go"

	"github.com/ccevents/ccevents/internal/event"
)

// The front end follows the engine's decisions on the bus: the events
// below, for every account, in the order the engine published them (one
// channel for all subjects keeps that order).
var followed = []string{
	"qubicle.recipient.*.*.offer",
	"qubicle.recipient.*.*.rescind",
	"qubicle.recipient.*.*.reject",
	"qubicle.recipient.*.*.hangup",
	"qubicle.recipient.*.*.wiretap_start",
	"qubicle.recipient.*.*.wiretap_stop",
	"qubicle.recipient.*.*.wiretap_failed",
	"qubicle.recipient.*.*.external_call_end",
	"qubicle.session.*.*.delete",
}

// eventsBuffer is how many events may wait for the front end.
const eventsBuffer = 8192

// engineEvent is the part of an event the front end reads.
type engineEvent struct {
	Name           string      `json:"-"`
	AccountID      string      `json:"account_id"`
	SessionID      string      `json:"session_id"`
	RecipientID    string      `json:"recipient_id"`
	SupervisorID   string      `json:"supervisor_id"`
	CallerIDName   string      `json:"caller_id_name"`
	CallerIDNumber string      `json:"caller_id_number"`
	TimeoutS       int         `json:"timeout_s"`
	Cause          event.Cause `json:"disconnect_cause"`
}

func (s *Server) follow() error {
	s.events = make(chan *nats.Msg, eventsBuffer)
	for _, subj := range followed {
		sub, err := s.cfg.Conn.ChanSubscribe(subj, s.events)
		if err != nil {
			return fmt.Errorf("follow engine events %s: %w", subj, err)
		}
		_ = sub.SetPendingLimits(-1, -1)
		s.sub = append(s.sub, sub)
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			select {
			case <-s.ctx.Done():
				return
			case m := <-s.events:
				s.onEvent(m)
			}
		}
	}()
	return nil
}

func (s *Server) onEvent(m *nats.Msg) {
	fam, _, _, name, err := event.ParseSubject(m.Subject)
	if err != nil {
		return
	}
	var ev engineEvent
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		s.log.Warn("skip an unreadable engine event", "subject", m.Subject, "err", err)
		return
	}
	ev.Name = string(fam) + "." + name
	switch ev.Name {
	case "recipient.offer":
		s.onOffer(ev)
	case "recipient.rescind", "recipient.reject":
		if c := s.calls.get(ev.AccountID, ev.SessionID); c != nil {
			c.stopRinging(ev.RecipientID)
		}
	case "recipient.hangup", "recipient.external_call_end":
		if c := s.calls.get(ev.AccountID, ev.SessionID); c != nil {
			c.end(event.CauseNormalClearing)
		}
	case "session.delete":
		if c := s.calls.get(ev.AccountID, ev.SessionID); c != nil {
			c.end(ev.Cause)
		}
	case "recipient.wiretap_start":
		s.onWiretapStart(ev)
	case "recipient.wiretap_stop", "recipient.wiretap_failed":
		if c := s.calls.get(ev.AccountID, ev.SessionID); c != nil {
			c.stopTap(ev.SupervisorID)
		}
	}
}
