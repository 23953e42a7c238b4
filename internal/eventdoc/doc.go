// Package eventdoc writes the event catalogue of package event as documents
// for people and tools: the AsyncAPI 3 document of the websocket gateway
// (docs/asyncapi.yaml, with the JSON Schema of every payload) and the
// Markdown catalogue (docs/events.md). Command gendocs writes both files
// under `go generate ./internal/event`; a test fails when a checked-in file
// differs from what the catalogue generates. internal/clientgen does the
// same for the clients' types (TypeScript, Python and the Go SDK's
// snapshot).
//
// eventdoc only describes; nothing at run time imports it, and it never
// decides what an event holds: that is the catalogue's.
package eventdoc
