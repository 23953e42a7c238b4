//go:build !unix

package gateway

// Without writev (Windows), every connection is written by a writer
// goroutine of its own; flush.go has the flushers used elsewhere.

type flushers struct{}

// schedule starts the connection's writer. The caller owns the
// connection's outbox and hands it over.
func (s *Server) schedule(c *conn) { c.startWriter(nil, nil) }

func (s *Server) startFlushers() {}
