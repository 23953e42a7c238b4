// Package api is the REST API on :8000: authentication (API keys to
// tokens), accounts, publishing events, the contact-center engine's
// resources, health and metrics. Every response uses the Kazoo envelope
// ({"status":"success","data":…} or {"status":"error","message":…}).
//
// api never decides who may see an account on its own; it asks auth. It
// never writes to the bus without event validation.
package api
