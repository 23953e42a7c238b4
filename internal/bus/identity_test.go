package bus_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nkeys"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/natstest"
)

// openListening runs an embedded bus that accepts NATS clients on loopback
// TCP and websocket ports.
func openListening(t *testing.T, dir string) *bus.Bus {
	t.Helper()
	return natstest.Bus(t, bus.Config{DataDir: dir, Name: "test", Listen: "127.0.0.1:0", WebsocketListen: "127.0.0.1:0"})
}

// asIdentity connects to b's TCP listener with identity's seed; errs
// receives the asynchronous errors (permission violations) of the connection.
func asIdentity(t *testing.T, b *bus.Bus, identity string) (*nats.Conn, <-chan error) {
	t.Helper()
	creds, err := nats.NkeyOptionFromSeed(b.SeedFile(identity))
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 16)
	nc, err := nats.Connect(b.Server().ClientURL(), creds, nats.ErrorHandler(func(_ *nats.Conn, _ *nats.Subscription, err error) {
		select {
		case errs <- err:
		default:
		}
	}))
	if err != nil {
		t.Fatalf("connect as %s: %v", identity, err)
	}
	t.Cleanup(nc.Close)
	return nc, errs
}

func TestTheEmbeddedServerListensNowhereUnlessAsked(t *testing.T) {
	dir := t.TempDir()
	b := openBus(t, dir)
	defer b.Close()
	if addr := b.Server().Addr(); addr != nil {
		t.Errorf("embedded NATS listens on %v without Listen", addr)
	}
	if b.SeedFile(bus.IdentityCCEvents) != "" {
		t.Error("credentials are reported for a server nobody can reach")
	}
	if _, err := os.Stat(filepath.Join(dir, "nats")); !os.IsNotExist(err) {
		t.Errorf("credentials were written for a server that does not listen: %v", err)
	}
	if _, err := b.Publish(t.Context(), "qubicle.queue."+acc+".Q.join", []byte(`{}`), ""); err != nil {
		t.Errorf("ccevents' own in-process connection: %v", err)
	}
}

func TestListenersRefuseClientsWithoutCredentials(t *testing.T) {
	b := openListening(t, t.TempDir())
	stranger, err := nkeys.CreateUser()
	if err != nil {
		t.Fatal(err)
	}
	strangerPub, _ := stranger.PublicKey()
	tests := []struct {
		name string
		url  string
		opts []nats.Option
	}{
		{"anonymous", b.Server().ClientURL(), nil},
		{"guessed user and password", b.Server().ClientURL(), []nats.Option{nats.UserInfo("ccevents", "ccevents")}},
		{"guessed token", b.Server().ClientURL(), []nats.Option{nats.Token("s3cr3t")}},
		{"an nkey the server does not know", b.Server().ClientURL(), []nats.Option{nats.Nkey(strangerPub, stranger.Sign)}},
		{"anonymous on the websocket listener", b.Server().WebsocketURL(), nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// The server closes a refused connection at once, so the client
			// sees either its -ERR or the closed socket.
			nc, err := nats.Connect(tt.url, append(tt.opts, nats.Timeout(5*time.Second))...)
			if err == nil {
				nc.Close()
				t.Fatal("connected")
			}
			t.Logf("refused: %v", err)
		})
	}
	// The same listeners admit the ccevents identity.
	creds, err := nats.NkeyOptionFromSeed(b.SeedFile(bus.IdentityCCEvents))
	if err != nil {
		t.Fatal(err)
	}
	for _, url := range []string{b.Server().ClientURL(), b.Server().WebsocketURL()} {
		nc, err := nats.Connect(url, creds, nats.Timeout(5*time.Second))
		if err != nil {
			t.Fatalf("ccevents identity on %s: %v", url, err)
		}
		nc.Close()
	}
}

// waitViolation waits for the server's permission violation on subject.
func waitViolation(t *testing.T, errs <-chan error, subject string) {
	t.Helper()
	timeout := time.After(10 * time.Second)
	for {
		select {
		case err := <-errs:
			if strings.Contains(err.Error(), "permissions violation") && strings.Contains(err.Error(), subject) {
				return
			}
		case <-timeout:
			t.Fatalf("no permissions violation for %s", subject)
		}
	}
}

