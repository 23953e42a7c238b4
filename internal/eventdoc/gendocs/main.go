// Command gendocs writes docs/asyncapi.yaml and docs/events.md from the
// event catalogue with package eventdoc. Run it through
// `go generate ./internal/event`, beside the catalogue it documents.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"

	"github.com/ccevents/ccevents/internal/eventdoc"
)

func main() {
	asyncapi := flag.String("asyncapi", "", "write the AsyncAPI document to this file")
	events := flag.String("events", "", "write the Markdown catalogue to this file")
	examples := flag.String("examples", "", "JSON file of example payloads keyed by event, used where present")
	flag.Parse()
	if err := run(*asyncapi, *events, *examples); err != nil {
		fmt.Fprintln(os.Stderr, "gendocs:", err)
		os.Exit(1)
	}
}

func run(asyncapiPath, eventsPath, examplesPath string) error {
	ex, err := eventdoc.ReadExamples(examplesPath)
	if err != nil {
		return err
	}
	for _, out := range []struct {
		path     string
		generate func(map[string]json.RawMessage) ([]byte, error)
	}{
		{asyncapiPath, eventdoc.AsyncAPIWithExamples},
		{eventsPath, eventdoc.EventsMarkdown},
	} {
		if out.path == "" {
			continue
		}
		doc, err := out.generate(ex)
		if err != nil {
			return err
		}
		if err := os.WriteFile(out.path, doc, 0o644); err != nil {
			return err
		}
	}
	return nil
}
