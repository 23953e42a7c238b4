// Package socketlist lists the websockets of every gateway in a cluster,
// as Kazoo's crossbar lists blackhole's: the REST API asks on the NATS
// subject ccevents.gateway.sockets, every gateway answers with the sockets
// of the account asked about (and its descendants), and a Gatherer merges
// the answers into one page.
//
// Which gateways exist is kept in a registry, the key-value bucket
// ccevents_gateways whose keys expire: each gateway (a Responder) writes
// its entry while it answers and deletes it when it stops; the server
// forgets one that died a TTL after its last write. A listing waits for
// exactly the gateways in the registry, for a bounded time, and names
// those that did not answer rather than leaving their sockets out.
//
// It owns the request and answer on the wire, the registry, the gateway's
// responder and the gathering (the wait for answers and its bounds); the
// gateway decides what its sockets are and the REST API who may ask.
// socketlist never decides who may see an account: the gateway asks auth,
// per socket. It never returns a page that silently lacks a registered
// gateway.
package socketlist