func TestTheProducerIdentityReachesOnlyTheIngest(t *testing.T) {
	b := openListening(t, t.TempDir())
	ctx := t.Context()
	if _, err := b.Conn().Subscribe(bus.IngestSubject, func(m *nats.Msg) { _ = m.Respond([]byte("validated")) }); err != nil {
		t.Fatal(err)
	}
	if err := b.Conn().Flush(); err != nil {
		t.Fatal(err)
	}
	before, err := b.Bounds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	nc, errs := asIdentity(t, b, bus.IdentityProducer)

	reply, err := nc.Request(bus.IngestSubject, []byte(`{}`), 10*time.Second)
	if err != nil || string(reply.Data) != "validated" {
		t.Fatalf("request to %s: %v, %v", bus.IngestSubject, reply, err)
	}

	// A forged event straight into another account's subject.
	forged := "qubicle.queue." + acc + ".Q.join"
	if err := nc.Publish(forged, []byte(`not even JSON`)); err != nil {
		t.Fatal(err)
	}
	waitViolation(t, errs, forged)
	// Reading the auth bucket through the JetStream API.
	get := "$JS.API.STREAM.MSG.GET.KV_ccevents_auth"
	if _, err := nc.Request(get, []byte(`{"last_by_subj":"$KV.ccevents_auth.signing.>"}`), time.Second); err == nil {
		t.Errorf("%s answered the producer", get)
	}
	waitViolation(t, errs, get)
	// Listening to events, or to ccevents' own replies.
	for _, subject := range []string{"qubicle.>", bus.InboxPrefix + ".>", "$KV.>"} {
		if _, err := nc.SubscribeSync(subject); err != nil {
			t.Fatal(err)
		}
		waitViolation(t, errs, subject)
	}
	after, err := b.Bounds(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if after.Last != before.Last {
		t.Errorf("the stream grew from %d to %d events after the producer's publish", before.Last, after.Last)
	}
}

func TestTheCCEventsIdentityMayDoEverything(t *testing.T) {
	b := openListening(t, t.TempDir())
	nc, _ := asIdentity(t, b, bus.IdentityCCEvents)
	events := make(chan *nats.Msg, 1)
	if _, err := nc.ChanSubscribe("qubicle.>", events); err != nil {
		t.Fatal(err)
	}
	if err := nc.Flush(); err != nil {
		t.Fatal(err)
	}
	subject := "qubicle.session." + acc + ".S.create"
	if _, err := b.Publish(t.Context(), subject, []byte(`{}`), ""); err != nil {
		t.Fatal(err)
	}
	select {
	case m := <-events:
		if m.Subject != subject {
			t.Errorf("received %s, want %s", m.Subject, subject)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the ccevents identity received no event")
	}
}

func TestCredentialsAreTheOwnersAndSurviveRestarts(t *testing.T) {
	dir := t.TempDir()
	b := openListening(t, dir)
	pubs := map[string]string{}
	for _, id := range []string{bus.IdentityCCEvents, bus.IdentityProducer} {
		path := b.SeedFile(id)
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if st.Mode().Perm() != 0o600 {
			t.Errorf("%s has mode %v, want 0600", path, st.Mode().Perm())
		}
		raw, _ := os.ReadFile(path)
		kp, err := nkeys.ParseDecoratedNKey(raw)
		if err != nil {
			t.Fatal(err)
		}
		pubs[id], _ = kp.PublicKey()
	}
	if st, err := os.Stat(filepath.Join(dir, "nats")); err != nil || st.Mode().Perm() != 0o700 {
		t.Errorf("credentials directory: %v, %v; want mode 0700", st.Mode(), err)
	}
	b.Close()
	b = openListening(t, dir)
	for id, pub := range pubs {
		raw, _ := os.ReadFile(b.SeedFile(id))
		kp, _ := nkeys.ParseDecoratedNKey(raw)
		if again, _ := kp.PublicKey(); again != pub {
			t.Errorf("%s changed across a restart", id)
		}
	}
	asIdentity(t, b, bus.IdentityProducer)
}

func TestAnIdentityMissingAPermissionIsToldSoAfterOneAttempt(t *testing.T) {
	b := openListening(t, t.TempDir())
	creds, err := nats.NkeyOptionFromSeed(b.SeedFile(bus.IdentityProducer))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), 20*time.Second)
	defer cancel()
	_, err = bus.Open(ctx, bus.Config{URLs: []string{b.Server().ClientURL()}, UseExistingStream: true, ConnectOptions: []nats.Option{creds}})
	if err == nil || !errors.Is(err, nats.ErrPermissionViolation) || ctx.Err() != nil {
		t.Fatalf("opening the bus as the producer: %v (context %v); want the permission violation before the deadline", err, ctx.Err())
	}
	if !strings.Contains(err.Error(), "$JS.API.STREAM.INFO.QUBICLE") {
		t.Errorf("error %q should name the refused subject", err)
	}
}
