package jsondoc

import "bytes"

// Equal reports whether v and o are the same JSON value. Numbers compare by
// value across kinds, exactly (Int 3 equals Float 3.0; Int 2^53+1 does not
// equal Float 2^53); NaN equals nothing. Strings compare by their decoded
// bytes. Objects and arrays compare by their raw text, byte for byte, so
// the same value written with different spacing or member order is not
// Equal. Missing equals only Missing, and is not Null.
func (v Value) Equal(o Value) bool {
	if v.Kind != o.Kind {
		switch {
		case v.Kind == Int && o.Kind == Float:
			return intEqualsFloat(v.I, o.F)
		case v.Kind == Float && o.Kind == Int:
			return intEqualsFloat(o.I, v.F)
		}
		return false
	}
	switch v.Kind {
	case Bool:
		return v.B == o.B
	case Int:
		return v.I == o.I
	case Float:
		return v.F == o.F
	case String, Object, Array:
		return bytes.Equal(v.S, o.S)
	default: // Missing, Null
		return true
	}
}

func intEqualsFloat(i int64, f float64) bool {
	// float64(i) may round, so convert the other way, when f is integral and
	// in range. -2^63 is exact in float64; 2^63 is just out of range.
	if !(f >= -(1<<63) && f < 1<<63) || f != float64(int64(f)) {
		return false
	}
	return int64(f) == i
}
