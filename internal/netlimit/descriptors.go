package netlimit

// Shares is how the file descriptors of a process are divided: each
// listener holds at most its share of connections, and the reserve is left
// for everything else (the NATS store's files and connections, logs,
// refusals being answered), so no listener can exhaust another's.
type Shares struct {
	// Limit is the process's open file limit (RLIMIT_NOFILE) they divide;
	// 0 when it is unknown, and then every share is 0 (no bound).
	Limit int
	// WS is the websocket gateway's share, API the REST API's, NATS the
	// embedded NATS server's clients (when it listens).
	WS, API, NATS int
	// Reserve is what no listener may take.
	Reserve int
}

// Split divides limit descriptors: a reserve of a sixteenth (at least 128),
// an eighth for the REST API (32 to 8,192), a sixty-fourth for the
// embedded NATS listener (16 to 1,024) and the rest for websockets, which
// is where connections are meant to pile up.
func Split(limit int) Shares {
	if limit <= 0 {
		return Shares{}
	}
	s := Shares{
		Limit:   limit,
		Reserve: max(128, limit/16),
		API:     min(max(limit/8, 32), 8192),
		NATS:    min(max(limit/64, 16), 1024),
	}
	s.WS = max(limit-s.Reserve-s.API-s.NATS, 16)
	return s
}
