package clustertest

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/client"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/testkit"
)

// restClient calls a node's REST API as the root account.
type restClient struct {
	base, account, token string
}

// login exchanges the root API key for a token on n.
func login(t *testing.T, n *node, account, apiKey string) *restClient {
	t.Helper()
	rc := &restClient{base: n.APIURL(), account: account}
	var out struct {
		AuthToken string `json:"auth_token"`
	}
	var body []byte
	testkit.EventuallyNoError(t, 30*time.Second, "login on "+n.name, func() error {
		status, raw, err := rc.do(http.MethodPut, "/v2/api_auth", map[string]any{"data": map[string]string{"api_key": apiKey}})
		if err != nil {
			return err
		}
		if status != http.StatusCreated {
			return fmt.Errorf("%d %s", status, raw)
		}
		body = raw
		return nil
	})
	if err := json.Unmarshal(body, &out); err != nil || out.AuthToken == "" {
		t.Fatalf("login: no auth_token in %s", body)
	}
	rc.token = out.AuthToken
	return rc
}

func (rc *restClient) do(method, path string, body any) (int, []byte, error) {
	var rd io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, rc.base+strings.ReplaceAll(path, "{ACCOUNT_ID}", rc.account), rd)
	if err != nil {
		return 0, nil, err
	}
	if rc.token != "" {
		req.Header.Set("X-Auth-Token", rc.token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	resp, err := http.DefaultClient.Do(req.WithContext(ctx))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	return resp.StatusCode, raw, err
}

// received collects what one subscription's handler got, in order.
type received struct {
	mu     sync.Mutex
	events []client.Event
}

func (r *received) handle(ev client.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *received) all() []client.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.events)
}

func (r *received) seqs() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]uint64, len(r.events))
	for i, ev := range r.events {
		out[i] = ev.Sequence
	}
	return out
}

// connCounter counts the client's connections, to prove a resume happened.
type connCounter struct {
	mu        sync.Mutex
	connected int
	lost      []string
}

func (c *connCounter) observe(ev client.ConnEvent) {
	c.mu.Lock()
	defer c.mu.Unlock()
	switch ev.State {
	case client.Connected:
		c.connected++
	case client.Disconnected:
		c.lost = append(c.lost, fmt.Sprint(ev.Err))
	}
}

func (c *connCounter) connections() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.connected
}

// stored is the ground truth: the sequences the QUBICLE stream holds for
// subject filter after seq, read straight from NATS.
func stored(t *testing.T, js jetstream.JetStream, filter string, after uint64) (seqs []uint64, subjects []string) {
	t.Helper()
	testkit.EventuallyNoError(t, 30*time.Second, "read the stream", func() (err error) {
		seqs, subjects, err = readStream(t.Context(), js, filter, after)
		return err
	})
	return seqs, subjects
}

func readStream(ctx context.Context, js jetstream.JetStream, filter string, after uint64) ([]uint64, []string, error) {
	s, err := js.Stream(ctx, "QUBICLE")
	if err != nil {
		return nil, nil, err
	}
	lastSeq := s.CachedInfo().State.LastSeq
	var seqs []uint64
	var subjects []string
	for seq := after + 1; seq <= lastSeq; seq++ {
		m, err := s.GetMsg(ctx, seq)
		if errors.Is(err, jetstream.ErrMsgNotFound) {
			continue
		}
		if err != nil {
			return nil, nil, fmt.Errorf("sequence %d: %w", seq, err)
		}
		if server.SubjectMatchesFilter(m.Subject, filter) {
			seqs = append(seqs, seq)
			subjects = append(subjects, m.Subject)
		}
	}
	return seqs, subjects, nil
}

// truth connects the test itself to the cluster, to read the stream.
func truth(t *testing.T, c *natstest.Cluster) jetstream.JetStream {
	t.Helper()
	js, err := jetstream.New(c.Connect())
	if err != nil {
		t.Fatal(err)
	}
	return js
}

// lastSeq is the stream's last sequence now.
func lastSeq(t *testing.T, js jetstream.JetStream) uint64 {
	t.Helper()
	var last uint64
	testkit.EventuallyNoError(t, 30*time.Second, "read the stream's state", func() error {
		s, err := js.Stream(t.Context(), "QUBICLE")
		if err == nil {
			last = s.CachedInfo().State.LastSeq
		}
		return err
	})
	return last
}

// assertNothingMissed checks that a subscription got exactly what the
// stream holds for filter after baseline: every event, once, in order.
func assertNothingMissed(t *testing.T, js jetstream.JetStream, got *received, filter string, baseline uint64, queueIDs []string) {
	t.Helper()
	want, subjects := stored(t, js, filter, baseline)
	// Every queue the API accepted is in the stream.
	created := map[string]bool{}
	for _, s := range subjects {
		parts := strings.Split(s, ".")
		if len(parts) == 5 && parts[4] == "create" {
			created[parts[3]] = true
		}
	}
	for _, id := range queueIDs {
		if !created[id] {
			t.Errorf("queue %s was accepted but its queue.create is not in the stream", id)
		}
	}
	testkit.EventuallyNoError(t, 30*time.Second, "the client to receive every stored event", func() error {
		if n := len(got.seqs()); n < len(want) {
			return fmt.Errorf("client received %d of %d stored events", n, len(want))
		}
		return nil
	})
	if seqs := got.seqs(); !slices.Equal(seqs, want) {
		t.Fatalf("client received %d events, stream holds %d after %d:\n got %v\nwant %v\nmissing %v", len(seqs), len(want), baseline, seqs, want, missing(want, seqs))
	}
}

func missing(want, got []uint64) []uint64 {
	var out []uint64
	for _, s := range want {
		if !slices.Contains(got, s) {
			out = append(out, s)
		}
	}
	return out
}
