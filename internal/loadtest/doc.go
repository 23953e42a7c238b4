// Package loadtest is the engine of `ccevents bench`: it opens many
// websocket connections to the ccevents gateway (or to nats-server's own
// websocket listener, the peer), subscribes them, publishes events on NATS at
// a fixed or ramping rate and measures what operators care about: deliveries
// per second, end-to-end latency, connection set-up rate, server memory per
// idle connection, CPU per million deliveries, drops and slow-consumer closes.
//
// It only ever talks to 127.0.0.x addresses and every run is bounded in time.
// It measures the servers from outside, over their public protocols and
// /proc; it must never import the gateway or reach into its internals.
package loadtest
