// Package cluster is the engine's cluster layer: it runs an engine as one
// process of ccevents and reaches every account's engine from any process.
//
// A Node runs an engine (package engine) in a process. Standalone (the
// embedded NATS server) it runs every account. On a cluster each account
// runs on exactly one node, the holder of the account's lease (package
// lease); a node that dies loses its leases and the others take its
// accounts over (node.go). Accounts are found in a registry in the engine's
// bucket, written by the first command sent for an account (registry.go).
//
// A Router serves every account's commands from any process (router.go):
// it runs a command on the local engine for the accounts that run there
// and forwards the others over NATS request/reply on CommandSubject to
// their owner, waiting a little while an account moves (wire.go). It
// answers with the engine's own *engine.Error values, so callers cannot
// tell where a command ran.
//
// cluster never decides what a command does or changes an account's state
// itself: it only carries engine commands (engine.Commands) to the engine
// that runs the account and brings their answers back. It publishes no
// events and writes no account keys.
package cluster
