package engine

// WithReplyChunk makes a node split replies larger than n bytes into parts,
// so tests can exercise multi-part replies with small accounts.
func WithReplyChunk(cfg NodeConfig, n int) NodeConfig {
	cfg.replyChunk = n
	return cfg
}
