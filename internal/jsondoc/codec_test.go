package jsondoc

import (
	"bytes"
	"encoding/json"
	"math"
	"math/rand/v2"
	"strconv"
	"testing"
)

// stdEncode is what encoding/json writes for v, without HTML escaping.
func stdEncode(t testing.TB, v any) string {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	return string(bytes.TrimSuffix(buf.Bytes(), []byte("\n")))
}

var testStrings = []string{
	"", "a", "hello, world", `quote " backslash \ slash /`,
	"<html> & 'apos'", "\x00\x01\x07\x08\x09\x0a\x0b\x0c\x0d\x1f\x7f",
	"tab\there\nnewline", "é ✓ 😀 中文", "\u2028 line \u2029 para",
	"bad utf8 \xff\xfe and \xc3", "truncated \xe2\x9c", "\xed\xa0\x80 encoded surrogate",
	"exactly8", "exactly16bytes!!", "long plain string that crosses several eight byte words",
	"word boundary \"quote\" at 8..", "\xf4\x90\x80\x80 beyond U+10FFFF",
	"ctl\x00\x01\x1f\n\r\t", "ünï 😀", "<&>",
	"two-byte edges \u0080 \u07ff", "cut \xc2", "bad continuation \xc2A", "overlong \xc1\xbf \xe0\x80\x80",
}

func TestAppendString(t *testing.T) {
	for _, s := range testStrings {
		got := string(AppendString([]byte("prefix:"), []byte(s)))
		want := "prefix:" + stdEncode(t, s)
		if got != want {
			t.Errorf("AppendString(%q) = %s, want %s", s, got, want)
		}
	}
}

func TestAppendValue(t *testing.T) {
	tests := []struct {
		v    Value
		want string
	}{
		{MissingValue(), "null"},
		{NullValue(), "null"},
		{BoolValue(true), "true"},
		{BoolValue(false), "false"},
		{IntValue(0), "0"},
		{IntValue(-42), "-42"},
		{IntValue(math.MinInt64), "-9223372036854775808"},
		{FloatValue(3), "3"},
		{FloatValue(12.99), "12.99"},
		{FloatValue(math.NaN()), "null"},
		{FloatValue(math.Inf(1)), "null"},
		{FloatValue(math.Inf(-1)), "null"},
		{StringValue([]byte(`a"b`)), `"a\"b"`},
		{RawValue(Object, []byte(`{"a": 1}`)), `{"a": 1}`},
		{RawValue(Array, []byte(`[1,2]`)), `[1,2]`},
	}
	for _, tt := range tests {
		if got := string(AppendValue(nil, tt.v)); got != tt.want {
			t.Errorf("AppendValue(%+v) = %s, want %s", tt.v, got, tt.want)
		}
	}
}

