package expr

import (
	"errors"
	"strings"
	"testing"

	"github.com/weir-dev/weir/internal/jsondoc"
)

// testEvent is the event most tests evaluate against.
const testEvent = `{
	"s": "Hello", "e": "", "i": 7, "neg": -3, "f": 2.5, "t": true, "fa": false, "nul": null,
	"arr": [1, "two", 3.5, null, {"k": "v"}], "strs": ["a", "b"],
	"obj": {"a": 1, "b": {"c": "d"}, "x-y": 2, "esc\"k": 3},
	"items": [{"price": 1}, {"price": 2.5}],
	"big": 9007199254740993, "ws": "  pad  ", "num": "42", "flt": "3.75",
	"ts": "2024-05-01T12:00:00Z", "uni": "ÄÖÜ straße", "content-type": "json",
	"in": "kw"
}`

// show renders a result for comparison: its kind and JSON text.
func show(v jsondoc.Value) string {
	if v.Kind == jsondoc.Missing {
		return "missing"
	}
	return v.Kind.String() + " " + string(jsondoc.AppendValue(nil, v))
}

type evalCase struct {
	src string
	// want is show(result), or "error: " and a substring of the error.
	want string
}

func runEvalCases(t *testing.T, cases []evalCase, setup func(*mapEnv)) {
	t.Helper()
	for _, tc := range cases {
		p, err := Compile(tc.src)
		if err != nil {
			t.Errorf("Compile(%s): %v", tc.src, err)
			continue
		}
		env := newMapEnv(t, testEvent)
		if setup != nil {
			setup(env)
		}
		v, err := p.Eval(env)
		got := show(v)
		if err != nil {
			got = "error: " + err.Error()
		}
		if want, ok := strings.CutPrefix(tc.want, "error: "); ok {
			if err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("%s = %s, want error containing %q", tc.src, got, want)
			}
			continue
		}
		if got != tc.want {
			t.Errorf("%s = %s, want %s", tc.src, got, tc.want)
		}
	}
}

func TestLiterals(t *testing.T) {
	runEvalCases(t, []evalCase{
		{`1`, `int 1`},
		{`-1`, `int -1`},
		{`1.5`, `float 1.5`},
		{`1e3`, `float 1000`},
		{`2.5E-1`, `float 0.25`},
		{`9223372036854775807`, `int 9223372036854775807`},
		{`-9223372036854775808`, `int -9223372036854775808`},
		{`"a\"b"`, `string "a\"b"`},
		{`'it\'s'`, `string "it's"`},
		{`'say "hi"'`, `string "say \"hi\""`},
		{`"\\ \/ \n\t\r"`, `string "\\ / \n\t\r"`},
		{`"\u00e9"`, `string "é"`},
		{`"\uD83D\uDE00"`, `string "😀"`},
		{`"\uFFFD\ud83d\ude00x"`, "string \"\uFFFD😀x\""},
		{`""`, `string ""`},
		{`true`, `bool true`},
		{`false`, `bool false`},
		{`null`, `null null`},
		{`[]`, `array []`},
		{`[1, "a", null, 2.5, true, [3]]`, `array [1,"a",null,2.5,true,[3]]`},
		{`[1, 2,]`, `array [1,2]`},
		{` ( 1 ) `, `int 1`},
	}, nil)
}

func TestPaths(t *testing.T) {
	runEvalCases(t, []evalCase{
		{`s`, `string "Hello"`},
		{`nope`, `missing`},
		{`nul`, `null null`},
		{`obj.a`, `int 1`},
		{`obj.b.c`, `string "d"`},
		{`obj.nope.deeper`, `missing`},
		{`items[1].price`, `float 2.5`},
		{`items[5].price`, `missing`},
		{`obj["x-y"]`, `int 2`},
		{`this["content-type"]`, `string "json"`},
		{`this["in"]`, `string "kw"`},
		{`this.in`, `string "kw"`},
		{`this.s`, `string "Hello"`},
		{`this[ 's' ]`, `string "Hello"`},
		{`s.x`, `missing`},
		{`arr[1]`, `string "two"`},
		{`arr["x"]`, `missing`},
		{`strs`, `array ["a","b"]`},
		// Computed indexes and members walk the raw JSON value.
		{`items[i - 6].price`, `float 2.5`},
		{`obj[s == "Hello" ? "a" : "b"]`, `int 1`},
		{`arr[neg]`, `missing`},
		{`arr[nul]`, `missing`},
		{`arr[nope]`, `missing`},
		{`arr[i]`, `missing`},
		{`arr[t]`, `error: index must be an int or a string, got bool`},
		{`coalesce(nope, obj).b.c`, `string "d"`},
		{`coalesce(nope, obj).nope`, `missing`},
		{`coalesce(nope, obj)["x-y"]`, `int 2`},
		{`coalesce(nope, obj)["esc\"k"]`, `int 3`},
		{`coalesce(nope, obj)[0]`, `missing`},
		{`coalesce(nope, arr)[4].k`, `string "v"`},
		{`coalesce(nope, arr)[3]`, `null null`},
		{`coalesce(nope, arr)["k"]`, `missing`},
		{`coalesce(nope, s).x`, `missing`},
		{`[1, 2, 3][1]`, `int 2`},
		{`[s, i][1]`, `int 7`},
		{`type_of(this)`, `string "object"`},
	}, nil)
}

