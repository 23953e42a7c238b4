package sipstore_test

import (
	"crypto/md5"
	"crypto/sha256"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/bus"
	"github.com/ccevents/ccevents/internal/natstest"
	"github.com/ccevents/ccevents/internal/sipstore"
	"github.com/ccevents/ccevents/internal/testkit"
)

const (
	acc   = "0123456789abcdef0123456789abcdef"
	other = "fedcba9876543210fedcba9876543210"
)

// twoStores opens two Stores on one bucket of a real bus, as two processes
// of a deployment do, and the bucket itself for looking at what is stored.
func twoStores(t *testing.T) (a, b *sipstore.Store, kv jetstream.KeyValue) {
	t.Helper()
	bs := natstest.Bus(t, bus.Config{Memory: true, Name: "sipstore-test"})
	kv, err := bs.KeyValue(t.Context(), sipstore.Bucket)
	if err != nil {
		t.Fatalf("open the %s bucket: %v", sipstore.Bucket, err)
	}
	open := func() *sipstore.Store {
		s, err := sipstore.Open(t.Context(), kv, nil)
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(s.Close)
		return s
	}
	return open(), open(), kv
}

func TestSetCredentialRefusesWhatARegistrarCannotUse(t *testing.T) {
	s, _, _ := twoStores(t)
	if _, _, err := s.SetCredential(t.Context(), acc, "agent1", sipstore.NewCredential{User: "taken"}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name    string
		in      sipstore.NewCredential
		wantErr error
		wantMsg string
	}{
		{"a user with a space", sipstore.NewCredential{User: "ada lovelace"}, sipstore.ErrInvalid, "user must be 1-64 characters"},
		{"a user of 65 characters", sipstore.NewCredential{User: strings.Repeat("a", 65)}, sipstore.ErrInvalid, "user must be 1-64 characters"},
		{"a realm starting with a dot", sipstore.NewCredential{Realm: ".example.com"}, sipstore.ErrInvalid, "realm must be"},
		{"a password too short", sipstore.NewCredential{Password: "short"}, sipstore.ErrInvalid, fmt.Sprintf("password must be %d to 128 characters", sipstore.MinPasswordLen)},
		{"a password too long", sipstore.NewCredential{Password: strings.Repeat("p", 129)}, sipstore.ErrInvalid, "password must be"},
		{"another recipient's user", sipstore.NewCredential{User: "taken"}, sipstore.ErrConflict, `SIP user "taken" is taken`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, _, err := s.SetCredential(t.Context(), acc, "agent2", tt.in)
			if !errors.Is(err, tt.wantErr) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Fatalf("SetCredential error %v, want %v saying %q", err, tt.wantErr, tt.wantMsg)
			}
			if _, ok := s.CredentialOf(acc, "agent2"); ok {
				t.Fatal("a refused credential was stored")
			}
		})
	}
}

// A credential keeps the digest hashes of the password, never the
// password: a registrar computes the same HA1 from the right password, a
// different one from a wrong password, and the bucket holds no password.
func TestCredentialKeepsDigestsThatOnlyTheRightPasswordMatches(t *testing.T) {
	s, peer, kv := twoStores(t)
	tests := []struct {
		name      string
		in        sipstore.NewCredential
		wantUser  string
		wantRealm string
	}{
		{"a chosen password", sipstore.NewCredential{User: "ada", Password: "correct horse battery", Realm: "pbx.example.com"}, "ada", "pbx.example.com"},
		{"a made-up password and user", sipstore.NewCredential{}, "agent2-" + acc[:6], sipstore.DefaultRealm},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			recipient := fmt.Sprintf("agent%d", i+1)
			c, password, err := s.SetCredential(t.Context(), acc, recipient, tt.in)
			if err != nil {
				t.Fatal(err)
			}
			if c.User != tt.wantUser || c.Realm != tt.wantRealm || len(password) < sipstore.MinPasswordLen {
				t.Fatalf("credential %+v with password %q, want user %s, realm %s and a password of at least %d characters", c, password, tt.wantUser, tt.wantRealm, sipstore.MinPasswordLen)
			}
			for _, h := range []struct {
				name string
				got  string
				sum  string
			}{
				{"MD5", c.HA1MD5, sipstore.HA1(md5.New, c.User, c.Realm, password)},
				{"SHA-256", c.HA1SHA256, sipstore.HA1(sha256.New, c.User, c.Realm, password)},
			} {
				if h.got != h.sum {
					t.Errorf("HA1 %s %s, want %s for the right password", h.name, h.got, h.sum)
				}
			}
			if wrong := sipstore.HA1(md5.New, c.User, c.Realm, password+"x"); wrong == c.HA1MD5 {
				t.Error("a wrong password gives the stored HA1")
			}
			// Another process's copy follows the bucket: it sees the
			// credential soon after.
			testkit.Eventually(t, 30*time.Second, "the other store to see the credential", func() bool {
				got, ok := peer.User(c.User)
				return ok && got == c
			})
			if got, ok := s.CredentialOf(acc, recipient); !ok || got != c {
				t.Errorf("CredentialOf = %+v, %v; want the stored credential", got, ok)
			}
			raw, err := kv.Get(t.Context(), "user."+c.User)
			if err != nil {
				t.Fatal(err)
			}
			if strings.Contains(string(raw.Value()), password) {
				t.Errorf("the bucket holds the password in the clear: %s", raw.Value())
			}
		})
	}
	if got := s.Credentials(acc); len(got) != 2 || got[0].RecipientID != "agent1" || got[1].RecipientID != "agent2" {
		t.Errorf("Credentials = %+v, want agent1's and agent2's in order", got)
	}
	if got := s.Credentials(other); len(got) != 0 {
		t.Errorf("another account's Credentials = %+v, want none", got)
	}
}

