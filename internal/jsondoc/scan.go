package jsondoc

import (
	"encoding/binary"
	"math/bits"
)

// maxDepth is the deepest nesting of arrays and objects accepted, the same
// limit encoding/json applies.
const maxDepth = 10000

// stackWords is the size of a container stack able to hold maxDepth levels,
// one bit per level.
const stackWords = (maxDepth + 63) / 64

// SWAR constants: one bit per byte lane.
const (
	lanesLow  = 0x0101010101010101
	lanesHigh = 0x8080808080808080
)

// Byte classes.
var (
	// isSpace: the four whitespace characters of RFC 8259.
	isSpace = [256]bool{' ': true, '\t': true, '\n': true, '\r': true}
	// strStop: bytes that end a run of plain string content.
	strStop = func() (t [256]bool) {
		for c := 0; c < 0x20; c++ {
			t[c] = true
		}
		t['"'], t['\\'] = true, true
		return t
	}()
	// scalarEnd: bytes that end a number or literal in valid JSON.
	scalarEnd = [256]bool{' ': true, '\t': true, '\n': true, '\r': true, ',': true, '}': true, ']': true}
	// structural: what skipValue looks for inside containers (1 string,
	// 2 opening bracket, 3 closing bracket).
	structural = [256]uint8{'"': 1, '{': 2, '[': 2, '}': 3, ']': 3}
	// isHex: hexadecimal digits.
	isHex = func() (t [256]bool) {
		for _, c := range "0123456789abcdefABCDEF" {
			t[c] = true
		}
		return t
	}()
)

// stopMask returns a word with the high bit set in the lane of every byte of
// x that is '"', '\\' or a control character, possibly plus spurious bits in
// lanes above the first such byte. The lowest set bit is always exact.
func stopMask(x uint64) uint64 {
	q := x ^ (lanesLow * '"')
	s := x ^ (lanesLow * '\\')
	return (((q - lanesLow) &^ q) | ((s - lanesLow) &^ s) | ((x - lanesLow*0x20) &^ x)) & lanesHigh
}

func skipSpace(b []byte, i int) int {
	for i < len(b) && isSpace[b[i]] {
		i++
	}
	return i
}

// trimSpace returns b without leading and trailing JSON whitespace.
func trimSpace(b []byte) []byte {
	i, j := 0, len(b)
	for i < j && isSpace[b[i]] {
		i++
	}
	for j > i && isSpace[b[j-1]] {
		j--
	}
	return b[i:j]
}

// Validate reports whether raw is exactly one well-formed JSON document
// (RFC 8259), optionally surrounded by whitespace. The error, if any, is a
// *SyntaxError. Validate does not check that strings are valid UTF-8 (like
// encoding/json.Valid) and rejects nesting deeper than 10000 levels. It does
// not allocate for valid input.
func Validate(raw []byte) error {
	if err := validate(raw); err != nil {
		return err
	}
	return nil
}

func validate(raw []byte) *SyntaxError {
	i, err := scanNested(raw, 0, maxDepth)
	if err != nil {
		return err
	}
	return checkTrailing(raw, i)
}

// scanNested is scanValue with a stack for any depth up to limit: a small
// one first, one for the deepest nesting when the value needs it.
func scanNested(b []byte, i, limit int) (int, *SyntaxError) {
	var stk [1]uint64
	end, err := scanValue(b, i, stk[:], limit)
	if err == errStackFull {
		var deep [stackWords]uint64
		end, err = scanValue(b, i, deep[:], limit)
	}
	return end, err
}

func checkTrailing(b []byte, i int) *SyntaxError {
	i = skipSpace(b, i)
	if i < len(b) {
		return errChar(b, i, " after top-level value")
	}
	return nil
}

// errStackFull is returned by scanValue when its stack has no room for
// another level although the depth limit is not reached: the caller retries
// with a larger stack. It never escapes the package.
var errStackFull = &SyntaxError{Msg: "internal: container stack full"}

