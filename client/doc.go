// Package client is the Go SDK of ccevents: it connects to the websocket
// gateway, subscribes to bindings with a handler each, and keeps them alive
// across network drops, gateway restarts, slow-consumer closes and token
// expiry, resuming from each binding's last stream sequence so that a
// handler sees every event once and in stream order.
//
// A Client owns one websocket connection at a time and every subscription
// on it. It never decides what an event means: payloads decode into the
// catalogue's types (QueueJoin, RecipientReady, …) and the rest is yours.
// What it sends and reads on the wire are package protocol's messages.
//
// Authenticate with a fixed auth token (Options.Token) or with an API key
// (Options.APIKey and Options.APIURL), in which case the client obtains the
// token from PUT /v2/api_auth and renews it on the live connection before it
// expires.
package client
