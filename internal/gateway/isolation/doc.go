// Package isolation holds the end-to-end test that no client can read or
// write another account's events, through the websocket gateway or the
// REST API, with a real bus, auth service, gateway and API on loopback.
//
// It has no code of its own. It lives apart from package gateway so that
// the gateway's unit tests do not build the REST API and the engine.
package isolation
