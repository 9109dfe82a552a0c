package jsondoc

import (
	"errors"
	"strconv"
	"strings"
)

// SyntaxError describes why a text is not one well-formed JSON document.
type SyntaxError struct {
	// Offset is the byte offset of the problem in the input: the offending
	// byte, or the input length when the input ends too early.
	Offset int
	// Msg says what was wrong there.
	Msg string
}

func (e *SyntaxError) Error() string {
	return "invalid JSON at byte " + strconv.Itoa(e.Offset) + ": " + e.Msg
}

// Errors returned by the editing methods of Doc, wrapped in a *PathError.
var (
	// ErrEmptyPath: Set, Delete and Rename need at least one segment.
	ErrEmptyPath = errors.New("empty path")
	// ErrNotObject: a key segment was applied to a value that is not an
	// object (including a document root that is not an object).
	ErrNotObject = errors.New("value is not an object")
	// ErrNotArray: an index segment was applied to a value that is not an
	// array, or to a missing value (Set creates objects, never arrays).
	ErrNotArray = errors.New("value is not an array")
	// ErrIndexRange: an index segment is beyond the end of its array. Set
	// replaces elements; it does not grow arrays.
	ErrIndexRange = errors.New("array index out of range")
	// ErrInvalidValue: the value given to Set cannot be encoded: an unknown
	// Kind, or an Object/Array whose S is not JSON text of that kind.
	ErrInvalidValue = errors.New("invalid value")
	// ErrMoveIntoSelf: Rename was asked to move a value below itself.
	ErrMoveIntoSelf = errors.New("cannot move a value into itself")
)

// PathError reports an edit that could not be applied. Err is one of the
// sentinel errors above (possibly wrapping a *SyntaxError for
// ErrInvalidValue); match it with errors.Is.
type PathError struct {
	// Path is the path the caller passed, written like a.b[3].c.
	Path string
	// Pos is the index of the failing segment in the path.
	Pos int
	Err error
}

func (e *PathError) Error() string {
	return "jsondoc: path " + e.Path + ": segment " + strconv.Itoa(e.Pos) + ": " + e.Err.Error()
}

func (e *PathError) Unwrap() error { return e.Err }

func pathErr(path []Seg, pos int, err error) error {
	return &PathError{Path: FormatPath(path), Pos: pos, Err: err}
}

// invalidValueError wraps the reason a raw Object/Array value was refused.
type invalidValueError struct{ cause error }

func (e *invalidValueError) Error() string   { return ErrInvalidValue.Error() + ": " + e.cause.Error() }
func (e *invalidValueError) Unwrap() []error { return []error{ErrInvalidValue, e.cause} }

// FormatPath writes a path for humans: keys joined by dots, indexes in
// brackets, keys that are not plain identifiers quoted ("a.b[2][\"x y\"]").
func FormatPath(path []Seg) string {
	var sb strings.Builder
	for i, s := range path {
		switch {
		case s.IsIndex():
			sb.WriteByte('[')
			sb.WriteString(strconv.Itoa(s.Index))
			sb.WriteByte(']')
		case plainKey(s.Key):
			if i > 0 {
				sb.WriteByte('.')
			}
			sb.WriteString(s.Key)
		default:
			sb.WriteByte('[')
			sb.WriteString(strconv.Quote(s.Key))
			sb.WriteByte(']')
		}
	}
	return sb.String()
}

func plainKey(k string) bool {
	if k == "" {
		return false
	}
	for i := 0; i < len(k); i++ {
		c := k[i]
		if !(c == '_' || c == '-' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || i > 0 && c >= '0' && c <= '9') {
			return false
		}
	}
	return true
}

// Error constructors for the scanner. They run only on invalid input, so
// they may allocate.

func errEnd(off int) *SyntaxError {
	return &SyntaxError{Offset: off, Msg: "unexpected end of input"}
}

func errChar(b []byte, off int, context string) *SyntaxError {
	if off >= len(b) {
		return errEnd(off)
	}
	return &SyntaxError{Offset: off, Msg: "unexpected character " + quoteByte(b[off]) + context}
}

func quoteByte(c byte) string {
	if c >= 0x20 && c < 0x7f {
		if c == '\'' {
			return `'\''`
		}
		return "'" + string(rune(c)) + "'"
	}
	const hexDigits = "0123456789abcdef"
	return "byte 0x" + string([]byte{hexDigits[c>>4], hexDigits[c&0xf]})
}
