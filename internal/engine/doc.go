// Package engine is the contact-center core: per account it owns queues,
// recipients and call sessions, routes waiting callers to recipients
// (automatic call distribution), and publishes every event of the catalogue
// at the moment the state it describes changes, in causal order per account.
// Queue and recipient configuration, each queue's totals for the current
// UTC day, who is logged in and which calls are in progress is kept in a
// JetStream key-value bucket so an engine (or its successor) can restore
// an account.
//
// Where to find what:
//
//   - engine.go: an Engine and the accounts it runs (load, own, drop,
//     unload, and running a command under an account's lock).
//   - account.go: one account's lock, its publisher and its timers.
//   - queues.go, recipients.go, calls.go, telephony.go, snapshot.go,
//     stats.go: what each command does; flow.go and dispatch.go: the
//     events a call's life publishes and who is offered which caller.
//   - commands.go: every command, declared once (name, request and
//     reply, the Engine method it runs, its REST route); command.go:
//     Command, Service and what is derived from a declaration.
//   - store.go: the bucket, fenced writes and restoring an account.
//
// # Adding a command
//
// A command is declared in one place:
//
//  1. Write what it does as an Engine method (queues.go, recipients.go,
//     calls.go, …) under e.do, with its tests.
//  2. Declare it in commands.go with declare, or declareVoid when its
//     reply is built from the request (an id, a state): a name engine
//     nodes send each other (never renamed), a Route if the REST API
//     serves it, and the method. A request with more than the account is
//     a struct; the id a REST path names is a string field tagged
//     json:"-" path:"NAME" matching {NAME} in the route.
//  3. If it has a route, document it in docs/openapi.yaml (the API tests
//     fail on a served route that is not documented).
//
// Then cluster.Router forwards it to the node that runs the account,
// the command metrics count it by its name, package api serves its route
// (commands sharing a route are told apart by the body's "action"), and
// sim.RESTDriver and every Service caller run it with Name.Call. The wire
// tags (wire:"other", wire:"value") exist only so that the commands of
// the release before declarations still reach engine nodes of that
// release; a new command does not use them.
//
// # Ownership
//
// An engine runs the accounts it is given. Standalone it loads every
// stored account and any other on first use; with Config.Manual it runs
// only those it is told to own (Own, LoadAccount), which is how the engine
// nodes of a cluster split the accounts (package cluster).
//
// Ownership ends in one of two ways. Given away (rebalancing, shutdown), an
// account is unloaded cleanly: waiting callers leave, calls end with
// SYSTEM_SHUTDOWN, queues stop, and a record says so. Lost (the lease was
// not renewed in time), it stops at once: nothing it has not published yet
// is published, nothing more is written (Own, Drop). Its successor then ends
// what was left running the way a clean unload would have: each recorded
// call in progress ends (a waiting caller with queue.leave queue_deleted,
// then session.delete SYSTEM_SHUTDOWN by system) and each queue stops
// (queue.delete shutdown); then, as on every load, queues start
// (queue.create) and every logged-in recipient gets a recipient.sync saying
// it is ready or away with no call. Offers, answered calls, wrap-up and
// finalize windows the dead owner had open get no closing events of their
// own; the sync supersedes them. A crash between an event and the write
// that records it can repeat a leave or a session.delete, never lose one.
//
// Every write to an account's keys is fenced: it only succeeds if the
// account's last write in the bucket is the writer's own previous one
// (JetStream's expected last sequence over the account's subjects). Loading
// an account writes its fence record first, so once a successor has loaded
// an account the previous owner's writes are refused, and the previous owner
// stops running the account when it sees that. Events have no such fence:
// an owner stops publishing when its lease ends, which is a quarter of the
// lease TTL before any other node may take the account over.
//
// engine never talks to clients and never publishes anything it did not
// build with event.Marshal: the bus carries what the engine decided, and the
// gateway decides who sees it. It knows nothing of other engine nodes,
// leases or forwarding: that is package cluster, which imports engine and
// never the other way round.
package engine
