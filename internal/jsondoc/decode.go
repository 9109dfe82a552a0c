package jsondoc

import (
	"bytes"
	"encoding/binary"
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
	end, err := scanNested(raw, start, maxDepth)
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
	k, t, n, f, s := decode(b, scratch)
	return Value{Kind: k, B: t, I: n, F: f, S: s}
}

// decode is decodeValue returning the fields of the Value. Value has too
// many fields for the compiler to keep it in registers, and copying one
// through several calls costs more than decoding a short number; so the
// parts travel in registers and only the exported entry points build the
// Value (decodeValue is inlined into them).
func decode(b []byte, scratch *[]byte) (k Kind, t bool, n int64, f float64, s []byte) {
	switch b[0] {
	case '"':
		s = b[1 : len(b)-1 : len(b)-1]
		if bytes.IndexByte(s, '\\') < 0 {
			return String, false, 0, 0, s
		}
		start := len(*scratch)
		*scratch = unescape(*scratch, s)
		end := len(*scratch)
		return String, false, 0, 0, (*scratch)[start:end:end]
	case '{':
		return Object, false, 0, 0, b[:len(b):len(b)]
	case '[':
		return Array, false, 0, 0, b[:len(b):len(b)]
	case 't':
		return Bool, true, 0, 0, nil
	case 'f':
		return Bool, false, 0, 0, nil
	case 'n':
		return Null, false, 0, 0, nil
	default:
		k, n, f = decodeNumber(b)
		return k, false, n, f, nil
	}
}

// decodeNumber converts a valid JSON number: Int when it is written as an
// integer that fits an int64, Float otherwise (±Inf when out of range).
func decodeNumber(b []byte) (Kind, int64, float64) {
	neg := b[0] == '-'
	i := 0
	if neg {
		i = 1
	}
	// Integer part.
	var u uint64
	if len(b)-i >= 8 {
		// Long integers (timestamps, ids): eight digits at once.
		if x := binary.LittleEndian.Uint64(b[i:]); nonDigitMask(x) == 0 {
			u = eightDigits(x)
			i += 8
		}
	}
	for ; i < len(b); i++ {
		d := b[i] - '0'
		if d > 9 {
			break // '.', 'e' or 'E'
		}
		if u > (math.MaxUint64-9)/10 {
			return Float, 0, parseFloat(b) // twenty digits or more
		}
		u = u*10 + uint64(d)
	}
	if i == len(b) {
		switch {
		case !neg && u <= math.MaxInt64:
			return Int, int64(u), 0
		case neg && u <= 1<<63:
			return Int, int64(-u), 0
		case neg:
			return Float, 0, -float64(u) // the conversion rounds correctly
		default:
			return Float, 0, float64(u)
		}
	}

	// Fraction and exponent. When the digits, read as an integer, and the
	// power of ten that scales them are both exact in float64, one IEEE
	// multiplication or division rounds correctly; otherwise strconv does
	// the hard work.
	const exact = 1 << 53
	if u >= exact {
		return Float, 0, parseFloat(b)
	}
	exp := 0 // decimal exponent of the last digit
	if b[i] == '.' {
		for i++; i < len(b); i++ {
			d := b[i] - '0'
			if d > 9 {
				break
			}
			if u >= exact/10 {
				return Float, 0, parseFloat(b)
			}
			u = u*10 + uint64(d)
			exp--
		}
	}
	if i < len(b) { // 'e' or 'E'
		i++
		eneg := b[i] == '-'
		if b[i] == '-' || b[i] == '+' {
			i++
		}
		e := 0
		for ; i < len(b); i++ {
			if e > 1000 {
				return Float, 0, parseFloat(b)
			}
			e = e*10 + int(b[i]-'0')
		}
		if eneg {
			e = -e
		}
		exp += e
	}
	f := float64(u) // exact: u < 2^53
	switch {
	case exp == 0:
	case exp > 0 && exp < len(pow10):
		f *= pow10[exp]
	case exp < 0 && -exp < len(pow10):
		f /= pow10[-exp]
	default:
		return Float, 0, parseFloat(b)
	}
	if neg {
		f = -f
	}
	return Float, 0, f
}

// parseFloat converts a valid JSON number with strconv.
func parseFloat(b []byte) float64 {
	// b is never modified while ParseFloat runs, and ParseFloat does not
	// retain its argument, so the string may share b's memory.
	f, _ := strconv.ParseFloat(unsafe.String(unsafe.SliceData(b), len(b)), 64)
	return f
}

// nonDigitMask returns a word with the high bit set in the lane of the
// first byte of x that is not an ASCII digit (and maybe in lanes above it),
// or 0 when all eight bytes are digits. The bytes must be ASCII.
func nonDigitMask(x uint64) uint64 {
	// A lane of x+0x46 reaches 0x80 when the byte is above '9'; a lane of
	// x-0x30 wraps to 0x80 or more when the byte is below '0' (the borrow
	// only disturbs higher lanes).
	return ((x + lanesLow*0x46) | (x - lanesLow*'0')) & lanesHigh
}

// eightDigits returns the value of the eight ASCII digits in x, the first
// digit in the lowest byte.
func eightDigits(x uint64) uint64 {
	x -= lanesLow * '0'
	// Each even byte becomes ten times itself plus the next byte: the value
	// of a two-digit pair (at most 99, so no lane overflows).
	x = (x*10 + x>>8) & 0x00ff00ff00ff00ff
	// Likewise pairs of pairs, in 16-bit lanes (at most 9999).
	x = (x*100 + x>>16) & 0x0000ffff0000ffff
	// And the two halves.
	return (x&0xffffffff)*10000 + x>>32
}

// pow10 holds the powers of ten that float64 represents exactly.
var pow10 = [...]float64{
	1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11,
	1e12, 1e13, 1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
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