func TestArithmetic(t *testing.T) {
	runEvalCases(t, []evalCase{
		{`i + 1`, `int 8`},
		{`i + f`, `float 9.5`},
		{`i - 10`, `int -3`},
		{`i * neg`, `int -21`},
		{`i / 2`, `int 3`},
		{`neg / 2`, `int -1`},
		{`i % 3`, `int 1`},
		{`neg % 2`, `int -1`},
		{`f * 2`, `float 5`},
		{`f / 2`, `float 1.25`},
		{`f % 2`, `float 0.5`},
		{`i / 2.0`, `float 3.5`},
		{`1 + 2 * 3`, `int 7`},
		{`(1 + 2) * 3`, `int 9`},
		{`10 - 2 - 3`, `int 5`},
		{`100 / 10 / 5`, `int 2`},
		{`-i`, `int -7`},
		{`-f`, `float -2.5`},
		{`- -i`, `int 7`},
		{`-i * 2`, `int -14`},
		{`9223372036854775807 + (i - 6)`, `int -9223372036854775808`},
		{`-9223372036854775808 / (i - 8)`, `int -9223372036854775808`},
		{`i / (i - 7)`, `error: division by zero`},
		{`i % (i - 7)`, `error: modulo by zero`},
		{`f / (i - 7)`, `error: division by zero`},
		{`f % (f - 2.5)`, `error: modulo by zero`},
		{`f * 1e308 * 10`, `error: result of * is not a finite number`},
		{`s + "!"`, `string "Hello!"`},
		{`e + s`, `string "Hello"`},
		{`s + e`, `string "Hello"`},
		{`"a" + "b"`, `string "ab"`},
		{`s + i`, `error: + wants two numbers or two strings, got string and int`},
		{`nope + 1`, `error: + wants two numbers or two strings, got missing and int`},
		{`nul * 2`, `error: * wants numbers, got null and int`},
		{`t - 1`, `error: - wants numbers, got bool and int`},
		{`-s`, `error: - wants a number, got string`},
		{`-nope`, `error: - wants a number, got missing`},
	}, nil)
}

func TestComparison(t *testing.T) {
	runEvalCases(t, []evalCase{
		{`i == 7`, `bool true`},
		{`i == 7.0`, `bool true`},
		{`7.0 == i`, `bool true`},
		{`f == 2.5`, `bool true`},
		{`i != 8`, `bool true`},
		{`s == "Hello"`, `bool true`},
		{`"Hello" == s`, `bool true`},
		{`s == "hello"`, `bool false`},
		{`s != "hello"`, `bool true`},
		{`i == "7"`, `bool false`},
		{`t == true`, `bool true`},
		{`t == 1`, `bool false`},
		{`nope == null`, `bool true`},
		{`nul == null`, `bool true`},
		{`nope == nul`, `bool true`},
		{`nope != null`, `bool false`},
		{`s != null`, `bool true`},
		{`s == nope`, `bool false`},
		{`obj == obj`, `bool true`},
		{`obj.b == coalesce(nope, obj).b`, `bool true`},
		{`strs == ["a", "b"]`, `bool true`},
		{`strs == ["b", "a"]`, `bool false`},
		{`strs == ["a"]`, `bool false`},
		{`items[1] == items[0]`, `bool false`},
		{`big == 9007199254740992.0`, `bool false`},
		{`big > 9007199254740992.0`, `bool true`},
		{`i < 10`, `bool true`},
		{`i <= 7`, `bool true`},
		{`i > f`, `bool true`},
		{`f < i`, `bool true`},
		{`f >= 2.5`, `bool true`},
		{`i > 7`, `bool false`},
		{`s < "World"`, `bool true`},
		{`s > "Hello"`, `bool false`},
		{`s >= "Hello"`, `bool true`},
		{`"a" < "b"`, `bool true`},
		{`"B" < "a"`, `bool true`},
		{`nope < 1`, `bool false`},
		{`nope >= 1`, `bool false`},
		{`nul < 1`, `bool false`},
		{`1 > nope`, `bool false`},
		{`s < 1`, `error: < compares two numbers or two strings, got string and int`},
		{`t < fa`, `error: < compares two numbers or two strings, got bool and bool`},
		{`obj > 1`, `error: > compares`},
	}, nil)
}

