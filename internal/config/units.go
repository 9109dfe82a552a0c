package config

import (
	"fmt"
	"math"
	"math/big"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ByteSize is a size in bytes. In YAML it is written as an integer or with a
// unit: 512, 64KiB, 16MiB, 1GiB (powers of 1024) or 10KB, 5MB, 1GB (powers of
// 1000).
type ByteSize int64

// Byte size units.
const (
	KiB ByteSize = 1 << (10 * (iota + 1))
	MiB
	GiB
	TiB
	PiB
)

// Decimal byte size units.
const (
	KB ByteSize = 1000
	MB          = 1000 * KB
	GB          = 1000 * MB
	TB          = 1000 * GB
	PB          = 1000 * TB
)

var byteUnits = []struct {
	name string
	size ByteSize
}{
	{"PiB", PiB}, {"TiB", TiB}, {"GiB", GiB}, {"MiB", MiB}, {"KiB", KiB},
	{"PB", PB}, {"TB", TB}, {"GB", GB}, {"MB", MB}, {"KB", KB},
	{"B", 1},
}

const byteSizeExpected = "a byte size such as 512, 64KiB or 16MiB"
const byteSizeHint = "units are B, KB, MB, GB, TB (powers of 1000) and KiB, MiB, GiB, TiB (powers of 1024)"

// ParseByteSize parses a size such as "512", "64KiB", "1.5GB" or "16 MiB".
// Units are matched ignoring case; a number without a unit is bytes. The
// result must be a whole number of bytes, not negative, and fit in an int64.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && (t[i] >= '0' && t[i] <= '9' || t[i] == '.' || t[i] == '_' || (i == 0 && (t[i] == '-' || t[i] == '+'))) {
		i++
	}
	num, unit := strings.ReplaceAll(t[:i], "_", ""), strings.TrimSpace(t[i:])
	if num == "" || num == "-" || num == "+" {
		return 0, fmt.Errorf("invalid byte size %q: no number", s)
	}
	mult := ByteSize(1)
	if unit != "" {
		found := false
		for _, u := range byteUnits {
			if strings.EqualFold(unit, u.name) {
				mult, found = u.size, true
				break
			}
		}
		if !found {
			return 0, fmt.Errorf("invalid byte size %q: unknown unit %q", s, unit)
		}
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, fmt.Errorf("invalid byte size %q: bad number %q", s, num)
	}
	if r.Sign() < 0 {
		return 0, fmt.Errorf("byte size %q is negative", s)
	}
	r.Mul(r, new(big.Rat).SetInt64(int64(mult)))
	if !r.IsInt() {
		return 0, fmt.Errorf("byte size %q is not a whole number of bytes", s)
	}
	n := r.Num()
	if !n.IsInt64() {
		return 0, fmt.Errorf("byte size %q is too large", s)
	}
	return ByteSize(n.Int64()), nil
}

// String formats b with the unit that gives the smallest whole number, such
// as "16MiB", "10KB" or "1234B". ParseByteSize accepts the result.
func (b ByteSize) String() string {
	if b == 0 {
		return "0B"
	}
	if b < 0 {
		if b == math.MinInt64 {
			return strconv.FormatInt(int64(b), 10) + "B"
		}
		return "-" + (-b).String()
	}
	best, unit := int64(b), "B"
	for _, u := range byteUnits {
		if b%u.size == 0 && int64(b/u.size) < best {
			best, unit = int64(b/u.size), u.name
		}
	}
	return strconv.FormatInt(best, 10) + unit
}

// UnmarshalYAMLNode implements Unmarshaler.
func (b *ByteSize) UnmarshalYAMLNode(file string, n *yaml.Node) *Error {
	if n.Kind != yaml.ScalarNode {
		return typeError(file, n, byteSizeExpected, byteSizeHint)
	}
	var err error
	v := ByteSize(0)
	switch n.Tag {
	case intTag:
		i, ok := parseBigInt(n.Value)
		switch {
		case !ok:
			err = fmt.Errorf("invalid byte size %q", n.Value)
		case i.Sign() < 0:
			err = fmt.Errorf("byte size %s is negative", n.Value)
		case !i.IsInt64():
			err = fmt.Errorf("byte size %s is too large", n.Value)
		default:
			v = ByteSize(i.Int64())
		}
	case strTag:
		v, err = ParseByteSize(n.Value)
	default:
		return typeError(file, n, byteSizeExpected, byteSizeHint)
	}
	if err != nil {
		e := &Error{Pos: nodePos(file, n), Msg: err.Error(), Expected: byteSizeExpected, Hint: byteSizeHint}
		if strings.HasPrefix(strings.TrimSpace(n.Value), "-") {
			e.Hint = "write a size of zero or more"
		}
		return e
	}
	*b = v
	return nil
}

// DocType implements DocTyper.
func (ByteSize) DocType() string { return "bytes" }
