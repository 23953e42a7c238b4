// Package limit holds the small, self-contained abuse limits the gateway and
// the REST API apply to clients: a token bucket for request floods on one
// connection (Bucket), a per-address back-off after repeated authentication
// failures (Backoff), and counters of concurrent connections per key such as
// an address or an account (Counter).
//
// Every type here is bounded in memory, takes its clock from the caller or
// its config (so tests control time), and never blocks, sleeps or starts a
// goroutine. limit never decides who a client is or what it may see; it only
// counts what its callers tell it about.
package limit
