package main

import (
	"bytes"
	"encoding/json"
	"os/exec"
	"runtime"
	"testing"

	"github.com/nats-io/nats-server/v2/server"
)

func TestVersionPrintsTheBuild(t *testing.T) {
	out, err := exec.Command(ccevents(t), "version").Output()
	if err != nil {
		t.Fatal(err)
	}
	want := "ccevents v0.0.0-test (commit 0123abc)\ngo       " + runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH +
		"\nnats     nats-server v" + server.VERSION + " (embedded)\n"
	if string(out) != want {
		t.Errorf("ccevents version printed\n%s\nwant\n%s", out, want)
	}
}

func TestVersionAsJSON(t *testing.T) {
	var out, errs bytes.Buffer
	if code := run([]string{"version", "--json"}, &out, &errs); code != 0 {
		t.Fatalf("exit %d: %s", code, errs.String())
	}
	var v map[string]string
	if err := json.Unmarshal(out.Bytes(), &v); err != nil {
		t.Fatalf("not JSON: %s", out.String())
	}
	if v["go_version"] != runtime.Version() || v["nats_version"] != server.VERSION || v["version"] == "" {
		t.Errorf("ccevents version --json = %v", v)
	}
}
