// Package natstest starts real nats-server clusters inside a test process:
// N nodes on 127.0.0.1 with routes between them and clustered JetStream, each
// storing its files under the test's temporary directory. Tests kill and
// restart nodes to prove that what ccevents promises survives node failures.
// Bus opens ccevents' own bus.Bus for a test, on an embedded server or on
// a Cluster. Server runs one server with the options a test chooses
// (JetStream or not, accounts, TLS).
//
// natstest is for tests only: it never picks fixed ports, never writes
// outside t.TempDir(), and never outlives the test that started it.
package natstest
