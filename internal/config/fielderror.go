package config

// FieldError is a semantic problem with one field of a component's config,
// found by the component's Validate method after decoding. The loader turns
// it into an *Error with the field's position in the file.
type FieldError struct {
	// Field is the YAML key of the offending field within the component's
	// mapping (for example "rotate_bytes").
	Field    string
	Msg      string
	Expected string
	Hint     string
}

func (e *FieldError) Error() string {
	s := e.Field + ": " + e.Msg
	if e.Expected != "" {
		s += " (expected " + e.Expected + ")"
	}
	return s
}