func TestLogic(t *testing.T) {
	runEvalCases(t, []evalCase{
		{`t && fa`, `bool false`},
		{`t && t`, `bool true`},
		{`t || fa`, `bool true`},
		{`fa || fa`, `bool false`},
		{`!t`, `bool false`},
		{`!!t`, `bool true`},
		{`!nope`, `bool true`},
		{`!nul`, `bool true`},
		{`nope && t`, `bool false`},
		{`nope || t`, `bool true`},
		{`t && nope`, `bool false`},
		{`i && t`, `error: && wants bools, left side is int`},
		{`t && i`, `error: && wants bools, right side is int`},
		{`fa || s`, `error: || wants bools, right side is string`},
		{`fa && i`, `bool false`},
		{`t || i`, `bool true`},
		{`!s`, `error: ! wants a bool, got string`},
		{`t || fa && fa`, `bool true`},
		{`(t || fa) && fa`, `bool false`},
		{`i > 5 && s == "Hello"`, `bool true`},
		// Coalesce.
		{`nope ?? "d"`, `string "d"`},
		{`nul ?? 1`, `int 1`},
		{`s ?? "d"`, `string "Hello"`},
		{`fa ?? true`, `bool false`},
		{`nope ?? nul`, `null null`},
		{`nope ?? nul ?? 3`, `int 3`},
		{`nope ?? 1 + 1`, `int 2`},
		// Conditional.
		{`t ? 1 : 2`, `int 1`},
		{`fa ? 1 : 2`, `int 2`},
		{`nope ? 1 : 2`, `int 2`},
		{`i > 5 ? "big" : "small"`, `string "big"`},
		{`i > 10 ? "a" : i > 5 ? "b" : "c"`, `string "b"`},
		{`t ? fa ? 1 : 2 : 3`, `int 2`},
		{`nope ?? fa ? 1 : 2`, `int 2`},
		{`s ? 1 : 2`, `error: the condition of ?: must be a bool, got string`},
	}, nil)
}

func TestIn(t *testing.T) {
	runEvalCases(t, []evalCase{
		{`s in ["Hello", "x"]`, `bool true`},
		{`s in ["x", "y"]`, `bool false`},
		{`s not in ["Hello"]`, `bool false`},
		{`s not in ["x"]`, `bool true`},
		{`i in [1, 7.0]`, `bool true`},
		{`f in [1, 7]`, `bool false`},
		{`nope in [null]`, `bool true`},
		{`nope in ["a"]`, `bool false`},
		{`i in ["7"]`, `bool false`},
		{`strs in [["a", "b"], 1]`, `bool true`},
		{`s in ["a","b","c","d","e","f","g","h","i","j","k","l","Hello"]`, `bool true`},
		{`s in ["a","b","c","d","e","f","g","h","i","j","k","l","m"]`, `bool false`},
		{`i in ["a","b","c","d","e","f","g","h","i","j","k","l","m"]`, `bool false`},
		{`s in [e, s]`, `bool true`},
		{`i in [neg, 7]`, `bool true`},
		{`i not in [neg, 8]`, `bool true`},
		{`"two" in arr`, `bool true`},
		{`3.5 in arr`, `bool true`},
		{`1.0 in arr`, `bool true`},
		{`nope in arr`, `bool true`},
		{`"zzz" in arr`, `bool false`},
		{`coalesce(nope, arr)[4] in arr`, `bool true`},
		{`"a" in obj`, `bool true`},
		{`"zz" in obj`, `bool false`},
		{`"esc\"k" in obj`, `bool true`},
		{`nope in obj`, `bool false`},
		{`"ell" in s`, `bool true`},
		{`"xyz" in s`, `bool false`},
		{`"" in s`, `bool true`},
		{`nope in s`, `bool false`},
		{`"x" in nope`, `bool false`},
		{`"x" not in nope`, `bool true`},
		{`"x" in nul`, `bool false`},
		{`i in s`, `error: in on a string wants a string on the left, got int`},
		{`i in obj`, `error: in on an object wants a string key, got int`},
		{`s in i`, `error: in wants an array, an object or a string on the right, got int`},
		{`1 + 1 in [2]`, `bool true`},
		{`"a" in strs == true`, `bool true`},
	}, nil)
}

