// Package netlimit bounds what one listening socket may cost the process:
// how many connections it holds at once (its share of the file
// descriptors, so a flood on one port cannot starve another), how many of
// them may come from one client address, and what happens when the process
// runs out of descriptors anyway: a warning and a metric instead of a
// silent retry. Shares divides the process's descriptor limit between the
// listeners.
//
// netlimit counts connections; it never reads or interprets what flows
// over them, and it never decides who a client is beyond its address.
package netlimit
