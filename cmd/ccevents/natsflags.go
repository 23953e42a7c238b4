package main

import (
	"errors"
	"flag"

	"github.com/nats-io/nats.go"
)

// natsClient holds the flags that say how a process connects to NATS as a
// client. `ccevents serve` and `ccevents bench` share them, so the bench
// reaches a bus exactly as the servers it measures do.
type natsClient struct {
	NATSTLSCA   string
	NATSTLSCert string
	NATSTLSKey  string
}

func (c *natsClient) register(fs *flag.FlagSet) {
	fs.StringVar(&c.NATSTLSCA, "nats-tls-ca", "", "CA file to verify the NATS servers with (turns on TLS to NATS)")
	fs.StringVar(&c.NATSTLSCert, "nats-tls-cert", "", "client certificate file for NATS (with --nats-tls-key)")
	fs.StringVar(&c.NATSTLSKey, "nats-tls-key", "", "client key file for NATS")
}

// natsOptions are the connection options the NATS flags ask for.
func (c *natsClient) natsOptions() []nats.Option {
	var opts []nats.Option
	if c.NATSTLSCA != "" {
		opts = append(opts, nats.RootCAs(c.NATSTLSCA))
	}
	if c.NATSTLSCert != "" {
		opts = append(opts, nats.ClientCert(c.NATSTLSCert, c.NATSTLSKey))
	}
	return opts
}

// validateNATS checks the NATS flags go together.
func (c *natsClient) validateNATS() error {
	if (c.NATSTLSCert == "") != (c.NATSTLSKey == "") {
		return errors.New("--nats-tls-cert and --nats-tls-key go together")
	}
	return nil
}