func TestFunctions(t *testing.T) {
	runEvalCases(t, []evalCase{
		{`len(s)`, `int 5`},
		{`len(uni)`, `int 14`},
		{`len(arr)`, `int 5`},
		{`len(obj)`, `int 4`},
		{`len([])`, `int 0`},
		{`len("")`, `int 0`},
		{`len(nope)`, `missing`},
		{`len(nul)`, `null null`},
		{`len(i)`, `error: len wants a string, an array or an object, got int`},

		{`lower(s)`, `string "hello"`},
		{`upper(s)`, `string "HELLO"`},
		{`lower("abc")`, `string "abc"`},
		{`lower(uni)`, `string "äöü straße"`},
		{`upper(uni)`, `string "ÄÖÜ STRAßE"`},
		{`lower(nope)`, `missing`},
		{`upper(nul)`, `null null`},
		{`lower(i)`, `error: lower wants a string, got int`},
		{`trim(ws)`, `string "pad"`},
		{`trim(s)`, `string "Hello"`},
		{`trim(i)`, `error: trim wants a string, got int`},

		{`contains(s, "ell")`, `bool true`},
		{`contains(s, "xyz")`, `bool false`},
		{`starts_with(s, "He")`, `bool true`},
		{`starts_with(s, "he")`, `bool false`},
		{`ends_with(s, "lo")`, `bool true`},
		{`ends_with(s, "x")`, `bool false`},
		{`contains(nope, "x")`, `missing`},
		{`contains(s, nul)`, `null null`},
		{`contains(s, i)`, `error: contains wants two strings, got string and int`},

		{`concat(s, " ", i, " ", f, " ", t, " ", nul, nope, " ", strs)`, `string "Hello 7 2.5 true  [\"a\",\"b\"]"`},
		{`concat(s)`, `string "Hello"`},
		{`concat(i)`, `string "7"`},
		{`concat(nope)`, `string ""`},
		{`concat("a", "b")`, `string "ab"`},

		{`substr(s, 1, 3)`, `string "ell"`},
		{`substr(s, 1)`, `string "ello"`},
		{`substr(s, -3)`, `string "llo"`},
		{`substr(s, -10, 2)`, `string "He"`},
		{`substr(s, 10)`, `string ""`},
		{`substr(s, 2, -1)`, `string ""`},
		{`substr(s, 3, 100)`, `string "lo"`},
		{`substr(nope, 1)`, `missing`},
		{`substr(s, 1, nope)`, `missing`},
		{`substr(s, f)`, `error: substr wants a string and an int, got string and float`},
		{`substr(s, 1, f)`, `error: substr wants an int length, got float`},

		{`string(i)`, `string "7"`},
		{`string(f)`, `string "2.5"`},
		{`string(t)`, `string "true"`},
		{`string(nul)`, `string "null"`},
		{`string(nope)`, `missing`},
		{`string(s)`, `string "Hello"`},
		{`string(strs)`, `string "[\"a\",\"b\"]"`},
		{`string(1e21)`, `string "1e+21"`},
		{`string(0.0000001)`, `string "1e-7"`},
		{`string(100.0)`, `string "100"`},

		{`int(f)`, `int 2`},
		{`int(-2.5)`, `int -2`},
		{`int(num)`, `int 42`},
		{`int(flt)`, `int 3`},
		{`int("-12")`, `int -12`},
		{`int(i)`, `int 7`},
		{`int(nope)`, `missing`},
		{`int(s)`, `error: int: "Hello" is not a number`},
		{`int(t)`, `error: int wants a number or a numeric string, got bool`},
		{`int(f * 1e300)`, `error: out of the int64 range`},

		{`float(i)`, `float 7`},
		{`float(flt)`, `float 3.75`},
		{`float("1e3")`, `float 1000`},
		{`float(f)`, `float 2.5`},
		{`float(s)`, `error: float: "Hello" is not a finite number`},
		{`float(s == "x" ? "" : "inf")`, `error: is not a finite number`},

		{`bool("true")`, `bool true`},
		{`bool("0")`, `bool false`},
		{`bool(i)`, `bool true`},
		{`bool(0.0)`, `bool false`},
		{`bool(t)`, `bool true`},
		{`bool(s)`, `error: bool: "Hello" is not true or false`},
		{`bool(obj)`, `error: bool wants a bool, a number or a string, got object`},

		{`abs(neg)`, `int 3`},
		{`abs(-2.5)`, `float 2.5`},
		{`abs(i)`, `int 7`},
		{`abs(s)`, `error: abs wants a number, got string`},
		{`floor(f)`, `float 2`},
		{`ceil(f)`, `float 3`},
		{`round(f)`, `float 3`},
		{`round(-2.5)`, `float -3`},
		{`floor(i)`, `int 7`},
		{`floor(nope)`, `missing`},

		{`min(i, f)`, `float 2.5`},
		{`max(i, f)`, `int 7`},
		{`min(s, "A")`, `string "A"`},
		{`max(1, 2, 3)`, `int 3`},
		{`min(7, 7.0)`, `int 7`},
		{`min(i, nope)`, `missing`},
		{`min(i, s)`, `error: min wants numbers or strings, got int and string`},
		{`max(t, fa)`, `error: max wants numbers or strings, got bool and bool`},

		{`exists(s)`, `bool true`},
		{`exists(nope)`, `bool false`},
		{`exists(nul)`, `bool true`},
		{`exists(obj.b.c)`, `bool true`},
		{`exists(items[5])`, `bool false`},
		{`exists(coalesce(nope, obj).a)`, `bool true`},
		{`exists(this)`, `bool true`},

		{`type_of(nope)`, `string "missing"`},
		{`type_of(nul)`, `string "null"`},
		{`type_of(t)`, `string "bool"`},
		{`type_of(i)`, `string "int"`},
		{`type_of(f)`, `string "float"`},
		{`type_of(s)`, `string "string"`},
		{`type_of(obj)`, `string "object"`},
		{`type_of(arr)`, `string "array"`},

		{`parse_time(ts)`, `int 1714564800000000000`},
		{`parse_time("2024-05-01T14:00:00+02:00")`, `int 1714564800000000000`},
		{`parse_time("2024-05-01T12:00:00.123456789Z")`, `int 1714564800123456789`},
		{`parse_time(nope)`, `missing`},
		{`parse_time(s)`, `error: parse_time: "Hello" is not an RFC 3339 time`},
		{`parse_time(i)`, `error: parse_time wants a string, got int`},
		{`format_time(1714564800000000000)`, `string "2024-05-01T12:00:00Z"`},
		{`format_time(1714564800123000000)`, `string "2024-05-01T12:00:00.123Z"`},
		{`format_time(parse_time(ts) + i)`, `string "2024-05-01T12:00:00.000000007Z"`},
		{`format_time(s)`, `error: format_time wants Unix nanoseconds, got string`},

		{`hash("a")`, `int -5808556873153909620`},
		{`hash(s) == hash("Hello")`, `bool true`},
		{`hash(i) == hash("7")`, `bool true`},
		{`hash(strs) == hash("[\"a\",\"b\"]")`, `bool true`},
		{`hash(nope)`, `missing`},

		{`coalesce(nope, nul, i)`, `int 7`},
		{`coalesce(nope, nul)`, `null null`},
		{`coalesce(nope)`, `missing`},
		{`coalesce(s, i / (i - 7))`, `string "Hello"`},
	}, nil)
}

