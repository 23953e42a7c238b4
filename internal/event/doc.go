// Package event is the catalogue of ccevents: the 28 queue, recipient and
// session events and the 2 statistics events, their Go payload types, the
// correlation envelope every payload carries, their routing keys, encoding,
// and the validation every publishing path applies. Package eventdoc
// generates the AsyncAPI document and docs/events.md from it, so code,
// schema and documentation cannot drift.
//
// event never talks to the bus or to clients and holds no state: it only
// describes, encodes and checks events. Shared event types live here so that
// engine, bus and gateway agree without importing each other.
package event

// The documents are regenerated here, beside the catalogue they describe.
//go:generate go run ../eventdoc/gendocs -asyncapi ../../docs/asyncapi.yaml -events ../../docs/events.md -examples ../eventdoc/testdata/examples.json
