package client_test

import (
	"context"
	"fmt"
	"log"
	"os"
	"testing"
	"time"

	"github.com/ccevents/ccevents/client"
)

// The examples run against a real ccevents started by TestMain; these are
// its addresses and the root account's API key.
var (
	gatewayURL string // ws://127.0.0.1:PORT
	apiURL     string // http://127.0.0.1:PORT
	apiKey     string
	accountID  string
	demo       *server
)

func TestMain(m *testing.M) {
	s, err := newServer(serverConfig{})
	if err != nil {
		log.Fatalf("start a server for the examples: %v", err)
	}
	demo = s
	gatewayURL, apiURL, apiKey, accountID = s.wsURL, s.apiURL, s.apiKey, s.account
	code := m.Run()
	s.stop()
	os.Exit(code)
}

// createQueue stands for the contact center doing something: creating a
// queue through the REST API publishes queue.create.
func createQueue(id, name string) {
	if err := demo.call("PUT", "/v2/accounts/{ACCOUNT_ID}/queues", map[string]any{"id": id, "name": name}, nil); err != nil {
		log.Fatal(err)
	}
}

func ExampleDial() {
	ctx := context.Background()
	c, err := client.Dial(ctx, client.Options{
		URL:    gatewayURL, // ws://HOST:5555
		APIURL: apiURL,     // http://HOST:8000, where the API key is exchanged for a token
		APIKey: apiKey,
	})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)
	fmt.Println("token is for the key's account:", c.Token().AccountID == accountID)
	// Output: token is for the key's account: true
}

func ExampleClient_Subscribe() {
	ctx := context.Background()
	c, err := client.Dial(ctx, client.Options{URL: gatewayURL, APIURL: apiURL, APIKey: apiKey})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	created := make(chan string)
	_, err = c.Subscribe(ctx, accountID, "qubicle.queue."+accountID+".*", func(ev client.Event) {
		p, err := ev.Decode()
		if err != nil {
			return // an event this SDK version does not know
		}
		switch p := p.(type) {
		case *client.QueueCreate:
			created <- p.QueueName
		case *client.QueueJoin:
			fmt.Println("caller waiting at position", p.Position)
		}
	})
	if err != nil {
		log.Fatal(err) // e.g. subscribe "qubicle.queue.…": this auth_token may not see account …
	}
	createQueue("sales", "Sales")
	fmt.Println("queue created:", <-created)
	// Output: queue created: Sales
}

func ExampleSince() {
	ctx := context.Background()
	c, err := client.Dial(ctx, client.Options{URL: gatewayURL, APIURL: apiURL, APIKey: apiKey})
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close(ctx)

	// Load the state once, then follow it exactly: events after the
	// snapshot's position, replayed from history if they happened while
	// this program was not running.
	snap, err := c.Snapshot(ctx, accountID)
	if err != nil {
		log.Fatal(err)
	}
	queues := map[string]string{}
	for _, q := range snap.Queues {
		queues[q.ID] = q.Name
	}
	changed := make(chan struct{}, 1)
	_, err = c.Subscribe(ctx, accountID, "qubicle.queue."+accountID+".*", func(ev client.Event) {
		if p, err := ev.Decode(); err == nil {
			if q, ok := p.(*client.QueueCreate); ok {
				queues[q.QueueID] = q.QueueName
				changed <- struct{}{}
			}
		}
	},
		client.Since(snap.Position()),
		client.OnResync(func(r client.Resync) {
			log.Printf("state may be stale (%s): reload the snapshot", r.Reason())
		}))
	if err != nil {
		log.Fatal(err)
	}
	createQueue("billing", "Billing")
	<-changed
	fmt.Println(queues["billing"])
	// Output: Billing
}

func ExampleOptions_onConnState() {
	opts := client.Options{
		URL: gatewayURL, APIURL: apiURL, APIKey: apiKey,
		MinBackoff: 100 * time.Millisecond, MaxBackoff: 10 * time.Second,
		OnConnState: func(ev client.ConnEvent) {
			switch ev.State {
			case client.Disconnected:
				log.Printf("lost the gateway (%v); retrying in %s", ev.Err, ev.Retry)
			case client.Connected:
				log.Print("connected")
			}
		},
	}
	c, err := client.Dial(context.Background(), opts)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(c.Close(context.Background()))
	// Output: <nil>
}
