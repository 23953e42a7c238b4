//go:build !linux

package loadtest

import (
	"errors"
	"net"
)

// Elsewhere than Linux every connection keeps a reader goroutine of its own.

type pollers []struct{}

func newPollers() (pollers, error)     { return nil, nil }
func (pollers) add(int, *conn) error   { return errors.New("no pollers") }
func (pollers) close()                 {}
func detach(net.Conn) (*fdConn, error) { return nil, errors.New("no pollers") }

type fdConn struct{}

func (*fdConn) Write([]byte) (int, error) { return 0, errors.New("no pollers") }
func (*fdConn) shutdown()                 {}
func (*fdConn) close()                    {}