// scanValue validates the JSON value that starts at b[i], after optional
// whitespace, and returns the offset just past it. stk records one bit per
// open container (set for objects); limit is the deepest nesting allowed.
func scanValue(b []byte, i int, stk []uint64, limit int) (int, *SyntaxError) {
	depth := 0
	var err *SyntaxError
value:
	if i < len(b) && isSpace[b[i]] {
		i = skipSpace(b, i)
	}
	if i >= len(b) {
		return i, errEnd(i)
	}
	switch b[i] {
	case '"':
		// Fast path for plain content; scanString does the rest.
		i = skipPlain(b, i+1)
		if i < len(b) && b[i] == '"' {
			i++
		} else if i, _, err = scanString(b, i); err != nil {
			return i, err
		}
	case '{':
		if depth >= limit {
			return i, errTooDeep(i)
		}
		if depth>>6 >= len(stk) {
			return i, errStackFull
		}
		stk[depth>>6] |= 1 << (depth & 63)
		depth++
		i++
		if i < len(b) && isSpace[b[i]] {
			i = skipSpace(b, i)
		}
		if i < len(b) && b[i] == '}' {
			i++
			depth--
			break
		}
		goto key
	case '[':
		if depth >= limit {
			return i, errTooDeep(i)
		}
		if depth>>6 >= len(stk) {
			return i, errStackFull
		}
		stk[depth>>6] &^= 1 << (depth & 63)
		depth++
		i++
		if i < len(b) && isSpace[b[i]] {
			i = skipSpace(b, i)
		}
		if i < len(b) && b[i] == ']' {
			i++
			depth--
			break
		}
		goto value
	case 't':
		if len(b)-i < 4 || b[i+1] != 'r' || b[i+2] != 'u' || b[i+3] != 'e' {
			return i, errLiteral(b, i, "true")
		}
		i += 4
	case 'f':
		if len(b)-i < 5 || b[i+1] != 'a' || b[i+2] != 'l' || b[i+3] != 's' || b[i+4] != 'e' {
			return i, errLiteral(b, i, "false")
		}
		i += 5
	case 'n':
		if len(b)-i < 4 || b[i+1] != 'u' || b[i+2] != 'l' || b[i+3] != 'l' {
			return i, errLiteral(b, i, "null")
		}
		i += 4
	default:
		if i, err = scanNumber(b, i); err != nil {
			return i, err
		}
	}

	// A value is complete: close containers until one continues.
	for {
		if depth == 0 {
			return i, nil
		}
		if i < len(b) && isSpace[b[i]] {
			i = skipSpace(b, i)
		}
		if i >= len(b) {
			return i, errEnd(i)
		}
		c := b[i]
		top := depth - 1
		inObject := stk[top>>6]&(1<<(top&63)) != 0
		if c == ',' {
			i++
			if inObject {
				goto key
			}
			goto value
		}
		if inObject && c == '}' || !inObject && c == ']' {
			i++
			depth--
			continue
		}
		if inObject {
			return i, errChar(b, i, " after object member; want ',' or '}'")
		}
		return i, errChar(b, i, " after array element; want ',' or ']'")
	}

key:
	if i < len(b) && isSpace[b[i]] {
		i = skipSpace(b, i)
	}
	if i >= len(b) {
		return i, errEnd(i)
	}
	if b[i] != '"' {
		return i, errChar(b, i, "; want a string as object key")
	}
	i = skipPlain(b, i+1)
	if i < len(b) && b[i] == '"' {
		i++
	} else if i, _, err = scanString(b, i); err != nil {
		return i, err
	}
	if i < len(b) && isSpace[b[i]] {
		i = skipSpace(b, i)
	}
	if i >= len(b) {
		return i, errEnd(i)
	}
	if b[i] != ':' {
		return i, errChar(b, i, " after object key; want ':'")
	}
	i++
	goto value
}

func errTooDeep(off int) *SyntaxError {
	return &SyntaxError{Offset: off, Msg: "nesting deeper than 10000 levels"}
}

func errLiteral(b []byte, i int, lit string) *SyntaxError {
	for k := 1; k < len(lit); k++ {
		if i+k >= len(b) || b[i+k] != lit[k] {
			return errChar(b, i+k, " in literal "+lit)
		}
	}
	return errChar(b, i, "")
}

// skipPlain returns the offset of the first byte at or after b[i] that
// stopMask flags, or of a byte near the end of b that it has not checked:
// b[i0:i] is plain string content either way.
func skipPlain(b []byte, i int) int {
	for len(b)-i >= 8 {
		if m := stopMask(binary.LittleEndian.Uint64(b[i:])); m != 0 {
			return i + bits.TrailingZeros64(m)>>3
		}
		i += 8
	}
	return i
}