func TestAppendFloatMatchesEncodingJSON(t *testing.T) {
	floats := []float64{
		0, math.Copysign(0, -1), 1, -1, 0.1, 1e-6, 9.999999e-7, 1e-7, 1.5e-7, 1e-300,
		1e20, 1e21, 1.5e21, 123456789e13, 1e300, math.MaxFloat64, math.SmallestNonzeroFloat64,
		12.99, 1763900000123, 0.875, 1.0 / 3, 3, -3, 1e15 - 1, 1e15, -1e15, 1 << 53, 1<<53 + 2, 1 << 60, 123456789,
		0.1 + 0.2, 1.5, 100, 123.456, 1.234e-7, 5e-324, -math.MaxFloat64, 12345678901234567890,
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 20000 {
		f := math.Float64frombits(r.Uint64())
		if math.IsNaN(f) || math.IsInf(f, 0) {
			continue
		}
		floats = append(floats, f)
	}
	for _, f := range floats {
		got := string(AppendValue(nil, FloatValue(f)))
		if want := stdEncode(t, f); got != want {
			t.Fatalf("AppendValue(%v) = %s, want %s", f, got, want)
		}
		// And it reads back as the same float64. (Integral floats print as
		// integers and may read back as an Int that is not exactly f.)
		v, err := ParseValue([]byte(got), nil)
		if v.Kind == Int {
			v = FloatValue(float64(v.I))
		}
		if err != nil || !v.Equal(FloatValue(f)) {
			t.Fatalf("ParseValue(%s) = %+v, %v; want %v", got, v, err, f)
		}
	}
}

func TestParseValue(t *testing.T) {
	tests := []struct {
		raw  string
		want Value
	}{
		{` null `, NullValue()},
		{`true`, BoolValue(true)},
		{`false`, BoolValue(false)},
		{`0`, IntValue(0)},
		{`-0`, IntValue(0)},
		{`42`, IntValue(42)},
		{`-42`, IntValue(-42)},
		{`9223372036854775807`, IntValue(math.MaxInt64)},
		{`-9223372036854775808`, IntValue(math.MinInt64)},
		{`9223372036854775808`, FloatValue(9223372036854775808)},
		{`-9223372036854775809`, FloatValue(-9223372036854775809)},
		{`18446744073709551616`, FloatValue(18446744073709551616)},
		{`123456789012345678901234567890`, FloatValue(1.2345678901234568e29)},
		{`1.5`, FloatValue(1.5)},
		{`-0.0`, FloatValue(math.Copysign(0, -1))},
		{`1e2`, FloatValue(100)},
		{`-12.5e1`, FloatValue(-125)},
		{`123456789012345678901`, FloatValue(123456789012345678901)},
		{`12.99`, FloatValue(12.99)},
		{`1e400`, FloatValue(math.Inf(1))},
		{`-1e400`, FloatValue(math.Inf(-1))},
		{`""`, StringValue([]byte{})},
		{`"plain"`, StringValue([]byte("plain"))},
		{`"a\"b\\c\/d\be\ff\ng\rh\ti"`, StringValue([]byte("a\"b\\c/d\be\ff\ng\rh\ti"))},
		{`"\u00e9\u2713"`, StringValue([]byte("é✓"))},
		{`"\uD83D\uDE00"`, StringValue([]byte("😀"))},
		{`"\ud83d\ude00"`, StringValue([]byte("😀"))},
		{`"\uD83D"`, StringValue([]byte("\uFFFD"))},
		{`"\uDE00"`, StringValue([]byte("\uFFFD"))},
		{`"\uD83Dx"`, StringValue([]byte("\uFFFDx"))},
		{`"\uD83D\u0041"`, StringValue([]byte("\uFFFDA"))},
		{`"\uD83D\uD83D\uDE00"`, StringValue([]byte("\uFFFD😀"))},
		{`"\ud800x"`, StringValue([]byte("\uFFFDx"))},
		{` "a\u00e9\n\ud83d\ude00" `, StringValue([]byte("aé\n😀"))},
		{`"\u0000"`, StringValue([]byte{0})},
		{` {"a" : 1} `, RawValue(Object, []byte(`{"a" : 1}`))},
		{`[1, 2]`, RawValue(Array, []byte(`[1, 2]`))},
		{` [1, {"a": [2]}] `, RawValue(Array, []byte(`[1, {"a": [2]}]`))},
		{`{"a": "}"}`, RawValue(Object, []byte(`{"a": "}"}`))},
	}
	for _, tt := range tests {
		var scratch []byte
		got, err := ParseValue([]byte(tt.raw), &scratch)
		if err != nil {
			t.Errorf("ParseValue(%s): %v", tt.raw, err)
			continue
		}
		if got.Kind != tt.want.Kind || !got.Equal(tt.want) ||
			got.Kind == Float && math.Signbit(got.F) != math.Signbit(tt.want.F) {
			t.Errorf("ParseValue(%s) = %+v, want %+v", tt.raw, got, tt.want)
		}
		// Strings agree with encoding/json (which also yields U+FFFD for
		// lone surrogates).
		if got.Kind == String {
			var s string
			if err := json.Unmarshal([]byte(tt.raw), &s); err != nil {
				t.Fatal(err)
			}
			if s != string(got.S) {
				t.Errorf("ParseValue(%s) = %q, encoding/json says %q", tt.raw, got.S, s)
			}
		}
	}
	for _, raw := range []string{``, `"abc`, `"\x"`, `"\u"`, `"\u12"`, `[1, 2`, `tru`, `1 2`, `-`} {
		if v, err := ParseValue([]byte(raw), nil); err == nil {
			t.Errorf("ParseValue(%s) = %+v, want an error", raw, v)
		}
	}
}

func TestParseValueNumbersMatchStrconv(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	for range 200000 {
		var s string
		switch r.IntN(4) {
		case 3:
			// Random digit strings: exercise the fast path's limits.
			digits := func(n int) string {
				b := make([]byte, n)
				for i := range b {
					b[i] = byte('0' + r.IntN(10))
				}
				return string(b)
			}
			s = digits(1 + r.IntN(20))
			if len(s) > 1 && s[0] == '0' {
				s = "1" + s[1:]
			}
			if r.IntN(2) == 0 {
				s += "." + digits(1+r.IntN(20))
			}
			if r.IntN(2) == 0 {
				s += "e" + strconv.Itoa(r.IntN(70)-35)
			}
			if r.IntN(2) == 0 {
				s = "-" + s
			}
		case 0:
			s = strconv.FormatInt(int64(r.Uint64()), 10)
		case 1:
			s = strconv.FormatFloat(r.NormFloat64()*math.Pow(10, float64(r.IntN(40)-20)), 'f', r.IntN(12), 64)
		default:
			s = strconv.FormatFloat(math.Float64frombits(r.Uint64()>>1), 'g', -1, 64)
			if s == "NaN" || s == "+Inf" {
				continue
			}
		}
		v, err := ParseValue([]byte(s), nil)
		if err != nil {
			t.Fatalf("ParseValue(%s): %v", s, err)
		}
		if i, err := strconv.ParseInt(s, 10, 64); err == nil {
			if v.Kind != Int || v.I != i {
				t.Fatalf("ParseValue(%s) = %+v, want Int %d", s, v, i)
			}
			continue
		}
		f, _ := strconv.ParseFloat(s, 64)
		if v.Kind != Float || v.F != f {
			t.Fatalf("ParseValue(%s) = %+v, want Float %v", s, v, f)
		}
	}
}

func TestEqual(t *testing.T) {
	tests := []struct {
		a, b Value
		want bool
	}{
		{MissingValue(), MissingValue(), true},
		{MissingValue(), NullValue(), false},
		{NullValue(), NullValue(), true},
		{BoolValue(true), BoolValue(true), true},
		{BoolValue(true), BoolValue(false), false},
		{IntValue(3), FloatValue(3), true},
		{FloatValue(3), IntValue(3), true},
		{IntValue(3), FloatValue(3.5), false},
		{IntValue(1<<53 + 1), FloatValue(1 << 53), false},
		{IntValue(math.MinInt64), FloatValue(-(1 << 63)), true},
		{IntValue(math.MaxInt64), FloatValue(1 << 63), false},
		{FloatValue(math.NaN()), FloatValue(math.NaN()), false},
		{IntValue(0), FloatValue(math.NaN()), false},
		{FloatValue(0), FloatValue(math.Copysign(0, -1)), true},
		{StringValue([]byte("a")), StringValue([]byte("a")), true},
		{StringValue([]byte("a")), StringValue([]byte("b")), false},
		{StringValue([]byte("1")), IntValue(1), false},
		{RawValue(Object, []byte(`{"a":1}`)), RawValue(Object, []byte(`{"a":1}`)), true},
		{RawValue(Object, []byte(`{"a":1}`)), RawValue(Object, []byte(`{"a": 1}`)), false},
		{RawValue(Array, []byte(`[]`)), RawValue(Object, []byte(`[]`)), false},
	}
	for _, tt := range tests {
		if got := tt.a.Equal(tt.b); got != tt.want {
			t.Errorf("%+v.Equal(%+v) = %v, want %v", tt.a, tt.b, got, tt.want)
		}
	}
}

func TestEightDigits(t *testing.T) {
	for _, s := range []string{"00000000", "12345678", "99999999", "10000000", "00000001", "17639000"} {
		x := uint64(0)
		for i := 7; i >= 0; i-- {
			x = x<<8 | uint64(s[i])
		}
		if m := nonDigitMask(x); m != 0 {
			t.Errorf("nonDigitMask(%s) = %#x", s, m)
		}
		want, _ := strconv.ParseUint(s, 10, 64)
		if got := eightDigits(x); got != want {
			t.Errorf("eightDigits(%s) = %d", s, got)
		}
	}
	for _, s := range []string{"1234567.", "1234567e", "/2345678", ":2345678", "123-5678", "12345+78", "1234567E"} {
		x := uint64(0)
		for i := 7; i >= 0; i-- {
			x = x<<8 | uint64(s[i])
		}
		if nonDigitMask(x) == 0 {
			t.Errorf("nonDigitMask(%s) = 0", s)
		}
	}
}
