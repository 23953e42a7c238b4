// Package soak holds the gateway's soak test: it runs the real ccevents
// binary on loopback for minutes under thousands of churning websocket
// connections, malformed and hostile clients, deliberately slow readers and
// gateway restarts, then checks that every well-behaved client received
// every event it subscribed to, exactly once and in order, and that the
// server's goroutines and memory came back to their baseline.
//
// The package has no code outside its tests. It talks to the gateway only
// as clients and operators do (websockets, REST, NATS, /metrics, signals)
// and must never import the gateway or reach into its internals. Run it
// with `make soak`; it is skipped in -short mode and under -race.
package soak
