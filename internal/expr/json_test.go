package expr

import (
	"errors"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/jsondoc"
)

func TestStructuralEqual(t *testing.T) {
	obj := func(s string) jsondoc.Value { return jsondoc.RawValue(jsondoc.Object, []byte(s)) }
	arr := func(s string) jsondoc.Value { return jsondoc.RawValue(jsondoc.Array, []byte(s)) }
	for _, tc := range []struct {
		a, b jsondoc.Value
		eq   bool
	}{
		{obj(`{"a":1,"b":[1,2]}`), obj(`{ "b" : [1, 2.0], "a": 1.0 }`), true},
		{obj(`{"a":1}`), obj(`{"a":1,"b":2}`), false},
		{obj(`{"a":1,"c":2}`), obj(`{"a":1,"b":2}`), false},
		{obj(`{"k\u0065y":"v"}`), obj(`{"key":"\u0076"}`), true},
		{obj(`{}`), obj(` { } `), true},
		{arr(`[1,2]`), arr(`[1,2,3]`), false},
		{arr(`[1,2,3]`), arr(`[1,2]`), false},
		{arr(`["\u0061"]`), arr(`["a"]`), true},
		{arr(`[[1,[2]]]`), arr(`[ [ 1 , [ 2 ] ] ]`), true},
		{arr(`[null]`), arr(`[false]`), false},
		{arr(`[]`), obj(`{}`), false},
	} {
		eq, ok := equal(tc.a, tc.b, new([]byte))
		if !ok || eq != tc.eq {
			t.Errorf("equal(%s, %s) = %v, %v; want %v", tc.a.S, tc.b.S, eq, ok, tc.eq)
		}
	}
}

// TestMalformedRawValues checks that walking malformed raw JSON reports an
// error instead of panicking or inventing a value.
func TestMalformedRawValues(t *testing.T) {
	objectExprs := []string{`len(x)`, `coalesce(x).zz`, `"zz" in x`, `x == coalesce(y)`}
	arrayExprs := []string{`len(x)`, `coalesce(x)[5]`, `"zz" in x`, `x == coalesce(z)`}
	for _, tc := range []struct {
		v     jsondoc.Value
		exprs []string
	}{
		{jsondoc.RawValue(jsondoc.Object, []byte(`{"a":`)), objectExprs},
		{jsondoc.RawValue(jsondoc.Object, []byte(`{"a" 1}`)), objectExprs},
		{jsondoc.RawValue(jsondoc.Object, []byte(`{a: 1}`)), objectExprs},
		{jsondoc.RawValue(jsondoc.Object, nil), objectExprs},
		{jsondoc.RawValue(jsondoc.Array, []byte(`[1,`)), arrayExprs},
		{jsondoc.RawValue(jsondoc.Array, []byte(`[1 2]`)), arrayExprs},
		{jsondoc.RawValue(jsondoc.Array, []byte(`[1,]`)), arrayExprs},
		{jsondoc.RawValue(jsondoc.Array, []byte(`1`)), arrayExprs},
		{jsondoc.RawValue(jsondoc.Array, nil), arrayExprs},
	} {
		for _, src := range tc.exprs {
			env := &sliceEnv{
				paths: [][]jsondoc.Seg{{jsondoc.Key("x")}, {jsondoc.Key("y")}, {jsondoc.Key("z")}},
				vals: []jsondoc.Value{tc.v,
					jsondoc.RawValue(jsondoc.Object, []byte(`{"a": 1}`)),
					jsondoc.RawValue(jsondoc.Array, []byte(`[1, 2]`))},
			}
			_, err := MustCompile(src).Eval(env)
			var ee *EvalError
			if !errors.As(err, &ee) || ee.Msg != "malformed JSON value" {
				t.Errorf("%s with x = %s: error %v, want malformed JSON value", src, tc.v.S, err)
			}
		}
	}
}

// TestRawValueWalks pins how computed members and indexes read raw text:
// like Env.Field, the last of duplicate keys wins, and numbers beyond the
// float64 range are infinite.
func TestRawValueWalks(t *testing.T) {
	env := &sliceEnv{
		paths: [][]jsondoc.Seg{{jsondoc.Key("x")}, {jsondoc.Key("y")}},
		vals: []jsondoc.Value{
			jsondoc.RawValue(jsondoc.Object, []byte(`{"a": 1, "b": {"c": 1}, "a": 2}`)),
			jsondoc.RawValue(jsondoc.Array, []byte(`[1e400, "s"]`)),
		},
	}
	for _, tc := range []struct{ src, want string }{
		{`coalesce(x).a`, `int 2`},
		{`coalesce(x)["a"]`, `int 2`},
		{`"a" in x`, `bool true`},
		{`len(x)`, `int 3`},
		{`coalesce(y)[0] > 1e308`, `bool true`},
		{`coalesce(y)[1]`, `string "s"`},
	} {
		v, err := MustCompile(tc.src).Eval(env)
		if err != nil || show(v) != tc.want {
			t.Errorf("%s = %s, %v; want %s", tc.src, show(v), err, tc.want)
		}
	}
}

func TestParseRFC3339(t *testing.T) {
	for _, s := range []string{
		"2024-05-01T12:00:00Z", "2024-05-01t12:00:00z", "2024-05-01 12:00:00Z",
		"2024-05-01T12:00:00.5Z", "2024-05-01T12:00:00.123456789Z",
		"2024-05-01T12:00:00+02:00", "2024-05-01T12:00:00.25-07:30",
		"2024-02-29T23:59:59Z", "1970-01-01T00:00:00Z", "1969-12-31T23:59:59.999999999Z",
		"2262-04-11T23:47:16Z", "1677-09-21T00:12:44Z", "0001-01-01T00:00:00Z",
	} {
		got, ok := parseRFC3339([]byte(s))
		want, err := time.Parse(time.RFC3339Nano, s)
		if err != nil {
			// time.Parse does not accept a space or lowercase z; compare
			// with the canonical spelling.
			want, err = time.Parse(time.RFC3339Nano, "2024-05-01T12:00:00Z")
		}
		inRange := want.Year() > 1677 && want.Year() < 2262
		if err != nil || ok != inRange || ok && got != want.UnixNano() {
			t.Errorf("parseRFC3339(%s) = %d, %v; want %d (in range %v)", s, got, ok, want.UnixNano(), inRange)
		}
	}
	for _, s := range []string{
		"", "2024-05-01", "2024-05-01T12:00:00", "2024-13-01T00:00:00Z", "2023-02-29T00:00:00Z",
		"2024-04-31T00:00:00Z", "2024-05-01T24:00:00Z", "2024-05-01T12:60:00Z", "2024-05-01T12:00:60Z",
		"2024-05-01T12:00:00.Z", "2024-05-01T12:00:00+0200", "2024-05-01T12:00:00+24:00",
		"2024-05-01T12:00:00Zx", "2024-05-01X12:00:00Z", "20a4-05-01T12:00:00Z", "9999-01-01T00:00:00Z",
	} {
		if got, ok := parseRFC3339([]byte(s)); ok {
			t.Errorf("parseRFC3339(%q) = %d, want failure", s, got)
		}
	}
}
