// Package protocol is the websocket protocol of the ccevents gateway, defined
// once: the requests a client sends (subscribe, unsubscribe, refresh, ping),
// the reply each one gets, the event and notice frames the gateway pushes,
// the close codes and reasons it ends a connection with, and the kinds of
// error a reply reports. The gateway decodes and answers with these types,
// the Go SDK (package client) sends and reads them, the load tool and the
// tests speak them, and the AsyncAPI document (docs/asyncapi.yaml) takes
// their JSON Schemas from MessageSchemas and EventSchema. docs/protocol.md
// explains the protocol for people.
//
// The messages follow 2600Hz Kazoo's "blackhole" conventions, so field
// names and reply shapes are Kazoo's and must not change: existing Kazoo
// clients read them.
//
// protocol only describes messages: it opens no connection, holds no
// state and never decides who may see what (the gateway asks auth).
package protocol
