package loadtest

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os/exec"
	"sync"
	"time"
)

// The parent drives each child process with one JSON request per line on
// the child's stdin and reads exactly one JSON response line per request
// from its stdout. The plan (with the auth token) goes over the pipe, never
// on the command line.

type childRequest struct {
	Op       string    `json:"op"` // plan, connect, mark, finish
	Plan     *plan     `json:"plan,omitempty"`
	Expected *expected `json:"expected,omitempty"`
}

type childResponse struct {
	Error  string       `json:"error,omitempty"`
	Setup  *setupResult `json:"setup,omitempty"`
	Mark   *markResult  `json:"mark,omitempty"`
	Final  *finalResult `json:"final,omitempty"`
	Ready  bool         `json:"ready,omitempty"`
	Closed bool         `json:"closed,omitempty"`
}

// ServeChild runs this process as one of the load tool's child processes:
// it reads requests from in, holds its share of the connections and writes
// results to out. It returns when in is closed or ctx ends, after closing
// every connection.
func ServeChild(ctx context.Context, in io.Reader, out io.Writer, log *slog.Logger) error {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	dec := json.NewDecoder(bufio.NewReader(in))
	enc := json.NewEncoder(out)
	var g *group
	defer func() {
		if g != nil {
			g.close()
		}
	}()
	for {
		var req childRequest
		if err := dec.Decode(&req); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			return fmt.Errorf("read request from the parent: %w", err)
		}
		var resp childResponse
		var err error
		switch {
		case req.Op == "plan" && req.Plan != nil && g == nil:
			g, err = newGroup(*req.Plan, log)
			resp.Ready = err == nil
		case g == nil:
			err = errors.New("no plan received before " + req.Op)
		case req.Op == "connect":
			var r setupResult
			r, err = g.connect(ctx)
			resp.Setup = &r
		case req.Op == "mark":
			var r markResult
			r, err = g.mark(ctx)
			resp.Mark = &r
		case req.Op == "finish" && req.Expected != nil:
			var r finalResult
			r, err = g.finish(ctx, *req.Expected)
			resp.Final = &r
		default:
			err = fmt.Errorf("unknown request %q", req.Op)
		}
		if err != nil {
			resp.Error = err.Error()
		}
		if err := enc.Encode(resp); err != nil {
			return fmt.Errorf("write response to the parent: %w", err)
		}
	}
}

// child is a fleet run by a child process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	enc   *json.Encoder
	dec   *json.Decoder
	mu    sync.Mutex
	done  chan struct{}
}

func startChild(ctx context.Context, spawn func(context.Context) *exec.Cmd, p plan) (*child, error) {
	cmd := spawn(ctx)
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return nil, fmt.Errorf("start load process: %w", err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return nil, fmt.Errorf("start load process: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start load process %s: %w", cmd.Path, err)
	}
	c := &child{cmd: cmd, stdin: stdin, enc: json.NewEncoder(stdin), dec: json.NewDecoder(bufio.NewReader(stdout)), done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(c.done) }()
	var resp childResponse
	if err := c.call(childRequest{Op: "plan", Plan: &p}, &resp); err != nil {
		c.close()
		return nil, err
	}
	return c, nil
}

func (c *child) call(req childRequest, resp *childResponse) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := c.enc.Encode(req); err != nil {
		return fmt.Errorf("load process %d: send %s: %w", c.cmd.Process.Pid, req.Op, err)
	}
	if err := c.dec.Decode(resp); err != nil {
		return fmt.Errorf("load process %d stopped answering (%s): %w", c.cmd.Process.Pid, req.Op, err)
	}
	if resp.Error != "" {
		return fmt.Errorf("load process %d: %s", c.cmd.Process.Pid, resp.Error)
	}
	return nil
}

func (c *child) connect(context.Context) (setupResult, error) {
	return ask(c, childRequest{Op: "connect"}, func(r *childResponse) *setupResult { return r.Setup }, "set-up result")
}

func (c *child) mark(context.Context) (markResult, error) {
	return ask(c, childRequest{Op: "mark"}, func(r *childResponse) *markResult { return r.Mark }, "counters")
}

func (c *child) finish(_ context.Context, exp expected) (finalResult, error) {
	return ask(c, childRequest{Op: "finish", Expected: &exp}, func(r *childResponse) *finalResult { return r.Final }, "final counts")
}

// ask sends req and returns the part of the response that answers it,
// which a well-behaved child always fills in.
func ask[T any](c *child, req childRequest, answer func(*childResponse) *T, what string) (T, error) {
	var resp childResponse
	var zero T
	if err := c.call(req, &resp); err != nil {
		return zero, err
	}
	a := answer(&resp)
	if a == nil {
		return zero, errors.New("load process sent no " + what)
	}
	return *a, nil
}

// close ends the child: closing stdin asks it to close its connections and
// exit; one that does not within 10s is killed.
func (c *child) close() {
	_ = c.stdin.Close()
	select {
	case <-c.done:
	case <-time.After(10 * time.Second):
		_ = c.cmd.Process.Kill()
		<-c.done
	}
}