func TestEventFunctions(t *testing.T) {
	runEvalCases(t, []evalCase{
		{`key()`, `string "k1"`},
		{`meta("h")`, `string "v"`},
		{`meta("none")`, `missing`},
		{`meta("none") ?? "dflt"`, `string "dflt"`},
		{`time()`, `int 1700000000000000000`},
		{`format_time(time())`, `string "2023-11-14T22:13:20Z"`},
	}, func(e *mapEnv) {
		e.key = []byte("k1")
		e.meta = map[string]string{"h": "v"}
		e.time = 1700000000000000000
	})
	runEvalCases(t, []evalCase{
		{`key()`, `string ""`},
		{`time()`, `missing`},
		{`time() ?? 0`, `int 0`},
	}, nil)

	p := MustCompile(`now()`)
	before := nowNanos()
	v, err := p.Eval(newMapEnv(t, testEvent))
	after := nowNanos()
	if err != nil || v.Kind != jsondoc.Int || v.I < before || v.I > after {
		t.Errorf("now() = %s, %v; want an int in [%d, %d]", show(v), err, before, after)
	}
}

func TestEvalBool(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want bool
		err  string
	}{
		{src: `t`, want: true},
		{src: `fa`},
		{src: `nope`},
		{src: `nul`},
		{src: `i > 5`, want: true},
		{src: `i`, err: "col 1: condition yields int, want bool"},
		{src: `  s`, err: "col 3: condition yields string, want bool"},
	} {
		b, err := MustCompile(tc.src).EvalBool(newMapEnv(t, testEvent))
		switch {
		case tc.err != "":
			var ee *EvalError
			if !errors.As(err, &ee) || err.Error() != tc.err {
				t.Errorf("EvalBool(%s) error = %v, want *EvalError %q", tc.src, err, tc.err)
			}
		case err != nil || b != tc.want:
			t.Errorf("EvalBool(%s) = %v, %v; want %v", tc.src, b, err, tc.want)
		}
	}
}

