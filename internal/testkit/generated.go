package testkit

import (
	"bytes"
	"os"
	"strings"
	"testing"
)

// MatchesGenerated fails t unless the checked-in file at path holds exactly
// want, what its generator writes today; the failure names the first line
// that differs and how to regenerate (e.g. "run `go generate ./internal/x`
// and commit the result").
func MatchesGenerated(t testing.TB, path string, want []byte, regenerate string) {
	t.Helper()
	got, err := os.ReadFile(path)
	if err != nil {
		t.Errorf("%s: %v; %s", path, err, regenerate)
		return
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs from what the catalogue generates (first difference at line %d); %s", path, firstDiffLine(got, want), regenerate)
	}
}

func firstDiffLine(a, b []byte) int {
	la, lb := strings.Split(string(a), "\n"), strings.Split(string(b), "\n")
	for i := range min(len(la), len(lb)) {
		if la[i] != lb[i] {
			return i + 1
		}
	}
	return min(len(la), len(lb)) + 1
}
