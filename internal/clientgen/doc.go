// Package clientgen generates the event and snapshot types of the
// TypeScript and Python clients (clients/typescript, clients/python), and
// the snapshot types of the Go SDK (client/snapshot_gen.go), from the one
// definition in Go: the event catalogue of package event (its specs, field
// documentation and Go type names) and the snapshot types of package
// engine. The Go SDK aliases the catalogue's types themselves
// (client/payloads.go), so only the engine's are written for it. A test
// fails when a checked-in generated file differs from what the catalogue
// generates, so the clients cannot drift from the gateway.
//
// clientgen only describes types; it never talks to a server and writes
// no file itself (genclients does, under go generate).
package clientgen

//go:generate go run ./genclients -root ../..
