// Package gateway is the websocket server clients connect to (port 5555): it
// speaks the subscribe/unsubscribe/refresh/ping protocol (package protocol
// defines its messages, close codes and error kinds), keeps each
// connection's bindings, follows the whole event stream (one consumer,
// whatever the number of accounts) while any account has a subscriber,
// fans each event out to the connections whose bindings match it, repairs
// gaps in that stream from history, replays history for clients that
// resume with "since", ends
// subscriptions when their token expires, and enforces the abuse limits
// (docs/security.md): sizes, rates, connections per address and account,
// auth-failure back-off, handshake timeout, Origin allow-list, wss://.
//
// gateway never decides who may see an account (it asks an Authorizer), never
// validates or rewrites what producers publish beyond adding the stream
// sequence, and never blocks the fan-out on one connection: a client that
// cannot keep up is closed, not waited for.
package gateway
