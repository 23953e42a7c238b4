package natstest

import (
	"crypto/rand"
	"fmt"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"

	"github.com/ccevents/ccevents/internal/testkit"
)

// clusterNamePrefix starts every Cluster's NATS cluster name; the rest is
// random, so clusters of tests running at the same time (other packages'
// test processes) can never join each other through a reused port.
const clusterNamePrefix = "natstest-"

// startTimeout bounds how long a node may take to accept clients, and how
// long the cluster may take to elect a JetStream meta leader. It is a
// limit, not a wait: on a machine whose cores are all busy an election
// (4–9 s timeouts, several rounds) has taken over 30 s.
const startTimeout = 2 * time.Minute

// Cluster is a running N-node nats-server cluster with JetStream. Its methods
// may be called from the test goroutine only (they fail the test on error).
type Cluster struct {
	t    testing.TB
	name string
	// auth is nats-server configuration text (accounts, authorization)
	// every node applies; empty: clients need no credentials.
	auth  string
	mu    sync.Mutex
	nodes []*node
}

type node struct {
	name        string
	storeDir    string
	clientPort  int
	clusterPort int
	srv         *server.Server // nil while killed
}

// Start runs an n-node cluster and waits until JetStream has a meta leader
// and every node is current with it. Every node is shut down when the test
// ends.
func Start(t testing.TB, n int) *Cluster {
	t.Helper()
	return StartWithAuth(t, n, "")
}

// StartWithAuth is Start with client authentication and permissions:
// authConf is nats-server configuration text (an authorization block, and
// the variables it uses) that every node applies on its client port, as an
// operator's configuration file would. Clients then connect with the
// credentials it names (Connect's options).
func StartWithAuth(t testing.TB, n int, authConf string) *Cluster {
	t.Helper()
	if authConf != "" {
		if _, err := authOptions(authConf); err != nil {
			t.Fatalf("natstest: the authorization configuration does not parse: %v", err)
		}
	}
	if n < 1 {
		t.Fatalf("natstest.Start: a cluster needs at least one node, got %d", n)
	}
	var lastErr error
	// Ports are reserved by listening and closing, so another process can
	// take one before a node binds it; a fresh set of ports then succeeds.
	for attempt := 0; attempt < 3; attempt++ {
		c, err := tryStart(t, n, authConf)
		if err == nil {
			t.Cleanup(c.shutdown)
			c.WaitReady()
			return c
		}
		lastErr = err
	}
	t.Fatalf("natstest.Start: %v", lastErr)
	return nil
}

func tryStart(t testing.TB, n int, authConf string) (*Cluster, error) {
	ports, err := freePorts(2 * n)
	if err != nil {
		return nil, err
	}
	root := t.TempDir()
	c := &Cluster{t: t, name: clusterNamePrefix + rand.Text(), auth: authConf}
	for i := 0; i < n; i++ {
		c.nodes = append(c.nodes, &node{
			name:        fmt.Sprintf("n%d", i+1),
			storeDir:    filepath.Join(root, fmt.Sprintf("n%d", i+1)),
			clientPort:  ports[2*i],
			clusterPort: ports[2*i+1],
		})
	}
	// Nodes start concurrently: a JetStream node waits for its peers before
	// it is ready, so starting them one after another would stall.
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range c.nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = c.startNode(i)
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			c.shutdown()
			return nil, err
		}
	}
	return c, nil
}

// freePorts reserves n distinct loopback ports and releases them.
func freePorts(n int) ([]int, error) {
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			ln.Close()
		}
	}()
	ports := make([]int, 0, n)
	for i := 0; i < n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, fmt.Errorf("reserve a loopback port: %w", err)
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// authOptions parses authorization configuration text into the options
// that carry it.
func authOptions(conf string) (*server.Options, error) {
	o := &server.Options{}
	if err := o.ProcessConfigString(conf); err != nil {
		return nil, err
	}
	return o, nil
}

