package tlsreload

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultInterval is how often Watch looks at the files when given no
// interval.
const DefaultInterval = 10 * time.Second

// Certificate is a certificate and key loaded from a pair of PEM files,
// reloaded when they change. Use GetCertificate in a tls.Config; run Watch
// (or call Reload) to pick up changes. It is safe for concurrent use.
type Certificate struct {
	certFile, keyFile string
	log               *slog.Logger

	cur atomic.Pointer[tls.Certificate]

	mu   sync.Mutex // serialises reloads
	seen [2]fs.FileInfo
}

// Load reads the certificate chain and key from certFile and keyFile (PEM)
// and returns a Certificate serving them. It fails when the pair cannot be
// used, so a server never starts without a certificate. log receives reload
// messages; nil discards them.
func Load(certFile, keyFile string, log *slog.Logger) (*Certificate, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	c := &Certificate{certFile: certFile, keyFile: keyFile, log: log}
	seen, err := c.stat()
	if err != nil {
		return nil, err
	}
	cert, err := c.load()
	if err != nil {
		return nil, err
	}
	c.seen = seen
	c.cur.Store(cert)
	c.logLoaded("TLS certificate loaded", cert)
	return c, nil
}

// GetCertificate returns the certificate in use; it fits
// tls.Config.GetCertificate.
func (c *Certificate) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return c.cur.Load(), nil
}

// Leaf returns the parsed leaf certificate in use.
func (c *Certificate) Leaf() *x509.Certificate { return c.cur.Load().Leaf }

// TLSConfig returns a server tls.Config serving this certificate, with TLS
// 1.2 as the oldest version accepted.
func (c *Certificate) TLSConfig() *tls.Config {
	return &tls.Config{GetCertificate: c.GetCertificate, MinVersion: tls.VersionTLS12}
}

// Reload loads the pair again if either file changed since it was last
// looked at, and reports whether a new certificate is now in use. When the
// changed files do not make a usable pair the old certificate stays, and
// the error says why; the same unchanged bad pair is not retried.
func (c *Certificate) Reload() (bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	seen, err := c.stat()
	if err != nil {
		// A file briefly missing during a replace is not a change yet.
		return false, err
	}
	if sameFile(seen[0], c.seen[0]) && sameFile(seen[1], c.seen[1]) {
		return false, nil
	}
	c.seen = seen
	cert, err := c.load()
	if err != nil {
		return false, err
	}
	c.cur.Store(cert)
	return true, nil
}

// Watch calls Reload every interval (DefaultInterval when 0 or less) until
// ctx ends, logging each new certificate and each failed reload.
func (c *Certificate) Watch(ctx context.Context, interval time.Duration) {
	if interval <= 0 {
		interval = DefaultInterval
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		changed, err := c.Reload()
		switch {
		case err != nil:
			// A missing file is reported on every look until it is back;
			// say so once.
			if msg := err.Error(); msg != lastErr {
				c.log.Error("TLS certificate not reloaded; still serving the previous one", "err", err)
				lastErr = msg
			}
		case changed:
			lastErr = ""
			c.logLoaded("TLS certificate reloaded", c.cur.Load())
		}
	}
}

func (c *Certificate) stat() ([2]fs.FileInfo, error) {
	var out [2]fs.FileInfo
	for i, name := range []string{c.certFile, c.keyFile} {
		fi, err := os.Stat(name)
		if err != nil {
			return out, fmt.Errorf("TLS certificate: %w", err)
		}
		out[i] = fi
	}
	return out, nil
}

func (c *Certificate) load() (*tls.Certificate, error) {
	cert, err := tls.LoadX509KeyPair(c.certFile, c.keyFile)
	if err != nil {
		return nil, fmt.Errorf("load TLS certificate %s and key %s: %w", c.certFile, c.keyFile, err)
	}
	if cert.Leaf == nil {
		return nil, errors.New("load TLS certificate: no leaf certificate")
	}
	return &cert, nil
}

func (c *Certificate) logLoaded(msg string, cert *tls.Certificate) {
	leaf := cert.Leaf
	c.log.Info(msg, "file", c.certFile, "subject", leaf.Subject.String(), "dns_names", leaf.DNSNames,
		"not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	if left := time.Until(leaf.NotAfter); left < 14*24*time.Hour {
		c.log.Warn("TLS certificate expires soon", "file", c.certFile, "not_after", leaf.NotAfter.UTC().Format(time.RFC3339), "left", left.Round(time.Minute).String())
	}
}

// sameFile reports whether two looks at a path found the same, unchanged
// file: same inode (a rename or symlink swap makes a new one), size and
// modification time.
func sameFile(a, b fs.FileInfo) bool {
	return a != nil && b != nil && os.SameFile(a, b) && a.Size() == b.Size() && a.ModTime().Equal(b.ModTime())
}
