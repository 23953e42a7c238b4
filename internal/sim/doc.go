// Package sim simulates a contact center's traffic against the engine: a
// demo account (queues and recipients), Poisson call arrivals, callers
// who lose patience, agents who answer, reject, take breaks, pause queues,
// make external calls and finalize their calls, and a supervisor who
// listens in. It drives the engine through an engine.Service, so the same
// simulation runs in-process (ccevents serve --demo) or against a remote
// API (ccevents simulate, with RESTDriver).
//
// sim only makes requests a telephony adapter or agent desktop could
// make; it never reaches into the engine's state or publishes events.
package sim