func (c *Cluster) options(i int) (*server.Options, error) {
	nd := c.nodes[i]
	var routes []*url.URL
	for j, other := range c.nodes {
		if j != i {
			routes = append(routes, &url.URL{Scheme: "nats", Host: fmt.Sprintf("127.0.0.1:%d", other.clusterPort)})
		}
	}
	opts := &server.Options{
		ServerName: nd.name,
		Host:       "127.0.0.1",
		Port:       nd.clientPort,
		JetStream:  true,
		StoreDir:   nd.storeDir,
		NoSigs:     true,
		NoLog:      true,
	}
	// A one-node "cluster" is a plain JetStream server: clustered
	// JetStream refuses to start without routes.
	if len(routes) > 0 {
		opts.Cluster = server.ClusterOpts{Name: c.name, Host: "127.0.0.1", Port: nd.clusterPort}
		opts.Routes = routes
	}
	if c.auth != "" {
		// Each node parses its own copy: accounts cannot be shared.
		a, err := authOptions(c.auth)
		if err != nil {
			return nil, err
		}
		opts.Users, opts.Nkeys, opts.Accounts = a.Users, a.Nkeys, a.Accounts
		opts.NoAuthUser, opts.AuthTimeout = a.NoAuthUser, a.AuthTimeout
	}
	return opts, nil
}

func (c *Cluster) startNode(i int) error {
	opts, err := c.options(i)
	if err != nil {
		return fmt.Errorf("configure node %d: %w", i+1, err)
	}
	srv, err := server.NewServer(opts)
	if err != nil {
		return fmt.Errorf("configure node %s: %w", opts.ServerName, err)
	}
	if os.Getenv("NATSTEST_LOG") != "" {
		srv.SetLoggerV2(&testLogger{t: c.t, prefix: opts.ServerName}, false, false, false)
	}
	go srv.Start()
	if !srv.ReadyForConnections(startTimeout) {
		srv.Shutdown()
		return fmt.Errorf("node %s did not accept clients on 127.0.0.1:%d within %s", opts.ServerName, opts.Port, startTimeout)
	}
	c.mu.Lock()
	c.nodes[i].srv = srv
	c.mu.Unlock()
	return nil
}

func (c *Cluster) shutdown() {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, nd := range c.nodes {
		if nd.srv != nil {
			nd.srv.Shutdown()
			nd.srv.WaitForShutdown()
			nd.srv = nil
		}
	}
}

// Size is the number of nodes, running or killed.
func (c *Cluster) Size() int { return len(c.nodes) }

// URL is node i's client URL. It stays the same across Kill and Restart.
func (c *Cluster) URL(i int) string {
	return fmt.Sprintf("nats://127.0.0.1:%d", c.nodes[i].clientPort)
}

// URLs are the client URLs of every node, in node order.
func (c *Cluster) URLs() []string {
	urls := make([]string, len(c.nodes))
	for i := range c.nodes {
		urls[i] = c.URL(i)
	}
	return urls
}

// Server is node i's running server, or nil while it is killed.
func (c *Cluster) Server(i int) *server.Server {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.nodes[i].srv
}

// Name is node i's server name (n1, n2, …).
func (c *Cluster) Name(i int) string { return c.nodes[i].name }

// Kill stops node i at once, as a crash would from its peers' view; its
// store stays on disk for Restart.
func (c *Cluster) Kill(i int) {
	c.t.Helper()
	c.mu.Lock()
	srv := c.nodes[i].srv
	c.nodes[i].srv = nil
	c.mu.Unlock()
	if srv == nil {
		c.t.Fatalf("natstest: node %s is already killed", c.nodes[i].name)
	}
	srv.Shutdown()
	srv.WaitForShutdown()
}

// Restart starts killed node i again on the same ports with the same store,
// and waits until it has caught up with the JetStream meta leader.
func (c *Cluster) Restart(i int) {
	c.t.Helper()
	if c.Server(i) != nil {
		c.t.Fatalf("natstest: node %s is running; Kill it before Restart", c.nodes[i].name)
	}
	if err := c.startNode(i); err != nil {
		c.t.Fatalf("natstest: restart: %v", err)
	}
	c.WaitReady()
}

