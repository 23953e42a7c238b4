package event

import "strconv"

// ValidationError says which field of an event does not fit the catalogue
// and what was expected, in words meant for the person who sent it.
type ValidationError struct {
	// Field is the payload field at fault ("position", "active_sessions[].session_id"),
	// "routing_key" for the subject, or "" for the payload as a whole.
	Field string
	// Message says what was expected and what was found.
	Message string
}

// Error returns e.g. `field "position": expected an integer ≥ 1, got "abc"`.
func (e *ValidationError) Error() string {
	if e.Field == "" {
		return e.Message
	}
	return "field \"" + e.Field + "\": " + e.Message
}

// ValidationErrors is every mistake found in one payload, in a stable
// order (catalogue order, then unknown fields by name); Validate returns it
// when there is more than one, so a producer can fix them all at once.
// errors.As finds the first as a *ValidationError.
type ValidationErrors []*ValidationError

// Error returns the first mistake and how many more there are.
func (es ValidationErrors) Error() string {
	if len(es) == 1 {
		return es[0].Error()
	}
	more := "s"
	if len(es) == 2 {
		more = ""
	}
	return es[0].Error() + " (and " + strconv.Itoa(len(es)-1) + " more mistake" + more + ")"
}

// Unwrap lets errors.As and errors.Is see each mistake.
func (es ValidationErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}
