// Command genclients writes the TypeScript and Python clients' generated
// type files, and the Go SDK's snapshot types, from the event catalogue
// and the engine's snapshot types. Run it through
// `go generate ./internal/clientgen`.
package main

import (
	"flag"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"slices"

	"github.com/ccevents/ccevents/internal/clientgen"
)

func main() {
	root := flag.String("root", ".", "the module root")
	flag.Parse()
	files, err := clientgen.Generate(*root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "genclients:", err)
		os.Exit(1)
	}
	for _, path := range slices.Sorted(maps.Keys(files)) {
		if err := os.WriteFile(filepath.Join(*root, path), files[path], 0o644); err != nil {
			fmt.Fprintln(os.Stderr, "genclients:", err)
			os.Exit(1)
		}
	}
}
