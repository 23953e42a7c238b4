// Package socketlist lists the websockets of every gateway in a cluster,
// as Kazoo's crossbar lists blackhole's: the REST API asks on the NATS
// subject ccevents.gateway.sockets, every gateway answers with the sockets
// of the account asked about (and its descendants), and a Gatherer merges
// the answers into one page.
//
// It owns the request and answer on the wire, the gateway's responder and
// the gathering (the wait for answers and its bounds); the gateway decides
// what its sockets are and the REST API who may ask. socketlist never
// decides who may see an account: the gateway asks auth, per socket.
package socketlist
