package bus

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"
)

// The identities of the embedded NATS server once it listens beyond this
// process (Config.Listen or Config.WebsocketListen). Each is an nkey whose
// seed the server keeps in DATA_DIR/nats/<identity>.nk (mode 0600): whoever
// can read the file is that identity.
const (
	// IdentityCCEvents is ccevents itself and its tools (ccevents token,
	// bench, the nats CLI of an operator): every right.
	IdentityCCEvents = "ccevents"
	// IdentityProducer is for systems that publish events: it may only
	// send requests to IngestSubject (which validates them) and receive
	// the replies in its _INBOX.
	IdentityProducer = "producer"
)

// IngestSubject is where producers on NATS send events for validation; an
// API node answers with the same envelope the REST API returns.
const IngestSubject = "ccevents.ingest"

// InboxPrefix starts the reply subjects of ccevents' own connections. It is
// not _INBOX, so a producer allowed _INBOX.> for its own replies never
// receives ccevents' (JetStream answers carry the auth bucket's records).
const InboxPrefix = "_INBOX_ccevents"

// seedDir is where the embedded server of dataDir keeps identities' seeds.
func seedDir(dataDir string) string { return filepath.Join(dataDir, "nats") }

// SeedFile is the nkey seed file of identity for the embedded server whose
// data dir is dataDir; tools that join a running ccevents read it.
func SeedFile(dataDir, identity string) string {
	return filepath.Join(seedDir(dataDir), identity+".nk")
}

// producerPermissions is all the producer identity may do.
func producerPermissions() *server.Permissions {
	return &server.Permissions{
		Publish:   &server.SubjectPermission{Allow: []string{IngestSubject}},
		Subscribe: &server.SubjectPermission{Allow: []string{"_INBOX.>"}},
	}
}

// requireAuth makes the embedded server accept only the identities above,
// creating their seeds on first use, and returns the option that connects
// this process as ccevents.
func requireAuth(opts *server.Options, dataDir string, log *slog.Logger) (nats.Option, error) {
	dir := seedDir(dataDir)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create the NATS credentials directory: %w", err)
	}
	if err := os.Chmod(dir, 0o700); err != nil {
		return nil, fmt.Errorf("restrict %s to its owner: %w", dir, err)
	}
	perms := map[string]*server.Permissions{IdentityCCEvents: nil, IdentityProducer: producerPermissions()}
	for _, id := range []string{IdentityCCEvents, IdentityProducer} {
		pub, err := ensureSeed(SeedFile(dataDir, id), log)
		if err != nil {
			return nil, err
		}
		opts.Nkeys = append(opts.Nkeys, &server.NkeyUser{Nkey: pub, Permissions: perms[id]})
	}
	self, err := nats.NkeyOptionFromSeed(SeedFile(dataDir, IdentityCCEvents))
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", SeedFile(dataDir, IdentityCCEvents), err)
	}
	return self, nil
}

// ensureSeed returns the public key of the user nkey in path, creating the
// file (mode 0600) when it does not exist.
func ensureSeed(path string, log *slog.Logger) (string, error) {
	seed, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		kp, err := nkeys.CreateUser()
		if err != nil {
			return "", fmt.Errorf("create an nkey for %s: %w", path, err)
		}
		if seed, err = kp.Seed(); err != nil {
			return "", err
		}
		if err := os.WriteFile(path, append(seed, '\n'), 0o600); err != nil {
			return "", fmt.Errorf("write %s: %w", path, err)
		}
		log.Info("NATS credentials created", "file", path)
	} else if err != nil {
		return "", fmt.Errorf("read NATS credentials: %w", err)
	}
	if st, err := os.Stat(path); err == nil && st.Mode().Perm()&0o077 != 0 {
		log.Warn("NATS credentials were readable by other users; restricted them to the owner, but treat them as exposed: delete the file to get a new one", "file", path, "mode", st.Mode().Perm())
		if err := os.Chmod(path, 0o600); err != nil {
			return "", fmt.Errorf("restrict %s to its owner: %w", path, err)
		}
	}
	kp, err := nkeys.ParseDecoratedNKey(seed)
	if err != nil {
		return "", fmt.Errorf("%s does not hold an nkey seed: %w", path, err)
	}
	pub, err := kp.PublicKey()
	if err != nil || !nkeys.IsValidPublicUserKey(pub) {
		return "", fmt.Errorf("%s does not hold a user nkey seed (SU…)", path)
	}
	return pub, nil
}
