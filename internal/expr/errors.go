package expr

import "strconv"

// Error is a compile error. Pos is the byte offset in the source at which the
// problem was found; the config loader maps it to a line and column. Hint,
// when not empty, suggests a fix.
type Error struct {
	Pos  int
	Msg  string
	Hint string
}

// Error formats the error as "col N: msg (hint)", where N is Pos+1: the
// column for a single-line source.
func (e *Error) Error() string {
	s := "col " + strconv.Itoa(e.Pos+1) + ": " + e.Msg
	if e.Hint != "" {
		s += " (" + e.Hint + ")"
	}
	return s
}

// EvalError is a runtime error: a type mismatch, a division by zero, a
// malformed value. Pos is the byte offset in the source of the operator or
// function at fault. Errors returned by Env.Field are passed through
// unchanged instead.
type EvalError struct {
	Pos int
	Msg string
}

// Error formats the error as "col N: msg", where N is Pos+1.
func (e *EvalError) Error() string {
	return "col " + strconv.Itoa(e.Pos+1) + ": " + e.Msg
}
