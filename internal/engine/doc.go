// Package engine is the contact-center engine: per account it owns queues,
// recipients and call sessions, routes waiting callers to recipients
// (automatic call distribution), and publishes every event of the catalogue
// at the moment the state it describes changes, in causal order per account.
// Queue and recipient configuration, and who is logged in, is kept in a
// JetStream key-value bucket so an engine (or its successor) can restore an
// account.
//
// engine never talks to clients and never publishes anything it did not
// build with event.Marshal: the bus carries what the engine decided, and the
// gateway decides who sees it.
package engine
