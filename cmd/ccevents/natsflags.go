package main

import (
	"errors"
	"flag"
	"fmt"
	"net/url"
	"os"

	"github.com/nats-io/nats.go"

	"github.com/ccevents/ccevents/internal/bus"
)

// natsClientFlags say who a ccevents process is to a NATS server: one
// credential (a .creds file, an nkey seed file, or a user and password;
// or a TLS client certificate the server maps to a user) and the TLS
// settings. serve, token, doctor and bench share them.
type natsClientFlags struct {
	Creds    string
	Nkey     string
	User     string
	Password string
	TLSCA    string
	TLSCert  string
	TLSKey   string
}

func (f *natsClientFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&f.Creds, "nats-creds", "", "NATS credentials file (JWT and nkey seed, from nsc) for the connection to NATS")
	fs.StringVar(&f.Nkey, "nats-nkey", "", "NATS nkey seed file (SU…) for the connection to NATS")
	fs.StringVar(&f.User, "nats-user", "", "NATS user name (with --nats-password; prefer CCEVENTS_NATS_PASSWORD over the flag)")
	fs.StringVar(&f.Password, "nats-password", "", "NATS password for --nats-user")
	fs.StringVar(&f.TLSCA, "nats-tls-ca", "", "CA file to verify the NATS servers with (turns on TLS to NATS)")
	fs.StringVar(&f.TLSCert, "nats-tls-cert", "", "client certificate file for NATS (with --nats-tls-key); a server with verify_and_map takes it as the credential")
	fs.StringVar(&f.TLSKey, "nats-tls-key", "", "client key file for NATS")
}

// credentials is how many of the exclusive credentials are given.
func (f *natsClientFlags) credentials() int {
	n := 0
	for _, set := range []bool{f.Creds != "", f.Nkey != "", f.User != ""} {
		if set {
			n++
		}
	}
	return n
}

// hasCredential reports whether a connection to urls would present
// anything a server can authenticate: a credential flag, a client
// certificate, or a user or token in a URL.
func (f *natsClientFlags) hasCredential(urls []string) bool {
	if f.credentials() > 0 || f.TLSCert != "" {
		return true
	}
	for _, u := range urls {
		if p, err := url.Parse(u); err == nil && p.User != nil {
			return true
		}
	}
	return false
}

func (f *natsClientFlags) validate() error {
	if f.credentials() > 1 {
		return errors.New("give one NATS credential: --nats-creds, --nats-nkey or --nats-user, not several")
	}
	if (f.User == "") != (f.Password == "") {
		return errors.New("--nats-user and --nats-password go together")
	}
	if (f.TLSCert == "") != (f.TLSKey == "") {
		return errors.New("--nats-tls-cert and --nats-tls-key go together")
	}
	for _, file := range []struct{ flag, path string }{
		{"--nats-creds", f.Creds}, {"--nats-nkey", f.Nkey},
		{"--nats-tls-ca", f.TLSCA}, {"--nats-tls-cert", f.TLSCert}, {"--nats-tls-key", f.TLSKey},
	} {
		if file.path == "" {
			continue
		}
		if _, err := os.Stat(file.path); err != nil {
			return fmt.Errorf("%s: %w", file.flag, err)
		}
	}
	return nil
}

// given reports whether any of the flags is set.
func (f *natsClientFlags) given() bool { return *f != natsClientFlags{} }

// options are the connection options the flags ask for.
func (f *natsClientFlags) options() ([]nats.Option, error) {
	var opts []nats.Option
	switch {
	case f.Creds != "":
		opts = append(opts, nats.UserCredentials(f.Creds))
	case f.Nkey != "":
		o, err := nats.NkeyOptionFromSeed(f.Nkey)
		if err != nil {
			return nil, fmt.Errorf("--nats-nkey %s: %w", f.Nkey, err)
		}
		opts = append(opts, o)
	case f.User != "":
		opts = append(opts, nats.UserInfo(f.User, f.Password))
	}
	if f.TLSCA != "" {
		opts = append(opts, nats.RootCAs(f.TLSCA))
	}
	if f.TLSCert != "" {
		opts = append(opts, nats.ClientCert(f.TLSCert, f.TLSKey))
	}
	return opts, nil
}

// toolNATSFlags say how a tool (token, doctor) reaches the NATS of a
// running ccevents: its URLs, its data dir (where the embedded server
// keeps ccevents' own credentials) and the client flags.
type toolNATSFlags struct {
	URLs    stringList
	DataDir string
	natsClientFlags
}

// register adds the flags; urlsUse and dataDirUse say what the tool
// takes the URLs and the data dir for.
func (f *toolNATSFlags) register(fs *flag.FlagSet, urlsUse, dataDirUse string) {
	f.URLs = stringList{"nats://127.0.0.1:4222"}
	fs.Var(&f.URLs, "nats", urlsUse)
	fs.StringVar(&f.DataDir, "data-dir", "ccevents-data", dataDirUse)
	f.natsClientFlags.register(fs)
}

// toolOptions are the options of a tool (token, doctor, bench) joining the running
// ccevents whose data dir is dataDir: the flags' credential, or else the
// ccevents identity that the embedded server keeps in the data dir. Without
// either it refuses, naming what to give.
func (f *natsClientFlags) toolOptions(urls []string, dataDir string) ([]nats.Option, error) {
	if err := f.validate(); err != nil {
		return nil, err
	}
	if !f.hasCredential(urls) {
		seed := bus.SeedFile(dataDir, bus.IdentityCCEvents)
		if _, err := os.Stat(seed); err != nil {
			return nil, fmt.Errorf("no NATS credential: give --nats-nkey, --nats-creds or --nats-user, or --data-dir of a ccevents serve started with --nats-listen (its credentials are DATA_DIR/nats/ccevents.nk; %v)", unwrapPathError(err))
		}
		f.Nkey = seed
	}
	return f.options()
}

// unwrapPathError keeps what went wrong with a file, not the path again.
func unwrapPathError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("%s: %w", pe.Path, pe.Err)
	}
	return err
}
