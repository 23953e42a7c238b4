// Package stats computes one account's statistics from its events: per
// queue and for the whole account, the callers waiting and the longest
// wait, logged-in recipients by state, and totals over the last 15
// minutes, the last hour and today (offered, answered, abandoned, timed
// out, handle and answer times, occupied and staffed time) with the
// service level, abandon rate, average speed of answer, average handle
// time and occupancy that follow from them, as docs/engine.md defines
// them.
//
// A Model is a fold: it changes only when it observes an event, and reads
// (Queue, Account, Trend) never change it, so the figures at a time are a
// function of the events before it and that time alone. Windows are made
// of whole UTC minutes: the last 15 minutes are the current minute and the
// 14 before it.
//
// stats never does I/O and never reads a clock: every time is an event's
// timestamp or one the caller passes. The engine feeds it each event it
// publishes and decides when to publish the figures; stats never decides
// what happens in the contact center.
package stats
