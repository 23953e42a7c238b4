package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"syscall"
)

// listeners are the TCP listeners of the roles this process runs, opened
// before anything else starts, so a taken address fails the start at once
// and before anything is created on the bus or in the data dir.
type listeners struct {
	api, ws net.Listener
}

func openListeners(cfg serveConfig) (*listeners, error) {
	var l listeners
	var err error
	if cfg.has("api") {
		if l.api, err = listenTCP(cfg.APIAddr, "the REST API", "--api-addr"); err != nil {
			return nil, err
		}
	}
	if cfg.has("gateway") {
		if l.ws, err = listenTCP(cfg.WSAddr, "websockets", "--ws-addr"); err != nil {
			l.close()
			return nil, err
		}
	}
	return &l, nil
}

// close closes the listeners no server took over (closing one a server
// has already closed does no harm).
func (l *listeners) close() {
	for _, ln := range []net.Listener{l.api, l.ws} {
		if ln != nil {
			_ = ln.Close()
		}
	}
}

// listenTCP listens on addr, and when it cannot, says why in words an
// operator can act on: the flag to change and the usual causes.
func listenTCP(addr, what, flagName string) (net.Listener, error) {
	ln, err := net.Listen("tcp", addr)
	switch {
	case err == nil:
		return ln, nil
	case errors.Is(err, syscall.EADDRINUSE):
		return nil, fmt.Errorf("listen for %s on %s: the address is already in use; is another ccevents (or another program) running? stop it or choose another address with %s", what, addr, flagName)
	case errors.Is(err, syscall.EACCES):
		return nil, fmt.Errorf("listen for %s on %s: permission denied; ports below 1024 need root or CAP_NET_BIND_SERVICE, so choose a port above 1024 with %s", what, addr, flagName)
	case errors.Is(err, syscall.EADDRNOTAVAIL):
		return nil, fmt.Errorf("listen for %s on %s: no network interface of this machine has that address; use one it has, or :PORT for all, with %s", what, addr, flagName)
	}
	return nil, fmt.Errorf("listen for %s on %s (%s): %w", what, addr, flagName, err)
}

// checkDataDir makes sure this process can create files in the data dir
// (and in the embedded NATS store under it, when that exists), so an
// unwritable directory is named at once instead of surfacing as NATS that
// never becomes ready.
func checkDataDir(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("create the data dir %s: %w; create it for this user or choose another with --data-dir", dir, err)
	}
	for _, d := range []string{dir, filepath.Join(dir, "jetstream")} {
		if _, err := os.Stat(d); errors.Is(err, os.ErrNotExist) && d != dir {
			continue
		}
		f, err := os.CreateTemp(d, ".ccevents-write-check-*")
		if err != nil {
			return fmt.Errorf("the data dir %s is not writable by this user (uid %d): %w; give the user ownership (chown -R) or choose another directory with --data-dir", d, os.Getuid(), errors.Unwrap(err))
		}
		name := f.Name()
		_ = f.Close()
		_ = os.Remove(name)
	}
	return nil
}