func TestANewUserNameRetiresTheOldOneAndDeleteRemovesIt(t *testing.T) {
	s, peer, _ := twoStores(t)
	if _, _, err := s.SetCredential(t.Context(), acc, "agent1", sipstore.NewCredential{User: "first"}); err != nil {
		t.Fatal(err)
	}
	c, _, err := s.SetCredential(t.Context(), acc, "agent1", sipstore.NewCredential{User: "second"})
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.User("first"); ok {
		t.Error("the old user name still registers after the recipient got a new one")
	}
	if got, ok := s.User("second"); !ok || got != c {
		t.Errorf("User(second) = %+v, %v; want the new credential", got, ok)
	}
	// The old user name is free for someone else now.
	if _, _, err := s.SetCredential(t.Context(), acc, "agent2", sipstore.NewCredential{User: "first"}); err != nil {
		t.Errorf("the retired user name cannot be given to another recipient: %v", err)
	}

	if err := s.DeleteCredential(t.Context(), acc, "agent1"); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.CredentialOf(acc, "agent1"); ok {
		t.Error("a deleted credential is still there once DeleteCredential returned")
	}
	testkit.Eventually(t, 30*time.Second, "the other store to forget the deleted credential", func() bool {
		_, ok := peer.User("second")
		return !ok
	})
	if err := s.DeleteCredential(t.Context(), acc, "agent1"); !errors.Is(err, sipstore.ErrNotFound) {
		t.Errorf("deleting it again: %v, want ErrNotFound", err)
	}
}

func TestSetNumberValidatesAndFillsItsDefaults(t *testing.T) {
	s, _, _ := twoStores(t)
	tests := []struct {
		name    string
		in      sipstore.Number
		want    sipstore.Number // on success
		wantErr string          // "" for success
	}{
		{"defaults", sipstore.Number{Number: "+15550100", AccountID: acc, QueueID: "sales"},
			sipstore.Number{Number: "+15550100", AccountID: acc, QueueID: "sales", WhenFull: sipstore.Busy, WhenNoAgents: sipstore.Queue}, ""},
		{"everything given", sipstore.Number{Number: "4420", AccountID: acc, QueueID: "support", WhenFull: sipstore.Announce, WhenNoAgents: sipstore.Busy, PositionAnnounceS: 30},
			sipstore.Number{Number: "4420", AccountID: acc, QueueID: "support", WhenFull: sipstore.Announce, WhenNoAgents: sipstore.Busy, PositionAnnounceS: 30}, ""},
		{"letters", sipstore.Number{Number: "+1555CALLME", AccountID: acc, QueueID: "sales"}, sipstore.Number{}, "number must be 1-32 digits"},
		{"33 digits", sipstore.Number{Number: strings.Repeat("1", 33), AccountID: acc, QueueID: "sales"}, sipstore.Number{}, "number must be 1-32 digits"},
		{"no queue", sipstore.Number{Number: "100", AccountID: acc}, sipstore.Number{}, "queue_id is required"},
		{"queue when full", sipstore.Number{Number: "100", AccountID: acc, QueueID: "sales", WhenFull: sipstore.Queue}, sipstore.Number{}, "when_full must be busy or announce"},
		{"an unknown when_no_agents", sipstore.Number{Number: "100", AccountID: acc, QueueID: "sales", WhenNoAgents: "voicemail"}, sipstore.Number{}, "when_no_agents must be queue, busy or announce"},
		{"announcing every 5 s", sipstore.Number{Number: "100", AccountID: acc, QueueID: "sales", PositionAnnounceS: 5}, sipstore.Number{}, "position_announce_s must be 0 (never) or 10 to 3600"},
		{"announcing every 2 hours", sipstore.Number{Number: "100", AccountID: acc, QueueID: "sales", PositionAnnounceS: 7200}, sipstore.Number{}, "position_announce_s must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := s.SetNumber(t.Context(), tt.in)
			if tt.wantErr != "" {
				if !errors.Is(err, sipstore.ErrInvalid) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("SetNumber error %v, want ErrInvalid saying %q", err, tt.wantErr)
				}
				if _, ok := s.Number(tt.in.Number); ok {
					t.Fatal("a refused number was stored")
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("SetNumber = %+v, %v; want %+v", got, err, tt.want)
			}
			if stored, ok := s.Number(tt.in.Number); !ok || stored != tt.want {
				t.Fatalf("Number(%s) = %+v, %v; want %+v", tt.in.Number, stored, ok, tt.want)
			}
		})
	}
}

