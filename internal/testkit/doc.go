// Package testkit holds what many of ccevents' tests need and once wrote
// each for itself: waiting until a condition holds (Eventually), a test
// certificate authority (CA), a TCP proxy a test can cut (Proxy), a
// settable clock (Clock) and a server on loopback until the test ends
// (Serve, ServeConns).
//
// A test bus — an embedded NATS server with JetStream behind a bus.Bus —
// is natstest.Bus, beside natstest's clusters, so that this package needs
// only the standard library and any package's tests may import it.
//
// testkit is for tests only: it never picks a fixed port, never writes
// outside the files a test names, never sleeps a fixed time in place of
// waiting for a condition, and everything it starts ends with the test.
package testkit
