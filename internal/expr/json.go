package expr

import (
	"bytes"
	"math"
	"strconv"
	"unicode/utf8"

	"github.com/weir-dev/weir/internal/jsondoc"
)

// This file holds the small amount of JSON handling the evaluator needs on
// Object and Array values, whose S is raw JSON text: walking members and
// elements, decoding scalars, and encoding values. The text normally comes
// from an event that jsondoc already validated, so the walkers are lenient;
// malformed text makes them report failure, never panic.

// maxJSONDepth bounds recursion when comparing nested values.
const maxJSONDepth = 1000

func skipWS(s []byte, i int) int {
	for i < len(s) {
		switch s[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// skipString returns the index just past the string literal whose opening
// quote is at s[i], or -1.
func skipString(s []byte, i int) int {
	for j := i + 1; j < len(s); j++ {
		switch s[j] {
		case '"':
			return j + 1
		case '\\':
			j++
		}
	}
	return -1
}

// skipValue returns the index just past the JSON value starting at s[i], or
// -1 if there is none. It matches brackets without validating content.
func skipValue(s []byte, i int) int {
	if i >= len(s) {
		return -1
	}
	switch c := s[i]; c {
	case '"':
		return skipString(s, i)
	case '{', '[':
		depth := 0
		for i < len(s) {
			switch s[i] {
			case '"':
				i = skipString(s, i)
				if i < 0 {
					return -1
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					return i + 1
				}
			}
			i++
		}
		return -1
	case 't':
		return skipLiteral(s, i, "true")
	case 'f':
		return skipLiteral(s, i, "false")
	case 'n':
		return skipLiteral(s, i, "null")
	default:
		if c != '-' && (c < '0' || c > '9') {
			return -1
		}
		j := i + 1
		for j < len(s) && isNumberByte(s[j]) {
			j++
		}
		return j
	}
}

func skipLiteral(s []byte, i int, lit string) int {
	if len(s)-i >= len(lit) && string(s[i:i+len(lit)]) == lit {
		return i + len(lit)
	}
	return -1
}

func isNumberByte(c byte) bool {
	return c >= '0' && c <= '9' || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-'
}

// decodeRaw decodes the single JSON value in raw (surrounding whitespace
// allowed). Strings with escapes are decoded into *buf; objects and arrays
// stay raw.
func decodeRaw(raw []byte, buf *[]byte) (jsondoc.Value, bool) {
	i := skipWS(raw, 0)
	end := skipValue(raw, i)
	if end < 0 || skipWS(raw, end) != len(raw) {
		return jsondoc.Value{}, false
	}
	return decodeSpan(raw[i:end], buf)
}

// decodeSpan decodes s, which holds exactly one JSON value as delimited by
// skipValue.
func decodeSpan(s []byte, buf *[]byte) (jsondoc.Value, bool) {
	switch s[0] {
	case '"':
		body := s[1 : len(s)-1]
		if bytes.IndexByte(body, '\\') < 0 {
			return jsondoc.StringValue(body), true
		}
		start := len(*buf)
		out, ok := unescapeJSON(*buf, body)
		*buf = out
		return jsondoc.StringValue(out[start:len(out):len(out)]), ok
	case '{':
		return jsondoc.RawValue(jsondoc.Object, s), true
	case '[':
		return jsondoc.RawValue(jsondoc.Array, s), true
	case 't':
		return jsondoc.BoolValue(true), true
	case 'f':
		return jsondoc.BoolValue(false), true
	case 'n':
		return jsondoc.NullValue(), true
	}
	return parseNumber(s)
}

// parseNumber parses JSON number text: an Int when it has no fraction or
// exponent and fits in int64, a Float otherwise.
func parseNumber(s []byte) (jsondoc.Value, bool) {
	if !bytes.ContainsAny(s, ".eE") {
		if i, ok := parseInt(s); ok {
			return jsondoc.IntValue(i), true
		}
	}
	f, ok := parseFloat(s)
	return jsondoc.FloatValue(f), ok
}

// parseInt parses optionally signed decimal digits without allocating.
func parseInt(b []byte) (int64, bool) {
	neg := false
	i := 0
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		i = 1
	}
	if i == len(b) {
		return 0, false
	}
	var u uint64
	for ; i < len(b); i++ {
		d := b[i] - '0'
		if d > 9 {
			return 0, false
		}
		if u > (1<<63)/10 {
			return 0, false
		}
		u = u*10 + uint64(d)
		if u > 1<<63 {
			return 0, false
		}
	}
	if neg {
		return -int64(u), true // -(1<<63) wraps to math.MinInt64, as wanted
	}
	if u > math.MaxInt64 {
		return 0, false
	}
	return int64(u), true
}

// parseFloat parses a finite float. It does not allocate for inputs of up to
// 32 bytes.
func parseFloat(b []byte) (float64, bool) {
	f, err := strconv.ParseFloat(string(b), 64)
	return f, err == nil && !math.IsInf(f, 0) && !math.IsNaN(f)
}

// unescapeJSON appends the decoded form of the body of a JSON string literal
// to dst. Invalid surrogates become U+FFFD; it reports false for a malformed
// escape.
func unescapeJSON(dst, body []byte) ([]byte, bool) {
	for i := 0; i < len(body); {
		c := body[i]
		if c != '\\' {
			j := i + 1
			for j < len(body) && body[j] != '\\' {
				j++
			}
			dst = append(dst, body[i:j]...)
			i = j
			continue
		}
		if i+1 >= len(body) {
			return dst, false
		}
		switch e := body[i+1]; e {
		case '"', '\\', '/', '\'':
			dst = append(dst, e)
		case 'n':
			dst = append(dst, '\n')
		case 't':
			dst = append(dst, '\t')
		case 'r':
			dst = append(dst, '\r')
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'u':
			r, n := decodeU(body[i:])
			if n == 0 {
				return dst, false
			}
			dst = utf8.AppendRune(dst, r)
			i += n
			continue
		default:
			return dst, false
		}
		i += 2
	}
	return dst, true
}

// decodeU decodes a \uXXXX escape (or a surrogate pair of them) at the start
// of s. It returns the rune and the number of bytes consumed, 0 if malformed.
// A lone surrogate decodes to U+FFFD.
func decodeU(s []byte) (rune, int) {
	r, ok := hex4(s)
	if !ok {
		return 0, 0
	}
	if r < 0xD800 || r > 0xDFFF {
		return r, 6
	}
	if r <= 0xDBFF && len(s) >= 12 && s[6] == '\\' && s[7] == 'u' {
		if lo, ok := hex4(s[6:]); ok && lo >= 0xDC00 && lo <= 0xDFFF {
			return 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00), 12
		}
	}
	return utf8.RuneError, 6
}

// hex4 decodes the four hex digits of a \uXXXX escape at the start of s.
func hex4(s []byte) (rune, bool) {
	if len(s) < 6 || s[0] != '\\' || s[1] != 'u' {
		return 0, false
	}
	var r rune
	for _, c := range s[2:6] {
		switch {
		case c >= '0' && c <= '9':
			c -= '0'
		case c >= 'a' && c <= 'f':
			c -= 'a' - 10
		case c >= 'A' && c <= 'F':
			c -= 'A' - 10
		default:
			return 0, false
		}
		r = r<<4 | rune(c)
	}
	return r, true
}

// listIter walks the elements of a raw JSON array or the members of a raw
// JSON object. After next reports false, bad tells whether the text was
// malformed.
type listIter struct {
	s     []byte
	i     int
	close byte
	first bool
	bad   bool
}

func newListIter(v jsondoc.Value) listIter {
	open, close := byte('['), byte(']')
	if v.Kind == jsondoc.Object {
		open, close = '{', '}'
	}
	i := skipWS(v.S, 0)
	if i >= len(v.S) || v.S[i] != open {
		return listIter{bad: true}
	}
	return listIter{s: v.S, i: i + 1, close: close, first: true}
}

// next returns the raw text of the next member key (objects only, with its
// quotes) and value.
func (it *listIter) next() (key, val []byte, ok bool) {
	if it.s == nil {
		return nil, nil, false
	}
	i := skipWS(it.s, it.i)
	if i >= len(it.s) {
		return it.fail()
	}
	if it.s[i] == it.close {
		it.s = nil
		return nil, nil, false
	}
	if !it.first {
		if it.s[i] != ',' {
			return it.fail()
		}
		i = skipWS(it.s, i+1)
	}
	it.first = false
	if it.close == '}' {
		if i >= len(it.s) || it.s[i] != '"' {
			return it.fail()
		}
		end := skipString(it.s, i)
		if end < 0 {
			return it.fail()
		}
		key = it.s[i:end]
		i = skipWS(it.s, end)
		if i >= len(it.s) || it.s[i] != ':' {
			return it.fail()
		}
		i = skipWS(it.s, i+1)
	}
	end := skipValue(it.s, i)
	if end < 0 {
		return it.fail()
	}
	it.i = end
	return key, it.s[i:end], true
}

func (it *listIter) fail() ([]byte, []byte, bool) {
	it.s = nil
	it.bad = true
	return nil, nil, false
}

// keyEqual reports whether the raw JSON key literal (with quotes) decodes to
// name. It may use *buf as temporary space and leaves it as it found it.
func keyEqual(raw []byte, name []byte, buf *[]byte) bool {
	body := raw[1 : len(raw)-1]
	if bytes.IndexByte(body, '\\') < 0 {
		return bytes.Equal(body, name)
	}
	start := len(*buf)
	out, ok := unescapeJSON(*buf, body)
	eq := ok && bytes.Equal(out[start:], name)
	*buf = out[:start]
	return eq
}

// member returns the value of the member name of the raw object v.
func member(v jsondoc.Value, name []byte, buf *[]byte) (jsondoc.Value, bool) {
	it := newListIter(v)
	for {
		k, val, ok := it.next()
		if !ok {
			return jsondoc.Value{}, !it.bad
		}
		if keyEqual(k, name, buf) {
			return decodeSpan(val, buf)
		}
	}
}

// element returns element i of the raw array v.
func element(v jsondoc.Value, i int64, buf *[]byte) (jsondoc.Value, bool) {
	it := newListIter(v)
	for n := int64(0); ; n++ {
		_, val, ok := it.next()
		if !ok {
			return jsondoc.Value{}, !it.bad
		}
		if n == i {
			return decodeSpan(val, buf)
		}
	}
}

// count returns the number of elements or members of the raw value v.
func count(v jsondoc.Value) (int64, bool) {
	it := newListIter(v)
	n := int64(0)
	for {
		if _, _, ok := it.next(); !ok {
			return n, !it.bad
		}
		n++
	}
}

// appendJSON appends the JSON text of v to dst. Missing encodes as null.
func appendJSON(dst []byte, v jsondoc.Value) []byte {
	switch v.Kind {
	case jsondoc.Bool:
		return strconv.AppendBool(dst, v.B)
	case jsondoc.Int:
		return strconv.AppendInt(dst, v.I, 10)
	case jsondoc.Float:
		return appendFloat(dst, v.F)
	case jsondoc.String:
		return appendQuoted(dst, v.S)
	case jsondoc.Object, jsondoc.Array:
		return append(dst, v.S...)
	}
	return append(dst, "null"...)
}

// appendFloat formats f as a JSON number the way JavaScript does: plain
// notation between 1e-6 and 1e21, exponent notation outside. f is finite.
func appendFloat(dst []byte, f float64) []byte {
	format := byte('f')
	if a := math.Abs(f); a != 0 && (a < 1e-6 || a >= 1e21) {
		format = 'e'
	}
	start := len(dst)
	dst = strconv.AppendFloat(dst, f, format, -1, 64)
	if format == 'e' {
		// Shorten a two-digit exponent: 1e-07 becomes 1e-7.
		n := len(dst)
		if n-start >= 4 && dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
			dst[n-2] = dst[n-1]
			dst = dst[:n-1]
		}
	}
	return dst
}

const hexDigits = "0123456789abcdef"

// appendQuoted appends s as a JSON string literal.
func appendQuoted(dst, s []byte) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' {
			continue
		}
		dst = append(dst, s[start:i]...)
		switch c {
		case '"', '\\':
			dst = append(dst, '\\', c)
		case '\n':
			dst = append(dst, '\\', 'n')
		case '\r':
			dst = append(dst, '\\', 'r')
		case '\t':
			dst = append(dst, '\\', 't')
		default:
			dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xF])
		}
		start = i + 1
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}
