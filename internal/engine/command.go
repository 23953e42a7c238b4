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
	// answer, for a command declared with declareVoid, is its reply,
	// built from the request wherever the command was called: the engine
	// node sends none.
	answer func(Req) Resp
	// slot is the index of Req's field that travels in each slot of
	// Slots (slotID, slotOther, slotValue), or -1.
	slot [3]int
	// hasBody: Req has fields that travel as JSON (every exported field
	// but the path's).
	hasBody bool
}

// Slots are the parts of a request that travel outside its JSON. ID is
// what its REST path names (the field tagged path:"NAME"), or for a
// command without a route the field tagged wire:"id". Other and Value
// (fields tagged wire:"other" and wire:"value") are read only between
// engine nodes: nodes of the release before commands were declared read
// an accept's recipient, a reject's reason and who hung up from there, so
// they are still filled, beside the JSON, during a rolling upgrade.
type Slots struct {
	ID, Other, Value string
}

const (
	slotID = iota
	slotOther
	slotValue
)

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
	// EncodeArgs splits a request into its Slots and the JSON of the rest
	// (nil when there is no rest).
	EncodeArgs(args any) (Slots, []byte, error)
	// DecodeArgs builds a request from its Slots and, when the request
	// has more than those, decode, which fills the pointer to the request
	// it is given (from JSON). A slot left empty leaves its field as
	// decode filled it.
	DecodeArgs(s Slots, decode func(req any) error) (args any, err error)
	// EncodeReply is the JSON of a reply sent back to whoever called the
	// command; nil for a command whose reply is built from its request.
	EncodeReply(reply any) ([]byte, error)
	// DecodeReply reads the reply to args from its JSON. A list reply is
	// never nil.
	DecodeReply(args any, data []byte) (reply any, err error)

	run(ctx context.Context, e *Engine, accountID string, args any) (any, error)
	// pathOnly: the request is filled by its path's id alone.
	pathOnly() bool
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
	// Then, when set, is run after the command with the same path id,
	// and the route answers its reply: POST /recipients/{id}/sync
	// answers the recipient. It takes nothing but that id.
	Then AnyCommand
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
	c := &Command[Req, Resp]{name: name, route: route, method: method, slot: [3]int{-1, -1, -1}}
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
		if p, tagged := f.Tag.Lookup("path"); tagged {
			if p != param || f.Type.Kind() != reflect.String || f.Tag.Get("json") != "-" {
				panic(fmt.Sprintf("engine: command %s: field %s tagged path:%q needs a string field tagged json:\"-\" and a route with {%s}", name, f.Name, p, p))
			}
			c.slot[slotID] = i
		} else if f.IsExported() && f.Tag.Get("json") != "-" {
			c.hasBody = true
		}
		if w, tagged := f.Tag.Lookup("wire"); tagged {
			s := slices.Index([]string{"id", "other", "value"}, w)
			if s < 0 || c.slot[s] >= 0 || f.Type.Kind() != reflect.String || s == slotID && route != nil {
				panic(fmt.Sprintf("engine: command %s: field %s tagged wire:%q needs a string field, one per slot (id, other or value), and wire:\"id\" only without a route", name, f.Name, w))
			}
			c.slot[s] = i
		}
	}
	if param != "" && c.slot[slotID] < 0 {
		panic(fmt.Sprintf("engine: command %s: its route names {%s} but %s has no field tagged path:%q", name, param, t, param))
	}
	if route != nil && route.Then != nil {
		if then := route.Then; !then.pathOnly() || then.Route() == nil || then.Route().PathParam() != param {
			panic(fmt.Sprintf("engine: command %s: its route's Then (%s) must take nothing but {%s}", name, then.Name(), param))
		}
	}
	commands = append(commands, c)
	return c
}

// declareVoid declares a command whose reply is built from its request
// by answer (the id of what was deleted, the state a call is now in)
// where it was called: the engine node sends none back.
func declareVoid[Req, Resp any](name string, route *Route, method func(*Engine, context.Context, string, Req) error, answer func(Req) Resp) *Command[Req, Resp] {
	c := declare(name, route, func(e *Engine, ctx context.Context, accountID string, req Req) (Resp, error) {
		var zero Resp
		return zero, method(e, ctx, accountID, req)
	})
	c.answer = answer
	return c
}

// none answers a command that answers nothing but success.
func none[Req any](Req) None { return None{} }

// Name implements AnyCommand.
func (c *Command[Req, Resp]) Name() string { return c.name }

// Route implements AnyCommand.
func (c *Command[Req, Resp]) Route() *Route { return c.route }

// EncodeArgs implements AnyCommand.
func (c *Command[Req, Resp]) EncodeArgs(args any) (Slots, []byte, error) {
	req, err := c.args(args)
	if err != nil {
		return Slots{}, nil, err
	}
	var s Slots
	v := reflect.ValueOf(req)
	for i, dst := range []*string{&s.ID, &s.Other, &s.Value} {
		if f := c.slot[i]; f >= 0 {
			*dst = v.Field(f).String()
		}
	}
	if !c.hasBody {
		return s, nil, nil
	}
	body, err := json.Marshal(req)
	if err != nil {
		return Slots{}, nil, fmt.Errorf("encode %s request: %w", c.name, err)
	}
	return s, body, nil
}

// DecodeArgs implements AnyCommand.
func (c *Command[Req, Resp]) DecodeArgs(s Slots, decode func(req any) error) (any, error) {
	var req Req
	if c.hasBody {
		if err := decode(&req); err != nil {
			return nil, err
		}
	}
	v := reflect.ValueOf(&req).Elem()
	for i, src := range []string{s.ID, s.Other, s.Value} {
		if f := c.slot[i]; f >= 0 && src != "" {
			v.Field(f).SetString(src)
		}
	}
	return req, nil
}

// EncodeReply implements AnyCommand.
func (c *Command[Req, Resp]) EncodeReply(reply any) ([]byte, error) {
	if c.answer != nil {
		return nil, nil
	}
	data, err := json.Marshal(reply)
	if err != nil {
		return nil, fmt.Errorf("encode %s reply: %w", c.name, err)
	}
	return data, nil
}

// DecodeReply implements AnyCommand.
func (c *Command[Req, Resp]) DecodeReply(args any, data []byte) (any, error) {
	if c.answer != nil {
		req, err := c.args(args)
		if err != nil {
			return nil, err
		}
		return c.answer(req), nil
	}
	var resp Resp
	if len(data) > 0 {
		if err := json.Unmarshal(data, &resp); err != nil {
			return nil, fmt.Errorf("decode %s reply: %w", c.name, err)
		}
	}
	// Older engine nodes answer an empty list with null.
	if v := reflect.ValueOf(&resp).Elem(); v.Kind() == reflect.Slice && v.IsNil() {
		v.Set(reflect.MakeSlice(v.Type(), 0, 0))
	}
	return resp, nil
}

func (c *Command[Req, Resp]) run(ctx context.Context, e *Engine, accountID string, args any) (any, error) {
	req, err := c.args(args)
	if err != nil {
		return nil, err
	}
	resp, err := c.method(e, ctx, accountID, req)
	if err != nil {
		return nil, err
	}
	if c.answer != nil {
		return c.answer(req), nil
	}
	return resp, nil
}

func (c *Command[Req, Resp]) pathOnly() bool { return !c.hasBody }

// args is args as the command's request type.
func (c *Command[Req, Resp]) args(args any) (Req, error) {
	req, ok := args.(Req)
	if !ok {
		return req, fmt.Errorf("engine: command %s takes a %T, got %T", c.name, req, args)
	}
	return req, nil
}
