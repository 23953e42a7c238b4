// Package tlsreload serves a TLS certificate and key from files and picks up
// a new pair when the files change, so a certificate can be renewed (by
// certbot, cert-manager or a person) without restarting the gateway.
//
// A pair that fails to load never replaces the one in use: the error is
// logged and the old certificate keeps being served. tlsreload polls the
// files' metadata rather than watching them, which needs no dependency and
// works on every file system, including the symlink swaps Kubernetes uses for
// mounted secrets. It never writes files and never decides what to trust.
package tlsreload
