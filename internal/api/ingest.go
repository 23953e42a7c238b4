package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/nats-io/nats.go"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/jsonerr"
)

// IngestSubject is where producers on NATS send events for validation:
// a request whose reply is the same envelope the REST API returns.
// Publishing straight into qubicle.> would skip validation; the embedded
// server's producer identity may use this subject only, and operators of
// a cluster restrict qubicle.> to ccevents with NATS permissions.
const IngestSubject = bus.IngestSubject

// ingestQueue spreads ingest requests over every API node.
const ingestQueue = "ccevents-api"

type ingestRequest struct {
	AuthToken string `json:"auth_token"`
	AccountID string `json:"account_id"`
	publishRequest
}

// ServeIngest answers publish requests on IngestSubject until ctx ends.
func (s *Server) ServeIngest(ctx context.Context, nc *nats.Conn) error {
	sub, err := nc.QueueSubscribe(IngestSubject, ingestQueue, func(m *nats.Msg) {
		reqCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		body, _ := json.Marshal(s.ingest(reqCtx, m.Data))
		_ = m.Respond(body)
	})
	if err != nil {
		return fmt.Errorf("subscribe %s: %w", IngestSubject, err)
	}
	go func() {
		<-ctx.Done()
		_ = sub.Drain()
	}()
	return nil
}

func (s *Server) ingest(ctx context.Context, data []byte) envelope {
	fail := func(msg string) envelope { return errorEnvelope(msg) }
	var req ingestRequest
	if err := json.Unmarshal(data, &req); err != nil {
		return fail(jsonerr.Describe(err, jsonerr.Doc{Name: "request", Like: `{"auth_token":"…","routing_key":"…","payload":{…}}`}))
	}
	if req.AuthToken == "" {
		return fail(`"auth_token" is required`)
	}
	claims, err := s.cfg.Auth.Verify(req.AuthToken)
	if err != nil {
		return fail(tokenProblem(err))
	}
	account := req.AccountID
	if account == "" {
		account = claims.AccountID
	}
	ok, err := s.cfg.Auth.MayAccess(ctx, claims.AccountID, account)
	if err != nil {
		return fail("could not check account access right now; try again")
	}
	if !ok {
		return fail(fmt.Sprintf("token for account %s may not access account %s", claims.AccountID, account))
	}
	res, err := s.publish(ctx, account, req.publishRequest)
	var perr *publishError
	if errors.As(err, &perr) {
		return perr.envelope()
	}
	if err != nil {
		return fail("the event was not published")
	}
	return envelope{Status: "success", Data: res}
}