// WaitReady waits until a running node is the JetStream meta leader, every
// running node is current with it, and the leader counts every running
// node as a peer it can place replicas on (until then creating an R3 stream
// fails with "no suitable peers for placement"). It fails the test after
// startTimeout.
func (c *Cluster) WaitReady() {
	c.t.Helper()
	deadline := time.Now().Add(startTimeout)
	for {
		leader, current, placeable := c.metaState()
		if leader && current && placeable {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("natstest: JetStream not ready within %s (meta leader=%v, all current=%v, all placeable=%v)", startTimeout, leader, current, placeable)
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (c *Cluster) metaState() (leader, current, placeable bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	current = true
	running := 0
	peers := 0
	for _, nd := range c.nodes {
		if nd.srv == nil {
			continue
		}
		running++
		if nd.srv.JetStreamIsLeader() {
			leader = true
			if nd.srv.JetStreamIsClustered() {
				peers = len(nd.srv.JetStreamClusterPeers())
			} else {
				peers = 1
			}
		}
		if !nd.srv.JetStreamIsCurrent() {
			current = false
		}
	}
	return leader, current, peers >= running
}

// StreamLeader is the index of the node leading stream (in the default
// account), or -1 when no running node leads it now.
func (c *Cluster) StreamLeader(stream string) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, nd := range c.nodes {
		if nd.srv != nil && nd.srv.JetStreamIsStreamLeader(server.DEFAULT_GLOBAL_ACCOUNT, stream) {
			return i
		}
	}
	return -1
}

// WaitStreamLeader waits until a running node leads stream and returns its
// index, failing the test after 30 s (an election on a busy machine, not
// a performance claim).
func (c *Cluster) WaitStreamLeader(stream string) int {
	c.t.Helper()
	leader := -1
	testkit.Eventually(c.t, 30*time.Second, "stream "+stream+" to have a leader", func() bool {
		leader = c.StreamLeader(stream)
		return leader >= 0
	})
	return leader
}

// Connect opens a client connection that knows every node and reconnects
// forever; it is closed when the test ends.
func (c *Cluster) Connect(opts ...nats.Option) *nats.Conn {
	c.t.Helper()
	return c.connect(c.URLs(), opts)
}

// ConnectTo opens a client connection to node i first, failing over to the
// others in order (a process running next to node i); it is closed when the
// test ends.
func (c *Cluster) ConnectTo(i int, opts ...nats.Option) *nats.Conn {
	c.t.Helper()
	urls := c.URLs()
	return c.connect(append(urls[i:], urls[:i]...), append([]nats.Option{nats.DontRandomize()}, opts...))
}

// connect opens a connection to urls that reconnects forever, with opts
// applied last; it is closed when the test ends.
func (c *Cluster) connect(urls []string, opts []nats.Option) *nats.Conn {
	c.t.Helper()
	opts = append([]nats.Option{
		nats.MaxReconnects(-1),
		nats.ReconnectWait(50 * time.Millisecond),
		nats.Name(c.t.Name()),
	}, opts...)
	nc, err := nats.Connect(strings.Join(urls, ","), opts...)
	if err != nil {
		c.t.Fatalf("natstest: connect to %v: %v", urls, err)
	}
	c.t.Cleanup(nc.Close)
	return nc
}

// testLogger sends a node's log to the test log (NATSTEST_LOG=1).
type testLogger struct {
	t      testing.TB
	prefix string
}

func (l *testLogger) logf(level, format string, v ...any) {
	l.t.Logf("%s %s: %s", l.prefix, level, fmt.Sprintf(format, v...))
}

func (l *testLogger) Noticef(format string, v ...any) { l.logf("INF", format, v...) }
func (l *testLogger) Warnf(format string, v ...any)   { l.logf("WRN", format, v...) }
func (l *testLogger) Fatalf(format string, v ...any)  { l.logf("FTL", format, v...) }
func (l *testLogger) Errorf(format string, v ...any)  { l.logf("ERR", format, v...) }
func (l *testLogger) Debugf(format string, v ...any)  { l.logf("DBG", format, v...) }
func (l *testLogger) Tracef(format string, v ...any)  { l.logf("TRC", format, v...) }
