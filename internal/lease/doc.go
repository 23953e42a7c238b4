// Package lease gives named keys (account ids) exactly one owner at a time,
// recorded in a JetStream key-value bucket, and splits accounts between
// engine nodes with a Balancer.
//
// # The scheme
//
// A lease is a key whose value names its owner, the owner's instance token
// and its TTL. It is taken with Create (only if absent) and renewed with
// Update at the revision last written (compare-and-set), so two writers can
// never both succeed from the same revision.
//
// Expiry is judged on each node's own monotonic clock, never by comparing
// wall clocks:
//
//   - The holder counts a lease valid until TTL after it sent the write that
//     stored the current revision. The write is stored after it is sent, so
//     the holder's deadline is never later than TTL after the store.
//   - Another node may take a lease over (Update at the revision it saw)
//     only after it has seen that same revision unchanged for 5/4 of the TTL
//     recorded in the value. It saw the revision after it was stored, so it
//     acts at least TTL/4 after the holder's deadline.
//
// Wall-clock skew between nodes and NATS servers therefore does not matter;
// only the rate at which clocks run does, and the TTL/4 margin covers a rate
// difference of 25%, far beyond any real clock. The margin is also the time a
// holder has, after its lease is reported lost, to stop acting on the key.
// A bucket created with bus.KeyValue (history 1, no TTL) is all it needs.
//
// lease never decides what an owner does with a key: it reports when
// ownership starts and ends, and the owner must stop at once when told.
package lease
