package jsondoc

import (
	"bytes"
	"math"
	"strconv"
	"unicode/utf8"
	"unsafe"
)

// ParseValue decodes raw, the JSON text of exactly one value (surrounding
// whitespace allowed), into a Value. It validates raw like Validate. Strings
// without escapes and the text of objects and arrays alias raw; strings with
// escapes are unescaped by appending to *scratch (a new slice is allocated
// when scratch is nil).
func ParseValue(raw []byte, scratch *[]byte) (Value, error) {
	start := skipSpace(raw, 0)
	var stk [1]uint64
	end, err := scanValue(raw, start, stk[:], maxDepth)
	if err == errStackFull {
		var deep [stackWords]uint64
		end, err = scanValue(raw, start, deep[:], maxDepth)
	}
	if err == nil {
		err = checkTrailing(raw, end)
	}
	if err != nil {
		return Value{}, err
	}
	if scratch == nil {
		scratch = new([]byte)
	}
	return decodeValue(raw[start:end], scratch), nil
}

// decodeValue converts the valid, whitespace-trimmed JSON text of one value.
func decodeValue(b []byte, scratch *[]byte) Value {
	switch b[0] {
	case '"':
		s := b[1 : len(b)-1 : len(b)-1]
		if bytes.IndexByte(s, '\\') < 0 {
			return Value{Kind: String, S: s}
		}
		start := len(*scratch)
		*scratch = unescape(*scratch, s)
		end := len(*scratch)
		return Value{Kind: String, S: (*scratch)[start:end:end]}
	case '{':
		return Value{Kind: Object, S: b[:len(b):len(b)]}
	case '[':
		return Value{Kind: Array, S: b[:len(b):len(b)]}
	case 't':
		return Value{Kind: Bool, B: true}
	case 'f':
		return Value{Kind: Bool}
	case 'n':
		return Value{Kind: Null}
	default:
		return decodeNumber(b)
	}
}

// decodeNumber converts a valid JSON number: Int when it is written as an
// integer that fits an int64, Float otherwise (±Inf when out of range).
func decodeNumber(b []byte) Value {
	neg := b[0] == '-'
	i := 0
	if neg {
		i = 1
	}
	var u uint64
	for ; i < len(b); i++ {
		d := b[i] - '0'
		if d > 9 {
			goto float // '.', 'e' or 'E'
		}
		if u > (math.MaxUint64-9)/10 {
			goto float // may overflow: let the slow path decide
		}
		u = u*10 + uint64(d)
	}
	if !neg && u <= math.MaxInt64 {
		return Value{Kind: Int, I: int64(u)}
	}
	if neg && u <= 1<<63 {
		return Value{Kind: Int, I: int64(-u)}
	}
float:
	if f, ok := decimalFloat(b); ok {
		return Value{Kind: Float, F: f}
	}
	// b is never modified while ParseFloat runs, and ParseFloat does not
	// retain its argument, so the string may share b's memory.
	f, _ := strconv.ParseFloat(unsafe.String(unsafe.SliceData(b), len(b)), 64)
	return Value{Kind: Float, F: f}
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
}

// decimalFloat converts the valid JSON number b when that is easy: when its
// digits, read as an integer, and the power of ten that scales them are both
// exact in float64, one IEEE multiplication or division gives the correctly
// rounded result. Otherwise it reports false.
func decimalFloat(b []byte) (float64, bool) {
	i := 0
	neg := b[0] == '-'
	if neg {
		i = 1
	}
	var mant uint64
	exp := 0 // decimal exponent of the last digit
	for ; i < len(b) && b[i]-'0' <= 9; i++ {
		if mant >= 1<<53/10 {
			return 0, false
		}
		mant = mant*10 + uint64(b[i]-'0')
	}
	if i < len(b) && b[i] == '.' {
		for i++; i < len(b) && b[i]-'0' <= 9; i++ {
			if mant >= 1<<53/10 {
				return 0, false
			}
			mant = mant*10 + uint64(b[i]-'0')
			exp--
		}
	}
	if i < len(b) { // an exponent
		i++
		eneg := b[i] == '-'
		if b[i] == '-' || b[i] == '+' {
			i++
		}
		e := 0
		for ; i < len(b); i++ {
			if e > 1000 {
				return 0, false
			}
			e = e*10 + int(b[i]-'0')
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	f := float64(mant) // exact: mant < 2^53
	switch {
	case exp == 0:
	case exp > 0 && exp < len(pow10):
		f *= pow10[exp]
	case exp < 0 && -exp < len(pow10):
		f /= pow10[-exp]
	default:
		return 0, false
	}
	if neg {
		f = -f
	}
	return f, true
}

// unescape appends the decoded form of valid string content s to dst.
// Surrogate pairs written as two \u escapes become one UTF-8 sequence; a
// lone surrogate becomes U+FFFD. Bytes outside escapes are copied as they
// are, valid UTF-8 or not.
func unescape(dst, s []byte) []byte {
	for {
		k := bytes.IndexByte(s, '\\')
		if k < 0 {
			return append(dst, s...)
		}
		dst = append(dst, s[:k]...)
		c := s[k+1]
		s = s[k+2:]
		switch c {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r := hex4(s)
			s = s[4:]
			switch {
			case r >= 0xD800 && r < 0xDC00:
				// A high surrogate: it needs a low one right after.
				if len(s) >= 6 && s[0] == '\\' && s[1] == 'u' {
					if lo := hex4(s[2:]); lo >= 0xDC00 && lo < 0xE000 {
						r = 0x10000 + (r-0xD800)<<10 + (lo - 0xDC00)
						s = s[6:]
						break
					}
				}
				r = utf8.RuneError
			case r >= 0xDC00 && r < 0xE000:
				r = utf8.RuneError
			}
			dst = utf8.AppendRune(dst, r)
		default: // '"', '\\', '/'
			dst = append(dst, c)
		}
	}
}

// hex4 decodes four valid hex digits.
func hex4(s []byte) rune {
	var r rune
	for _, c := range s[:4] {
		switch {
		case c <= '9':
			c -= '0'
		case c >= 'a':
			c -= 'a' - 10
		default:
			c -= 'A' - 10
		}
		r = r<<4 | rune(c)
	}
	return r
}
