package engine

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"slices"
	"strings"
)

// Service runs engine commands, one account at a time. *Engine runs them
// for the accounts it runs; cluster.Router runs each where its account
// runs; sim.RESTDriver sends each through the REST API. Callers use a
// command's Call:
//
//	q, err := engine.CreateQueue.Call(ctx, svc, accountID, engine.QueueConfig{Name: "Sales"})
type Service interface {
	// Serve runs cmd with args, a value of cmd's request type, for an
	// account and returns its reply, a value of cmd's reply type.
	// Refusals are *Error values.
	Serve(ctx context.Context, accountID string, cmd AnyCommand, args any) (reply any, err error)
}

var _ Service = (*Engine)(nil)

// Serve runs a command on this engine; see Service. The account must run
// here (see Serves); use cluster.Router to reach any account.
func (e *Engine) Serve(ctx context.Context, accountID string, cmd AnyCommand, args any) (any, error) {
	return cmd.run(ctx, e, accountID, args)
}

// A Command is one thing the engine does for an account, declared once in
// commands.go: its name, its request type Req and reply type Resp, the
// Engine method it runs and, where it has one, its REST route. The rest
// is derived from the declaration: a Service runs it, package cluster
// forwards it to the engine node that runs the account under its name,
// the command metrics count it by name, package api serves it on its
// route, and sim.RESTDriver calls that route.
type Command[Req, Resp any] struct {
	name  string
	route *Route
	// method runs the command on the engine that runs the account.
	method func(e *Engine, ctx context.Context, accountID string, req Req) (Resp, error)
	// pathField is the index of Req's field tagged path:"NAME", the id the
	// route's path names; -1 when there is none.
	pathField int
	// hasBody: Req has fields that travel as JSON (every exported field
	// but the path's).
	hasBody bool
}

// Call runs the command for an account on svc and returns its reply.
func (c *Command[Req, Resp]) Call(ctx context.Context, svc Service, accountID string, req Req) (Resp, error) {
	v, err := svc.Serve(ctx, accountID, c, req)
	resp, _ := v.(Resp)
	return resp, err
}

// AnyCommand is a Command of whatever request and reply types: what a
// Service is handed and Commands lists. Only this package declares
// commands.
type AnyCommand interface {
	// Name names the command between engine nodes and in the command
	// metrics (ccevents_engine_command_duration_seconds{command}):
	// create_queue, accept, …
	Name() string
	// Route is where the REST API serves the command; nil when it does not.
	Route() *Route
	// EncodeArgs splits a request into the id its route's path names (""
	// when none) and the JSON of the rest (nil when there is no rest).
	EncodeArgs(args any) (id string, body []byte, err error)
	// DecodeArgs builds a request from the id its route's path names and,
	// when the request has more than that, decode, which fills the
	// pointer to the request it is given (from JSON).
	DecodeArgs(id string, decode func(req any) error) (args any, err error)
	// DecodeReply reads a reply from its JSON.
	DecodeReply(data []byte) (reply any, err error)

	run(ctx context.Context, e *Engine, accountID string, args any) (any, error)
}

// Route is where the REST API serves a command, under
// /v2/accounts/{ACCOUNT_ID}.
type Route struct {
	// Method and Path, e.g. POST /calls/{SESSION_ID}/accept. A {NAME} in
	// the path fills the request's field tagged path:"NAME" (and
	// json:"-": it never comes from the body).
	Method, Path string
	// Created answers 201 Created instead of 200 OK.
	Created bool
	// OptionalBody lets a request leave its body out; the command then
	// runs with the request's zero values and the path's id.
	OptionalBody bool
	// Action, when set, shares the route with the other commands of the
	// same method and path, which take the same request type: the body's
	// "action" field picks the one that runs.
	Action string
}

// PathParam is the name of the path's {NAME}, or "" when it has none.
func (rt *Route) PathParam() string {
	_, rest, ok := strings.Cut(rt.Path, "{")
	if !ok {
		return ""
	}
	name, _, _ := strings.Cut(rest, "}")
	return name
}

