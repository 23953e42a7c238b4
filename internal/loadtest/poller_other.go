//go:build !linux

package loadtest

import "errors"

// Elsewhere than Linux every connection keeps a reader goroutine of its
// own; the tool's pollers use epoll.

type pollers []struct{}

func newPollers() (pollers, error) { return nil, nil }
func (pollers) close()             {}

// startReading starts the connection's reader goroutine.
func (g *group) startReading(_ int, c *conn) error {
	g.readers.Add(1)
	go c.readLoop()
	return nil
}

// readLoop runs until the connection ends, counting every bench event.
func (c *conn) readLoop() {
	defer c.g.readers.Done()
	for {
		p, err := c.readMessage()
		if err == nil {
			err = c.message(p)
		}
		if err != nil {
			c.ended(err)
			c.nc.Close()
			return
		}
	}
}

// fdConn exists only with pollers; connections here never have one.
type fdConn struct{}

func (*fdConn) Write([]byte) (int, error) { return 0, errors.New("no pollers on this system") }
func (*fdConn) shutdown()                 {}
