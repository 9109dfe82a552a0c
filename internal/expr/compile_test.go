package expr

import (
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/weir-dev/weir/internal/jsondoc"
)

var compileErrorCases = []struct {
	src  string
	pos  int
	msg  string // substring of Msg
	hint string // substring of Hint
}{
	{``, 0, "empty expression", ""},
	{`   `, 0, "empty expression", ""},
	{`a = 1`, 2, "unexpected '='", "use == to compare"},
	{`a & b`, 2, "unexpected '&'", "use && for logical and"},
	{`a | b`, 2, "unexpected '|'", "use || for logical or"},
	{`a and b`, 2, `unexpected identifier "and"`, "use && for logical and"},
	{`a or b`, 2, `unexpected identifier "or"`, "use || for logical or"},
	{`a b`, 2, `unexpected identifier "b"`, "an operator is missing"},
	{`a "x"`, 2, "unexpected string", "an operator is missing"},
	{`a # note`, 2, "unexpected '#'", "comments are not supported"},
	{`a € b`, 2, "unexpected character '€'", ""},
	{`"abc`, 0, "unterminated string", `close it with "`},
	{`x == 'abc"`, 5, "unterminated string", "close it with '"},
	{`"abc\`, 0, "unterminated string", ""},
	{`"a\qb"`, 2, `unknown escape \q`, ""},
	{`"\u12"`, 1, `invalid \u escape`, ""},
	{`"\uD800"`, 1, "unpaired surrogate", ""},
	{`"\uD800\u0041"`, 1, "unpaired surrogate", ""},
	{`"\uD800\uZZZZ"`, 1, "unpaired surrogate", ""},
	{`"x\uDE00\uD83D"`, 2, "unpaired surrogate", ""},
	{`"\uZZZZ"`, 1, `invalid \u escape`, ""},
	{`"\u+123"`, 1, `invalid \u escape`, ""},
	{`1 +`, 3, "unexpected end of expression", ""},
	{`(1 + 2`, 6, "unexpected end of expression, expected ')'", ""},
	{`[1, 2`, 5, "expected ',' or ']'", ""},
	{`f(1, 2`, 6, "expected ',' or ')'", ""},
	{`a.`, 2, "expected a field name after '.'", ""},
	{`a.0`, 2, "expected a field name after '.'", "use [0] to index an array"},
	{`a.b.)`, 4, "expected a field name after '.'", ""},
	{`a[1`, 3, "expected ']'", ""},
	{`)`, 0, "unexpected ')'", ""},
	{`a not b`, 2, "unexpected 'not'", "'not in'"},
	{`not a`, 0, "unexpected 'not'", "use ! to negate"},
	{`a.b()`, 3, "only built-in functions can be called", ""},
	{`a.lower()`, 7, "only built-in functions can be called", "write lower(x) instead of x.lower()"},
	{`t ? 1`, 5, "expected ':' of the conditional", ""},
	{`1abc`, 0, `invalid number "1a"`, ""},
	{`9223372036854775808`, 0, "integer 9223372036854775808 is out of range", "64-bit"},
	{`99999999999999999999`, 0, "out of range", ""},
	{`- 9223372036854775809`, 2, "out of range", ""},
	{`1e999`, 0, "number 1e999 is out of range", ""},
	{`foo(1)`, 0, `unknown function "foo"`, "functions are "},
	{`x + lenght(s)`, 4, `unknown function "lenght"`, "did you mean len?"},
	{`Lower(s)`, 0, `unknown function "Lower"`, "did you mean lower?"},
	{`starts(s, "a")`, 0, `unknown function "starts"`, ""},
	{`len()`, 0, "len takes 1 argument, got 0", "usage: len(x)"},
	{`len(a, b)`, 0, "len takes 1 argument, got 2", ""},
	{`substr(s)`, 0, "substr takes 2 to 3 arguments, got 1", ""},
	{`concat()`, 0, "concat takes at least 1 arguments, got 0", ""},
	{`key(1)`, 0, "key takes 0 arguments, got 1", ""},
	{`"a" * 2`, 0, "* wants numbers, got string", ""},
	{`price * "x"`, 8, "* wants numbers, got string", ""},
	{`2 * "a"`, 4, "* wants numbers, got string", ""},
	{`null * 2`, 0, "* wants numbers, got null", ""},
	{`1 + "a"`, 4, "+ wants two numbers or two strings, got int and string", ""},
	{`"a" + 1`, 6, "+ wants two numbers or two strings, got string and int", ""},
	{`x + true`, 4, "+ wants two numbers or two strings, got bool", ""},
	{`x - true`, 4, "- wants numbers", ""},
	{`!"x"`, 1, "! wants a bool, this is string", ""},
	{`-"x"`, 1, "- wants a number, this is string", ""},
	{`!len(x)`, 1, "! wants a bool, this is int", ""},
	{`lower(len(x))`, 6, "lower wants string, this is int", ""},
	{`len(x) < "a"`, 9, "< compares two numbers or two strings, got int and string", ""},
	{`1 < "a"`, 4, "< compares two numbers or two strings, got int and string", ""},
	{`true < 1`, 0, "< compares two numbers or two strings, got bool", ""},
	{`x < 1 < 2`, 0, "< compares two numbers or two strings, got bool", ""},
	{`1 && true`, 0, "&& wants bools, this is int", ""},
	{`x || "y"`, 5, "|| wants bools, this is string", ""},
	{`1 ? 2 : 3`, 0, "the condition of ?: must be a bool, this is int", ""},
	{`1 / 0`, 2, "division by zero", ""},
	{`1 % 0`, 2, "modulo by zero", ""},
	{`x + 1e308 * 10`, 10, "not a finite number", ""},
	{`lower(5)`, 6, "lower wants string, this is int", "usage: lower(s)"},
	{`substr("abc", "1")`, 14, "substr wants int as argument 2, this is string", ""},
	{`contains(s, 1)`, 12, "contains wants string as argument 2", ""},
	{`int(true)`, 4, "int wants int, float or string, this is bool", ""},
	{`int("x")`, 0, `int: "x" is not a number`, ""},
	{`int(1e19)`, 0, "out of the int64 range", ""},
	{`parse_time("2024-02-30T00:00:00Z")`, 0, "is not an RFC 3339 time", ""},
	{`exists(1)`, 7, "exists wants a field path", "x != null"},
	{`exists(lower(x))`, 7, "exists wants a field path", ""},
	{`meta(s)`, 5, "meta wants a string literal", ""},
	{`meta(1)`, 5, "meta wants string, this is int", ""},
	{`x in 5`, 5, "in wants an array, an object or a string on the right, this is int", ""},
	{`5 in "abc"`, 0, "in on a string wants a string on the left, this is int", ""},
	{`a[-1]`, 2, "negative index -1", "indexes count from 0"},
	{`a[true]`, 2, "an index must be an int or a string, this is bool", ""},
	{`a[1.5]`, 2, "an index must be an int or a string, this is float", ""},
	{`[1][-1]`, 4, "negative index", ""},
	{`x + (1 ? 2 : 3)`, 5, "the condition of ?: must be a bool", ""},
}

func TestCompileErrors(t *testing.T) {
	for _, tc := range compileErrorCases {
		p, err := Compile(tc.src)
		var ce *Error
		if !errors.As(err, &ce) {
			t.Errorf("Compile(%q) = %v, %v; want an *Error", tc.src, p, err)
			continue
		}
		if ce.Pos != tc.pos || !strings.Contains(ce.Msg, tc.msg) || !strings.Contains(ce.Hint, tc.hint) {
			t.Errorf("Compile(%q) error: pos %d, msg %q, hint %q\nwant pos %d, msg ~%q, hint ~%q",
				tc.src, ce.Pos, ce.Msg, ce.Hint, tc.pos, tc.msg, tc.hint)
		}
		if ce.Pos < 0 || ce.Pos > len(tc.src) {
			t.Errorf("Compile(%q): position %d outside the source", tc.src, ce.Pos)
		}
	}
}

func TestCompileNestingLimit(t *testing.T) {
	for _, src := range []string{
		strings.Repeat("(", 300) + "1" + strings.Repeat(")", 300),
		strings.Repeat("!", 300) + "true",
		strings.Repeat("-", 300) + "1",
		strings.Repeat("[", 300) + strings.Repeat("]", 300),
		"x" + strings.Repeat(" + x", 2000),
		"x" + strings.Repeat(".y", 2000),
		"x" + strings.Repeat("[0]", 2000),
	} {
		_, err := Compile(src)
		var ce *Error
		if !errors.As(err, &ce) || !strings.Contains(ce.Msg, "nested too deeply") && !strings.Contains(ce.Msg, "too complex") {
			t.Errorf("Compile(%.20s...) = %v, want a nesting error", src, err)
		}
	}
	// Just under the limits compiles.
	if _, err := Compile(strings.Repeat("(", 150) + "1" + strings.Repeat(")", 150)); err != nil {
		t.Error(err)
	}
	if _, err := Compile("x" + strings.Repeat(" + x", 500)); err != nil {
		t.Error(err)
	}
}

func TestErrorStrings(t *testing.T) {
	_, err := Compile(`a = 1`)
	if got, want := err.Error(), "col 3: unexpected '=' (use == to compare)"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	_, err = Compile(`1 +`)
	if got, want := err.Error(), "col 4: unexpected end of expression"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
	_, err = MustCompile(`x / 0.0`).Eval(newMapEnv(t, `{"x": 1}`))
	if got, want := err.Error(), "col 3: division by zero"; got != want {
		t.Errorf("Error() = %q, want %q", got, want)
	}
}

func TestMustCompilePanics(t *testing.T) {
	defer func() {
		if r := recover(); r == nil || !strings.Contains(r.(string), "unexpected '='") {
			t.Errorf("recover() = %v", r)
		}
	}()
	MustCompile(`a = b`)
}

func TestType(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want Type
	}{
		{`1`, TypeInt},
		{`1.5`, TypeFloat},
		{`"a"`, TypeString},
		{`true`, TypeBool},
		{`null`, TypeNull},
		{`[1]`, TypeArray},
		{`[a]`, TypeArray},
		{`a`, TypeAny},
		{`this`, TypeAny},
		{`a == 1`, TypeBool},
		{`a in [1]`, TypeBool},
		{`!a`, TypeBool},
		{`a + 1`, TypeNumber},
		{`a + "x"`, TypeString},
		{`a + b`, TypeAny},
		{`a * 1.5`, TypeFloat},
		{`len(a) * 2`, TypeInt},
		{`len(a) / 2.0`, TypeFloat},
		{`-a`, TypeNumber},
		{`lower(a)`, TypeString},
		{`len(a)`, TypeInt},
		{`a ?? 1`, TypeAny},
		{`len(a) ?? 1`, TypeInt},
		{`coalesce(lower(a), "x")`, TypeString},
		{`time()`, TypeInt},
		{`meta("x")`, TypeString},
		{`a ? 1 : 2`, TypeInt},
		{`a ? 1 : 2.5`, TypeNumber},
		{`a ? 1 : "x"`, TypeAny},
		{`abs(a)`, TypeNumber},
		{`abs(-1)`, TypeInt},
		{`floor(a * 1.0)`, TypeFloat},
		{`exists(a)`, TypeBool},
		{`string(a)`, TypeString},
		{`int(a)`, TypeInt},
		{`min(a, 1)`, TypeAny},
		{`min(len(a), 1)`, TypeInt},
		{`concat(a)`, TypeString},
		{`type_of(a)`, TypeString},
		{`hash(a)`, TypeInt},
		{`a.b[0]`, TypeAny},
	} {
		if got := MustCompile(tc.src).Type(); got != tc.want {
			t.Errorf("Type(%s) = %s, want %s", tc.src, got, tc.want)
		}
	}
}

func TestCheckBool(t *testing.T) {
	for _, src := range []string{`a`, `a == 1`, `a ?? true`, `len(a) > 0`, `a ? b : c`, `exists(a)`, `true`, `contains(a, "x")`} {
		if err := CheckBool(MustCompile(src)); err != nil {
			t.Errorf("CheckBool(%s) = %v, want nil", src, err)
		}
	}
	for _, tc := range []struct {
		src, msg string
		pos      int
	}{
		{`1`, "yields int", 0},
		{`lower(a)`, "yields string", 0},
		{`null`, "yields null", 0},
		{` a + 1`, "yields int or float", 1},
		{`len(a)`, "yields int", 0},
		{`[a]`, "yields array", 0},
	} {
		err := CheckBool(MustCompile(tc.src))
		var ce *Error
		if !errors.As(err, &ce) || !strings.Contains(ce.Msg, tc.msg) || ce.Pos != tc.pos || ce.Hint == "" {
			t.Errorf("CheckBool(%s) = %#v, want an *Error at %d containing %q with a hint", tc.src, err, tc.pos, tc.msg)
		}
	}
}

func TestIsPathAndFields(t *testing.T) {
	k, ix := jsondoc.Key, jsondoc.Index
	type path = []jsondoc.Seg
	for _, tc := range []struct {
		src    string
		isPath bool
		path   path
		fields [][]jsondoc.Seg
	}{
		{`a`, true, path{k("a")}, [][]jsondoc.Seg{{k("a")}}},
		{`a.b[0].c`, true, path{k("a"), k("b"), ix(0), k("c")}, [][]jsondoc.Seg{{k("a"), k("b"), ix(0), k("c")}}},
		{`(a.b)`, true, path{k("a"), k("b")}, [][]jsondoc.Seg{{k("a"), k("b")}}},
		{`this`, true, path{}, [][]jsondoc.Seg{{}}},
		{`this["x-y"]`, true, path{k("x-y")}, [][]jsondoc.Seg{{k("x-y")}}},
		{`a["b"]["c"]`, true, path{k("a"), k("b"), k("c")}, [][]jsondoc.Seg{{k("a"), k("b"), k("c")}}},
		{`a[1 + 1]`, true, path{k("a"), ix(2)}, [][]jsondoc.Seg{{k("a"), ix(2)}}},
		{`a + 1`, false, nil, [][]jsondoc.Seg{{k("a")}}},
		{`a.b + c[0] + a.b`, false, nil, [][]jsondoc.Seg{{k("a"), k("b")}, {k("c"), ix(0)}}},
		{`x[i].y`, false, nil, [][]jsondoc.Seg{{k("x")}, {k("i")}}},
		{`exists(q)`, false, nil, [][]jsondoc.Seg{{k("q")}}},
		{`1 + 2`, false, nil, nil},
		{`true || a`, false, nil, nil},
	} {
		p := MustCompile(tc.src)
		got, ok := p.IsPath()
		if ok != tc.isPath || !reflect.DeepEqual(got, tc.path) {
			t.Errorf("IsPath(%s) = %v, %v; want %v, %v", tc.src, got, ok, tc.path, tc.isPath)
		}
		if f := p.Fields(); !reflect.DeepEqual(f, tc.fields) {
			t.Errorf("Fields(%s) = %v, want %v", tc.src, f, tc.fields)
		}
		if p.Source() != tc.src {
			t.Errorf("Source() = %q, want %q", p.Source(), tc.src)
		}
	}
}

func TestConstantFolding(t *testing.T) {
	for _, tc := range []struct{ src, want string }{
		{`1 + 2 * 3`, `int 7`},
		{`"a" + "b"`, `string "ab"`},
		{`lower("ABC") + upper("d")`, `string "abcD"`},
		{`len("abc") > 2 && "x" in ["x"]`, `bool true`},
		{`false && a`, `bool false`},
		{`null && a`, `bool false`},
		{`true || a`, `bool true`},
		{`"x" ?? a`, `string "x"`},
		{`null ?? "y"`, `string "y"`},
		{`true ? "y" : a`, `string "y"`},
		{`false ? a : 3`, `int 3`},
		{`[1, "a"]`, `array [1,"a"]`},
		{`[1, 2][0]`, `int 1`},
		{`format_time(parse_time("2024-05-01T12:00:00+01:00"))`, `string "2024-05-01T11:00:00Z"`},
		{`(a == 1) ?? 5`, ``}, // left side can never be absent: folds to it
	} {
		p := MustCompile(tc.src)
		if tc.want == "" {
			continue
		}
		// A folded program reads no fields.
		if len(p.Fields()) != 0 {
			t.Errorf("%s: not folded, reads %v", tc.src, p.Fields())
		}
		v, err := p.Eval(&mapEnv{})
		if err != nil || show(v) != tc.want {
			t.Errorf("%s = %s, %v; want %s", tc.src, show(v), err, tc.want)
		}
	}
	// A folded constant string must not share writable capacity with other
	// constants.
	v, _ := MustCompile(`lower("ABC")`).Eval(&mapEnv{})
	if cap(v.S) != len(v.S) {
		t.Errorf("folded string has spare capacity %d", cap(v.S)-len(v.S))
	}
}