func TestANumberBelongsToOneAccount(t *testing.T) {
	s, peer, _ := twoStores(t)
	n := sipstore.Number{Number: "+15550100", AccountID: acc, QueueID: "sales"}
	if _, err := s.SetNumber(t.Context(), n); err != nil {
		t.Fatal(err)
	}
	// Its own account may move it to another queue; another may not take it.
	n.QueueID = "support"
	if _, err := s.SetNumber(t.Context(), n); err != nil {
		t.Fatalf("moving the number to another queue: %v", err)
	}
	if _, err := s.SetNumber(t.Context(), sipstore.Number{Number: n.Number, AccountID: other, QueueID: "sales"}); !errors.Is(err, sipstore.ErrConflict) {
		t.Errorf("another account taking the number: %v, want ErrConflict", err)
	}
	if err := s.DeleteNumber(t.Context(), other, n.Number); !errors.Is(err, sipstore.ErrNotFound) {
		t.Errorf("another account deleting the number: %v, want ErrNotFound", err)
	}
	// The '+' survives the key encoding, in another process too.
	testkit.Eventually(t, 30*time.Second, "the other store to see the number in its queue", func() bool {
		got, ok := peer.Number("+15550100")
		return ok && got.QueueID == "support"
	})
	if got := peer.Numbers(acc); len(got) != 1 || got[0].Number != "+15550100" {
		t.Errorf("Numbers = %+v, want the one number", got)
	}
	if err := s.DeleteNumber(t.Context(), acc, n.Number); err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Number(n.Number); ok {
		t.Error("a deleted number is still there once DeleteNumber returned")
	}
	if err := s.DeleteNumber(t.Context(), acc, n.Number); !errors.Is(err, sipstore.ErrNotFound) {
		t.Errorf("deleting it again: %v, want ErrNotFound", err)
	}
}

// Writers racing from two processes for one user name or one number: one
// wins, the others are told it is taken, and both copies agree on the
// winner.
func TestConcurrentWritersForOneNameGetOneWinner(t *testing.T) {
	a, b, _ := twoStores(t)
	const writers = 8
	tests := []struct {
		name  string
		write func(s *sipstore.Store, i int) error
		owner func(s *sipstore.Store) (string, bool)
	}{
		{"one SIP user for eight recipients", func(s *sipstore.Store, i int) error {
			_, _, err := s.SetCredential(t.Context(), acc, fmt.Sprintf("agent%d", i), sipstore.NewCredential{User: "shared"})
			return err
		}, func(s *sipstore.Store) (string, bool) {
			c, ok := s.User("shared")
			return c.RecipientID, ok
		}},
		{"one number for eight accounts", func(s *sipstore.Store, i int) error {
			_, err := s.SetNumber(t.Context(), sipstore.Number{Number: "+15550199", AccountID: fmt.Sprintf("%032x", i+1), QueueID: "sales"})
			return err
		}, func(s *sipstore.Store) (string, bool) {
			n, ok := s.Number("+15550199")
			return n.AccountID, ok
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			errs := make([]error, writers)
			var wg sync.WaitGroup
			for i := range writers {
				wg.Go(func() {
					s := a
					if i%2 == 1 {
						s = b
					}
					errs[i] = tt.write(s, i)
				})
			}
			wg.Wait()
			won := 0
			for i, err := range errs {
				switch {
				case err == nil:
					won++
				case !errors.Is(err, sipstore.ErrConflict):
					t.Errorf("writer %d: %v, want success or ErrConflict", i, err)
				}
			}
			if won != 1 {
				t.Fatalf("%d writers won (%v), want exactly one", won, errs)
			}
			testkit.EventuallyNoError(t, 30*time.Second, "both stores to agree on the winner", func() error {
				wa, okA := tt.owner(a)
				wb, okB := tt.owner(b)
				if !okA || !okB || wa != wb {
					return fmt.Errorf("one store says %q (%v), the other %q (%v)", wa, okA, wb, okB)
				}
				return nil
			})
		})
	}
}

// Many recipients given credentials at once, from two processes, are all
// stored and listed.
func TestConcurrentCredentialsForManyRecipientsAreAllKept(t *testing.T) {
	a, b, _ := twoStores(t)
	const recipients = 40
	var wg sync.WaitGroup
	errs := make(chan error, recipients)
	for i := range recipients {
		wg.Go(func() {
			s := a
			if i%2 == 1 {
				s = b
			}
			if _, _, err := s.SetCredential(t.Context(), acc, fmt.Sprintf("agent%02d", i), sipstore.NewCredential{}); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Errorf("SetCredential: %v", err)
	}
	for _, s := range []*sipstore.Store{a, b} {
		testkit.EventuallyNoError(t, 30*time.Second, "every credential in both stores", func() error {
			if n := len(s.Credentials(acc)); n != recipients {
				return fmt.Errorf("%d credentials listed", n)
			}
			return nil
		})
	}
}
