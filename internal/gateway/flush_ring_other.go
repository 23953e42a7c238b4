//go:build unix && !linux

package gateway

// io_uring is Linux's: elsewhere each connection gets its own writev.

type ringWriter struct{}

func (s *Server) newRingWriter() (*ringWriter, error) { return nil, nil }

func (w *ringWriter) close() {}

func (f *flusher) flushRound(c *conn) { f.flush(c) }