// scanString validates string content starting just after the opening quote.
// It returns the offset just past the closing quote and whether the content
// contains escape sequences.
func scanString(b []byte, i int) (int, bool, *SyntaxError) {
	esc := false
	for {
		// Skip plain content eight bytes at a time, then byte by byte near
		// the end of the input.
		for len(b)-i >= 8 {
			if m := stopMask(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				goto stop
			}
			i += 8
		}
		for i < len(b) && !strStop[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, esc, errEnd(i)
		}
	stop:
		switch c := b[i]; c {
		case '"':
			return i + 1, esc, nil
		case '\\':
			esc = true
			if i+1 >= len(b) {
				return i + 1, esc, errEnd(i + 1)
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				for k := i + 2; k < i+6; k++ {
					if k >= len(b) {
						return k, esc, errEnd(k)
					}
					if !isHex[b[k]] {
						return k, esc, errChar(b, k, " in \\u escape; want a hex digit")
					}
				}
				i += 6
			default:
				return i + 1, esc, errChar(b, i+1, " in escape sequence")
			}
		default:
			return i, esc, &SyntaxError{Offset: i, Msg: "control character " + quoteByte(c) + " in string; escape it"}
		}
	}
}

// scanNumber validates a number starting at b[i] and returns the offset just
// past it.
func scanNumber(b []byte, i int) (int, *SyntaxError) {
	if b[i] == '-' {
		i++
		if i >= len(b) {
			return i, errEnd(i)
		}
	}
	switch c := b[i]; {
	case c == '0':
		i++
	case c >= '1' && c <= '9':
		i++
		for i < len(b) && b[i]-'0' <= 9 {
			i++
		}
	default:
		if i > 0 && b[i-1] == '-' {
			return i, errChar(b, i, " in number; want a digit")
		}
		return i, errChar(b, i, "; want a value")
	}
	if i < len(b) && b[i] == '.' {
		i++
		if i >= len(b) {
			return i, errEnd(i)
		}
		if b[i]-'0' > 9 {
			return i, errChar(b, i, " in number; want a digit after '.'")
		}
		for i < len(b) && b[i]-'0' <= 9 {
			i++
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		if i >= len(b) {
			return i, errEnd(i)
		}
		if b[i]-'0' > 9 {
			return i, errChar(b, i, " in number; want a digit in the exponent")
		}
		for i < len(b) && b[i]-'0' <= 9 {
			i++
		}
	}
	return i, nil
}

// The skip functions below move over values already known to be valid
// (validated input, or text this package produced). They assume validity
// and do no checking beyond what keeps them in bounds.

// skipString returns the offset of the closing quote of the string whose
// content starts at b[i], and whether the content has escapes.
func skipString(b []byte, i int) (int, bool) {
	esc := false
	for {
		for len(b)-i >= 8 {
			if m := stopMask(binary.LittleEndian.Uint64(b[i:])); m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				goto stop
			}
			i += 8
		}
		for i < len(b) && !strStop[b[i]] {
			i++
		}
		if i >= len(b) {
			return i, esc
		}
	stop:
		if b[i] == '"' {
			return i, esc
		}
		// A backslash (control characters cannot occur): skip the escaped
		// character; the hex digits of \u need no special care.
		esc = true
		i += 2
	}
}

// skipValue returns the offset just past the valid value starting at b[i].
func skipValue(b []byte, i int) int {
	switch b[i] {
	case '"':
		e, _ := skipString(b, i+1)
		return e + 1
	case '{', '[':
		depth := 0
		for i < len(b) {
			for structural[b[i]] == 0 {
				i++ // valid text always ends with a closing bracket
			}
			switch structural[b[i]] {
			case 1:
				i, _ = skipString(b, i+1)
			case 2:
				depth++
			default:
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return i
	default:
		for i < len(b) && !scalarEnd[b[i]] {
			i++
		}
		return i
	}
}

// nextMember reads the next member of the valid object b, looking from b[i]
// on (i is just past the '{' or the previous member's value). The key
// content, between the quotes, is b[ks:ke], escaped when esc; the value is
// b[vs:ve]. ok is false at the end of the object.
func nextMember(b []byte, i int) (ks, ke, vs, ve int, esc, ok bool) {
	i = skipSpace(b, i)
	if b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	if b[i] != '"' {
		return 0, 0, 0, 0, false, false // '}'
	}
	ks = i + 1
	ke, esc = skipString(b, ks)
	i = skipSpace(b, ke+1) // at ':'
	vs = skipSpace(b, i+1)
	return ks, ke, vs, skipValue(b, vs), esc, true
}

// nextElem reads the next element of the valid array b, looking from b[i]
// on (i is just past the '[' or the previous element). The element is
// b[vs:ve]; ok is false at the end of the array.
func nextElem(b []byte, i int) (vs, ve int, ok bool) {
	i = skipSpace(b, i)
	if b[i] == ',' {
		i = skipSpace(b, i+1)
	}
	if b[i] == ']' {
		return 0, 0, false
	}
	return i, skipValue(b, i), true
}