// commands lists every command in the order declared; declare adds to it
// while the package initializes, and nothing changes it afterwards.
var commands []AnyCommand

// Commands lists every command the engine serves, in the order declared.
func Commands() []AnyCommand { return slices.Clone(commands) }

// CommandNamed returns the command called name, or an error for whoever
// sent the name.
func CommandNamed(name string) (AnyCommand, error) {
	for _, c := range commands {
		if c.Name() == name {
			return c, nil
		}
	}
	return nil, invalidf("this engine node does not know the command %q; upgrade it", short(name))
}

// declare declares a command (see Command). It panics on a declaration
// that cannot work, so a mistake stops every test at once.
func declare[Req, Resp any](name string, route *Route, method func(*Engine, context.Context, string, Req) (Resp, error)) *Command[Req, Resp] {
	c := &Command[Req, Resp]{name: name, route: route, method: method, pathField: -1}
	if slices.ContainsFunc(commands, func(o AnyCommand) bool { return o.Name() == name }) {
		panic("engine: command " + name + " declared twice")
	}
	param := ""
	if route != nil {
		param = route.PathParam()
	}
	t := reflect.TypeFor[Req]()
	if t.Kind() != reflect.Struct {
		panic(fmt.Sprintf("engine: command %s: its request type %s is not a struct", name, t))
	}
	for i := range t.NumField() {
		f := t.Field(i)
		switch p, tagged := f.Tag.Lookup("path"); {
		case tagged:
			if p != param || f.Type.Kind() != reflect.String || f.Tag.Get("json") != "-" {
				panic(fmt.Sprintf("engine: command %s: field %s tagged path:%q needs a string field tagged json:\"-\" and a route with {%s}", name, f.Name, p, p))
			}
			c.pathField = i
		case f.IsExported() && f.Tag.Get("json") != "-":
			c.hasBody = true
		}
	}
	if param != "" && c.pathField < 0 {
		panic(fmt.Sprintf("engine: command %s: its route names {%s} but %s has no field tagged path:%q", name, param, t, param))
	}
	commands = append(commands, c)
	return c
}

// Name implements AnyCommand.
func (c *Command[Req, Resp]) Name() string { return c.name }

// Route implements AnyCommand.
func (c *Command[Req, Resp]) Route() *Route { return c.route }

// EncodeArgs implements AnyCommand.
func (c *Command[Req, Resp]) EncodeArgs(args any) (string, []byte, error) {
	req, err := c.args(args)
	if err != nil {
		return "", nil, err
	}
	var id string
	if c.pathField >= 0 {
		id = reflect.ValueOf(req).Field(c.pathField).String()
	}
	if !c.hasBody {
		return id, nil, nil
	}
	body, err := json.Marshal(req)
	if err != nil {
		return "", nil, fmt.Errorf("encode %s request: %w", c.name, err)
	}
	return id, body, nil
}

// DecodeArgs implements AnyCommand.
func (c *Command[Req, Resp]) DecodeArgs(id string, decode func(req any) error) (any, error) {
	var req Req
	if c.hasBody {
		if err := decode(&req); err != nil {
			return nil, err
		}
	}
	if c.pathField >= 0 {
		reflect.ValueOf(&req).Elem().Field(c.pathField).SetString(id)
	}
	return req, nil
}

// DecodeReply implements AnyCommand.
func (c *Command[Req, Resp]) DecodeReply(data []byte) (any, error) {
	var resp Resp
	if len(data) > 0 {
		if err := json.Unmarshal(data, &resp); err != nil {
			return nil, fmt.Errorf("decode %s reply: %w", c.name, err)
		}
	}
	return resp, nil
}

func (c *Command[Req, Resp]) run(ctx context.Context, e *Engine, accountID string, args any) (any, error) {
	req, err := c.args(args)
	if err != nil {
		return nil, err
	}
	return c.method(e, ctx, accountID, req)
}

// args is args as the command's request type.
func (c *Command[Req, Resp]) args(args any) (Req, error) {
	req, ok := args.(Req)
	if !ok {
		return req, fmt.Errorf("engine: command %s takes a %T, got %T", c.name, req, args)
	}
	return req, nil
}
