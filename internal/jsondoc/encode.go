package jsondoc

import (
	"encoding/binary"
	"math"
	"math/bits"
	"strconv"
	"unicode/utf8"
)

// AppendValue appends the JSON encoding of v to dst. Floats use the shortest
// representation that round-trips, in the same notation as encoding/json
// (integral floats such as 3.0 print as 3); NaN and ±Inf, which JSON cannot
// represent, become null, and so does Missing. Object and Array values are
// appended as their S, verbatim and unchecked.
func AppendValue(dst []byte, v Value) []byte {
	switch v.Kind {
	case Bool:
		if v.B {
			return append(dst, "true"...)
		}
		return append(dst, "false"...)
	case Int:
		return strconv.AppendInt(dst, v.I, 10)
	case Float:
		return appendFloat(dst, v.F)
	case String:
		return AppendString(dst, v.S)
	case Object, Array:
		return append(dst, v.S...)
	default:
		return append(dst, "null"...)
	}
}

// appendFloat formats f like ECMAScript's Number.prototype.toString, which
// is also what encoding/json does: plain decimal notation for magnitudes in
// [1e-6, 1e21), exponent notation outside, shortest digits that round-trip.
func appendFloat(dst []byte, f float64) []byte {
	if math.IsNaN(f) || math.IsInf(f, 0) {
		return append(dst, "null"...)
	}
	a := math.Abs(f)
	if a < 1e15 && float64(int64(f)) == f && (f != 0 || !math.Signbit(f)) {
		// Below 2^53 the shortest digits of an integral float are the
		// integer's digits, and AppendInt is much faster. (The conversion
		// to int64 is exact in this range, and cheaper than math.Trunc.)
		return strconv.AppendInt(dst, int64(f), 10)
	}
	if a == 0 || a >= 1e-6 && a < 1e21 {
		return strconv.AppendFloat(dst, f, 'f', -1, 64)
	}
	dst = strconv.AppendFloat(dst, f, 'e', -1, 64)
	// strconv pads the exponent to two digits ("1e-07"); ECMAScript does
	// not. Exponents here are at least 21 or at most -7, so only small
	// negative ones are padded.
	if n := len(dst); dst[n-4] == 'e' && dst[n-3] == '-' && dst[n-2] == '0' {
		dst[n-2] = dst[n-1]
		dst = dst[:n-1]
	}
	return dst
}

// escapeStop: bytes AppendString cannot copy blindly.
var escapeStop = func() (t [256]bool) {
	for c := 0; c < 0x20; c++ {
		t[c] = true
	}
	for c := 0x80; c < 0x100; c++ {
		t[c] = true
	}
	t['"'], t['\\'] = true, true
	return t
}()

// shortEscape is the two-character escape of the control characters that
// have one, and of '"' and '\\'.
var shortEscape = [256]byte{'\b': 'b', '\f': 'f', '\n': 'n', '\r': 'r', '\t': 't', '"': '"', '\\': '\\'}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a quoted JSON string, escaped the way
// encoding/json escapes without HTML escaping: '"' and '\\' and control
// characters are escaped (\n, \t and friends where JSON has a short form,
// \u00XX otherwise), U+2028 and U+2029 are written as \u2028 and \u2029, and
// each byte that is not part of valid UTF-8 becomes \ufffd. Everything else
// is copied.
func AppendString(dst []byte, s []byte) []byte {
	dst = append(dst, '"')
	start, i := 0, 0
	for {
		// Find the next byte that needs attention: eight at a time while
		// possible.
		for len(s)-i >= 8 {
			x := binary.LittleEndian.Uint64(s[i:])
			if m := stopMask(x) | x&lanesHigh; m != 0 {
				i += bits.TrailingZeros64(m) >> 3
				goto stop
			}
			i += 8
		}
		for i < len(s) && !escapeStop[s[i]] {
			i++
		}
		if i >= len(s) {
			dst = append(dst, s[start:]...)
			return append(dst, '"')
		}
	stop:
		c := s[i]
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			if e := shortEscape[c]; e != 0 {
				dst = append(dst, '\\', e)
			} else {
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		if c >= 0xC2 && c < 0xE0 && i+1 < len(s) && s[i+1]&0xC0 == 0x80 {
			// A valid two-byte sequence, the common case, by hand. Text
			// with one tends to have more: go on byte by byte through
			// them and plain ASCII.
			for i += 2; i < len(s); {
				if c = s[i]; !escapeStop[c] {
					i++
				} else if c >= 0xC2 && c < 0xE0 && i+1 < len(s) && s[i+1]&0xC0 == 0x80 {
					i += 2
				} else {
					break
				}
			}
			continue
		}
		r, size := utf8.DecodeRune(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
		case r == '\u2028' || r == '\u2029':
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
		default:
			i += size
			continue
		}
		i += size
		start = i
	}
}
