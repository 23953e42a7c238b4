package web

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"testing"
)

// The served /client/ccevents.js is the compiled TypeScript package
// (clients/typescript), committed so that `go build` needs no Node. Its
// banner names the hash of the sources it was built from; this test
// recomputes it, so a change to the package without `npm run build` fails
// here, on any machine. (The package's own tests compare the whole file.)
func TestServedClientIsBuiltFromTheCurrentTypeScriptSources(t *testing.T) {
	served, err := os.ReadFile("static/client/ccevents.js")
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^// sources sha256 ([0-9a-f]{64})$`).FindSubmatch(served)
	if m == nil {
		t.Fatal("static/client/ccevents.js has no `// sources sha256` banner: it must be built by `npm run build` in clients/typescript")
	}
	const pkg = "../clients/typescript"
	srcs, err := filepath.Glob(filepath.Join(pkg, "src", "*.ts"))
	if err != nil || len(srcs) == 0 {
		t.Fatalf("no TypeScript sources under %s/src: %v", pkg, err)
	}
	files := []string{"tsconfig.json"}
	for _, s := range srcs {
		files = append(files, "src/"+filepath.Base(s))
	}
	slices.Sort(files[1:])
	h := sha256.New()
	for _, f := range files {
		body, err := os.ReadFile(filepath.Join(pkg, f))
		if err != nil {
			t.Fatal(err)
		}
		h.Write([]byte(f + "\x00"))
		h.Write(body)
		h.Write([]byte("\x00"))
	}
	if got := hex.EncodeToString(h.Sum(nil)); got != string(m[1]) {
		t.Fatalf("static/client/ccevents.js was built from other sources (%s…) than clients/typescript holds now (%s…): run `npm ci && npm run build` in clients/typescript and commit the result", m[1][:12], got[:12])
	}
}
