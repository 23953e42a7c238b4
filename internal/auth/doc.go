// Package auth owns accounts, their API keys and the auth tokens issued for
// them, and answers the one question other packages ask: may a token of
// account A see account B (B is A or one of A's descendants)?
//
// Everything lives in one NATS JetStream key-value bucket so that every node
// sharing the bus shares the accounts and signing keys; each Service keeps an
// in-memory copy fresh through a watch, so Verify and MayAccess answer
// without I/O. Keys in the bucket:
//
//	root                  id of the root account (the account without parent)
//	accounts.<id>         account record (JSON): name, parent, ancestors, creation
//	                      time and the SHA-256 of its current API key
//	apikeys.<sha256 hex>  API key lookup (JSON): the account the key belongs to
//	signing.<kid>         Ed25519 signing key (JSON): the public key, and the
//	                      private seed sealed with AES-256-GCM under the seal key
//
// The seal key never enters the bucket: nodes that issue tokens are given it
// (a file), so a client that can read the bucket learns public keys only and
// cannot mint tokens. Gateways verify with public keys and need no seal key
// (Options.VerifyOnly). Writing to the bucket stays reserved to ccevents: a
// verify-only node trusts whatever public key the bucket holds.
// API keys themselves are never stored, only their hashes; an API key logs in
// only while its account record still names its hash, so revocation holds
// even if removing the lookup entry fails. Verify refuses tokens whose
// lifetime exceeds Options.MaxTokenTTL or whose issue time is ahead of the
// clock by more than a minute, even when their signature checks out.
//
// auth never sees events or connections and never decides what a binding
// means; it only answers who may see which account.
package auth
