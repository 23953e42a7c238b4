// Package binding owns the binding language clients subscribe with
// (qubicle.<family>.<account>[.<entity>[.<name>]] with "*" and "#"): it parses
// and validates bindings, matches them against event subjects, turns them into
// NATS subject filters, and keeps the Index the gateway uses to find every
// subscriber of an event.
//
// A binding always names one literal account, so a binding can never reach
// another account's events; whether a token may see that account is decided
// by package auth, never here. It reads the event catalogue only to refuse
// a binding naming an event its family does not have (Binding.CheckName), and
// performs no I/O.
package binding
