package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ccevents/ccevents/internal/bus"
)

// TestTokenSignsInWithTheServersCredentials mints a token the way the
// README says, against a server whose NATS listens: with the data dir's
// ccevents identity it works; without a credential, or as the producer, it
// is refused with a sentence.
func TestTokenSignsInWithTheServersCredentials(t *testing.T) {
	dataDir := t.TempDir()
	natsAddr, api := serveWithNATSListener(t, dataDir)
	var root struct {
		AccountID string `json:"account_id"`
	}
	raw, _ := os.ReadFile(filepath.Join(dataDir, "root.json"))
	if err := json.Unmarshal(raw, &root); err != nil {
		t.Fatal(err)
	}
	token := func(extra ...string) (string, error) {
		var out bytes.Buffer
		cmd := newTokenCommand(&out, io.Discard)
		cctx, ccancel := context.WithTimeout(t.Context(), 30*time.Second)
		defer ccancel()
		err := cmd.ParseAndRun(cctx, append([]string{"--account", root.AccountID, "--nats", "nats://" + natsAddr}, extra...))
		return strings.TrimSpace(out.String()), err
	}

	tok, err := token("--data-dir", dataDir)
	if err != nil {
		t.Fatalf("token with the data dir's credentials: %v", err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://"+api+"/v2/accounts/"+root.AccountID, nil)
	req.Header.Set("X-Auth-Token", tok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the minted token gets %d from the REST API", resp.StatusCode)
	}

	for _, tc := range []struct {
		name  string
		extra []string
		want  string
	}{
		{"no credential", []string{"--data-dir", t.TempDir()}, "no NATS credential"},
		{"the producer's identity", []string{"--data-dir", dataDir, "--nats-nkey", bus.SeedFile(dataDir, bus.IdentityProducer)}, "permissions violation"},
	} {
		if _, err := token(tc.extra...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}