func TestEvalErrorPos(t *testing.T) {
	for _, tc := range []struct {
		src string
		pos int
	}{
		{`i / (i - 7)`, 2},
		{`s + 1`, 2},
		{`1 + (s * 2)`, 7},
		{`!s`, 0},
		{`-s`, 0},
		{`t &&  i`, 2},
		{`s < 1`, 2},
		{`lower(i)`, 0},
		{`x + len(i)`, 4},
		{`s in i`, 2},
		{`s ? 1 : 2`, 2},
		{`arr[t]`, 3},
		{`min(i, s)`, 0},
	} {
		_, err := MustCompile(tc.src).Eval(newMapEnv(t, testEvent))
		var ee *EvalError
		if !errors.As(err, &ee) {
			t.Errorf("%s: error %v, want *EvalError", tc.src, err)
			continue
		}
		if ee.Pos != tc.pos {
			t.Errorf("%s: error at %d (%v), want %d", tc.src, ee.Pos, ee, tc.pos)
		}
	}
}

func TestFieldErrorPassesThrough(t *testing.T) {
	bad := errors.New("unparseable event")
	for _, src := range []string{`s`, `s == "x"`, `lower(s)`, `t && s`, `coalesce(s)`, `exists(s)`, `[s]`, `s in ["a"]`} {
		env := newMapEnv(t, testEvent)
		env.fieldErr = bad
		if _, err := MustCompile(src).Eval(env); err != bad {
			t.Errorf("%s: error %v, want the Env's error unchanged", src, err)
		}
	}
}

func TestShortCircuit(t *testing.T) {
	for _, tc := range []struct {
		src   string
		calls int
	}{
		{`fa && s == "x"`, 1},
		{`nope && s == "x"`, 1},
		{`t || s == "x"`, 1},
		{`t && s == "x"`, 2},
		{`fa || s == "x"`, 2},
		{`s ?? nope`, 1},
		{`nope ?? s`, 2},
		{`coalesce(s, nope, i)`, 1},
		{`coalesce(nope, nul, i)`, 3},
		{`t ? s : nope`, 2},
		{`fa ? s : nope`, 2},
		{`s in [i, s, f]`, 3},
		// Constant conditions are folded away entirely.
		{`false && s == "x"`, 0},
		{`true || s`, 0},
		{`true ? s : i`, 1},
		{`"x" ?? s`, 0},
	} {
		env := newMapEnv(t, testEvent)
		if _, err := MustCompile(tc.src).Eval(env); err != nil {
			t.Errorf("%s: %v", tc.src, err)
		}
		if env.calls != tc.calls {
			t.Errorf("%s: %d Field calls, want %d", tc.src, env.calls, tc.calls)
		}
	}
}
