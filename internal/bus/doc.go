// Package bus connects ccevents to NATS: it starts the embedded NATS server
// with JetStream when no external cluster is given, keeps the QUBICLE stream
// that holds recent event history, publishes events under their routing key
// and lets callers follow that history in stream order (an ordered
// consumer) or read it back (batched direct gets, no consumer).
//
// bus knows subjects and bytes, never what an event means: validation lives
// in package event and routing to clients in package gateway.
package bus
