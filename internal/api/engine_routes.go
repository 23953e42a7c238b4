package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"

	"github.com/ccevents/ccevents/internal/engine"
	"github.com/ccevents/ccevents/internal/jsonerr"
	"github.com/ccevents/ccevents/internal/shorten"
)

// engineRoutes serves every engine command that has a REST route
// (engine.Commands, declared in internal/engine/commands.go): queues,
// recipients and their status, calls (for a telephony adapter), wiretaps,
// the account snapshot and its statistics. Each handler reads the
// command's request from the path and the body, runs it through the
// engine Service and answers its reply, or maps the engine's refusal to
// 400/404/409/503 with the engine's sentence. Commands that share a route
// are told apart by the body's "action".
func (s *Server) engineRoutes(mux *router) {
	const acc = "/v2/accounts/{ACCOUNT_ID}"
	var patterns []string
	shared := map[string][]engine.AnyCommand{}
	for _, c := range engine.Commands() {
		if rt := c.Route(); rt != nil {
			p := rt.Method + " " + acc + rt.Path
			if shared[p] == nil {
				patterns = append(patterns, p)
			}
			shared[p] = append(shared[p], c)
		}
	}
	for _, p := range patterns {
		if cmds := shared[p]; len(cmds) == 1 && cmds[0].Route().Action == "" {
			mux.HandleFunc(p, s.accountScoped(s.serveCommand(cmds[0])))
		} else {
			mux.HandleFunc(p, s.accountScoped(s.serveActions(p, cmds)))
		}
	}
}

// errAnswered means the request was already answered with its problem.
var errAnswered = errors.New("answered")

// serveCommand serves a command on a route of its own.
func (s *Server) serveCommand(c engine.AnyCommand) accountHandler {
	rt := c.Route()
	decode := decodeData
	if rt.OptionalBody {
		decode = decodeOptionalData
	}
	return func(w http.ResponseWriter, r *http.Request, accountID string) {
		args, err := c.DecodeArgs(pathSlots(r, rt), func(v any) error {
			if !decode(w, r, v) {
				return errAnswered
			}
			return nil
		})
		if err == nil {
			s.runCommand(w, r, accountID, c, args)
		}
	}
}

// serveActions serves the commands that share a route, such as POST
// /wiretaps with action start or stop: they take the same request, read
// once, and its "action" picks the command.
func (s *Server) serveActions(pattern string, cmds []engine.AnyCommand) accountHandler {
	actions := make([]string, len(cmds))
	sample, _ := cmds[0].DecodeArgs(engine.Slots{}, func(any) error { return nil })
	for i, c := range cmds {
		if _, _, err := c.EncodeArgs(sample); err != nil || c.Route().Action == "" {
			panic(fmt.Sprintf("api: commands sharing %s need an action each and the same request (%v)", pattern, err))
		}
		actions[i] = strconv.Quote(c.Route().Action)
	}
	rt := cmds[0].Route()
	return func(w http.ResponseWriter, r *http.Request, accountID string) {
		raw, ok := readDataObject(w, r)
		if !ok {
			return
		}
		action, rest, err := cutAction(raw)
		if err != nil {
			writeError(w, http.StatusBadRequest, "request data: "+jsonerr.Describe(err, jsonerr.Doc{Name: "data"}))
			return
		}
		args, err := cmds[0].DecodeArgs(pathSlots(r, rt), func(v any) error {
			if !decodeDataObject(w, rest, v) {
				return errAnswered
			}
			return nil
		})
		if err != nil {
			return
		}
		for _, c := range cmds {
			if c.Route().Action == action {
				s.runCommand(w, r, accountID, c, args)
				return
			}
		}
		writeError(w, http.StatusBadRequest, "action must be "+strings.Join(actions, " or ")+`, got "`+engineTruncate(action)+`"`)
	}
}

// cutAction splits a request's "action" from the rest of its data, which
// keeps its order (so the first bad field is the one reported).
func cutAction(raw json.RawMessage) (action string, rest json.RawMessage, err error) {
	var a struct {
		Action string `json:"action"`
	}
	if err := json.Unmarshal(raw, &a); err != nil {
		return "", nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	if _, err := dec.Token(); err != nil { // {
		return "", nil, err
	}
	rest = append(rest, '{')
	for dec.More() {
		key, err := dec.Token()
		if err != nil {
			return "", nil, err
		}
		var value json.RawMessage
		if err := dec.Decode(&value); err != nil {
			return "", nil, err
		}
		name, _ := key.(string)
		if strings.EqualFold(name, "action") { // as encoding/json matches names
			continue
		}
		if len(rest) > 1 {
			rest = append(rest, ',')
		}
		quoted, _ := json.Marshal(name)
		rest = append(append(append(rest, quoted...), ':'), value...)
	}
	return a.Action, append(rest, '}'), nil
}

// pathSlots is the id the request's path names for a route.
func pathSlots(r *http.Request, rt *engine.Route) engine.Slots {
	return engine.Slots{ID: r.PathValue(rt.PathParam())}
}

// runCommand runs a command, and its route's Then, and answers the last
// reply.
func (s *Server) runCommand(w http.ResponseWriter, r *http.Request, accountID string, c engine.AnyCommand, args any) {
	reply, err := s.cfg.Engine.Serve(r.Context(), accountID, c, args)
	if then := c.Route().Then; err == nil && then != nil {
		var thenArgs any
		if thenArgs, err = then.DecodeArgs(pathSlots(r, c.Route()), nil); err == nil {
			reply, err = s.cfg.Engine.Serve(r.Context(), accountID, then, thenArgs)
		}
	}
	if err != nil {
		s.writeEngineError(w, r, err)
		return
	}
	status := http.StatusOK
	if c.Route().Created {
		status = http.StatusCreated
	}
	writeData(w, status, reply)
}

// writeEngineError answers with the status an engine refusal stands for.
func (s *Server) writeEngineError(w http.ResponseWriter, r *http.Request, err error) {
	var ee *engine.Error
	if errors.As(err, &ee) {
		status := map[engine.Kind]int{
			engine.KindInvalid:     http.StatusBadRequest,
			engine.KindNotFound:    http.StatusNotFound,
			engine.KindConflict:    http.StatusConflict,
			engine.KindUnavailable: http.StatusServiceUnavailable,
		}[ee.Kind]
		if status == 0 {
			status = http.StatusInternalServerError
		}
		if status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", "1")
		}
		writeError(w, status, ee.Message)
		return
	}
	if r.Context().Err() != nil {
		return // the client went away; nobody reads an answer
	}
	s.log.Error("engine request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	writeError(w, http.StatusInternalServerError, "internal error; the request may not have been applied")
}

// decodeOptionalData is decodeData for requests whose body may be left out.
func decodeOptionalData(w http.ResponseWriter, r *http.Request, dst any) bool {
	if r.ContentLength == 0 {
		return true
	}
	return decodeData(w, r, dst)
}

// engineTruncate keeps a user-supplied value short enough to quote in an error.
func engineTruncate(v string) string { return shorten.String(v, 40) }
