package loadtest

import (
	"context"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
)

// natsProbe watches the bus the targets run on: how many consumers its
// event stream holds (the resource per-account followers used to exhaust)
// and, when the NATS server is a process of this machine, its memory.
type natsProbe struct {
	nc     *nats.Conn
	stream jetstream.Stream
	pid    int
	note   string
}

// natsSample is one reading of the bus.
type natsSample struct {
	RSS       int64 // 0 when the server's process is unknown
	Consumers int   // -1 when the stream could not be read
}

// newNATSProbe connects to the scenario's NATS, or returns nil when it has
// none (an idle run given no NATS URL).
func newNATSProbe(ctx context.Context, sc *Scenario) (*natsProbe, error) {
	if sc.NATSURL == "" {
		return nil, nil
	}
	nc, err := nats.Connect(sc.NATSURL, append([]nats.Option{nats.Name("ccevents-bench-probe"), nats.Timeout(5 * time.Second)}, sc.NATSOptions...)...)
	if err != nil {
		return nil, fmt.Errorf("connect to NATS at %s to count its consumers: %w", sc.NATSURL, err)
	}
	js, err := jetstream.New(nc)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("open JetStream: %w", err)
	}
	s, err := js.Stream(ctx, "QUBICLE")
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("stream QUBICLE on %s: %w (is this the NATS of a running ccevents?)", sc.NATSURL, err)
	}
	p := &natsProbe{nc: nc, stream: s, pid: sc.NATSServerPID}
	if p.pid == 0 {
		u, _ := url.Parse(sc.NATSURL)
		port, _ := strconv.Atoi(u.Port())
		if p.pid, err = pidListeningOn(port); err != nil {
			p.note = fmt.Sprintf("NATS server process not found (%v): its memory is not measured", err)
		}
	} else if _, err := readProc(p.pid); err != nil {
		p.note = fmt.Sprintf("NATS server process %d cannot be read (%v): its memory is not measured", p.pid, err)
		p.pid = 0
	}
	return p, nil
}

func (p *natsProbe) sample(ctx context.Context) natsSample {
	s := natsSample{Consumers: -1}
	if p.pid != 0 {
		if ps, err := readProc(p.pid); err == nil {
			s.RSS = ps.RSS
		}
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if info, err := p.stream.Info(ctx); err == nil {
		s.Consumers = info.State.Consumers
	}
	return s
}

func (p *natsProbe) close() { p.nc.Close() }
