package event

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
