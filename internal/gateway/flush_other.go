//go:build !unix

package gateway

// Without writev (Windows), every connection is written by a writer
// goroutine of its own; flush.go has the flushers used elsewhere.

type flushers struct{}

// schedule starts the connection's writer. The caller has set c.writing.
func (s *Server) schedule(c *conn) { go c.writeLoop(nil, nil) }

func (s *Server) startFlushers() {}
