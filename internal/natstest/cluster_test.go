package natstest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/ccevents/ccevents/internal/natstest"
)

// publishAll stores n messages numbered from first, retrying each until the
// stream acknowledges it: while a killed leader is replaced, publishes fail
// for a moment, and the message id keeps a retried one from being stored
// twice.
func publishAll(ctx context.Context, t *testing.T, js jetstream.JetStream, first, n int) {
	t.Helper()
	for i := first; i < first+n; i++ {
		for {
			// A publish whose request went to the killed node gets no
			// answer; give each attempt its own short timeout.
			actx, cancel := context.WithTimeout(ctx, 2*time.Second)
			_, err := js.Publish(actx, fmt.Sprintf("hist.%d", i), []byte(fmt.Sprint(i)), jetstream.WithMsgID(fmt.Sprint(i)))
			cancel()
			if err == nil {
				break
			}
			if ctx.Err() != nil {
				t.Fatalf("publish %d: %v", i, err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
}

func TestReplicatedStreamKeepsAcceptingAndKeepsHistoryWhenItsLeaderIsKilled(t *testing.T) {
	c := natstest.Start(t, 3)
	// A limit, not a wait: it spans two leader elections and a node's
	// restart, each of which Cluster allows up to two minutes on a busy
	// machine (60 s was once not enough with both cores loaded).
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	js, err := jetstream.New(c.Connect())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{
		Name: "HIST", Subjects: []string{"hist.>"}, Replicas: 3, Storage: jetstream.FileStorage,
	}); err != nil {
		t.Fatalf("create R3 stream: %v", err)
	}
	publishAll(ctx, t, js, 0, 50)

	leader := c.WaitStreamLeader("HIST")
	c.Kill(leader)
	publishAll(ctx, t, js, 50, 50)

	assertHistory := func(when string, want int) {
		t.Helper()
		stream, err := js.Stream(ctx, "HIST")
		if err != nil {
			t.Fatalf("%s: %v", when, err)
		}
		if n := stream.CachedInfo().State.Msgs; n != uint64(want) {
			t.Fatalf("%s: stream holds %d messages, want %d (lost, or a retry stored twice)", when, n, want)
		}
		for seq := 1; seq <= want; seq++ {
			msg, err := stream.GetMsg(ctx, uint64(seq))
			if err != nil {
				t.Fatalf("%s: read sequence %d: %v", when, seq, err)
			}
			if got := string(msg.Data); got != fmt.Sprint(seq-1) {
				t.Fatalf("%s: sequence %d holds %q: history lost or reordered", when, seq, got)
			}
		}
	}
	assertHistory("with a node killed", 100)

	c.Restart(leader)
	publishAll(ctx, t, js, 100, 1)
	assertHistory("after the node came back", 101)
}

func TestKilledNodeKeepsItsURLAcrossRestart(t *testing.T) {
	c := natstest.Start(t, 3)
	before := c.URLs()
	c.Kill(1)
	if c.Server(1) != nil {
		t.Fatal("a killed node still reports a running server")
	}
	c.Restart(1)
	if fmt.Sprint(c.URLs()) != fmt.Sprint(before) {
		t.Fatalf("URLs changed across restart: %v -> %v", before, c.URLs())
	}
	got := c.Server(1).ClientURL()
	if got != before[1] {
		t.Fatalf("restarted node listens on %s, want %s", got, before[1])
	}
}

func TestSingleNodeClusterRunsJetStream(t *testing.T) {
	c := natstest.Start(t, 1)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	js, err := jetstream.New(c.Connect())
	if err != nil {
		t.Fatal(err)
	}
	_, err = js.CreateKeyValue(ctx, jetstream.KeyValueConfig{Bucket: "one"})
	if err != nil && !errors.Is(err, jetstream.ErrBucketExists) {
		t.Fatalf("create bucket on one node: %v", err)
	}
}
