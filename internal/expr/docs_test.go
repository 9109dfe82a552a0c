package expr

import "testing"

// TestDocExamples checks the examples of docs/expressions.md.
func TestDocExamples(t *testing.T) {
	runEvalCases(t, []evalCase{
		{`len("héllo")`, `int 6`},
		{`lower("ÄB")`, `string "äb"`},
		{`upper("abc")`, `string "ABC"`},
		{`trim("  a ")`, `string "a"`},
		{`concat("u1", ":", 3)`, `string "u1:3"`},
		{`substr("abcdef", 1, 3)`, `string "bcd"`},
		{`substr("abcdef", -2)`, `string "ef"`},
		{`string(42)`, `string "42"`},
		{`string(1.5)`, `string "1.5"`},
		{`string(strs)`, `string "[\"a\",\"b\"]"`},
		{`int("42")`, `int 42`},
		{`int(2.9)`, `int 2`},
		{`int("-2.9")`, `int -2`},
		{`float("1e3")`, `float 1000`},
		{`float(3)`, `float 3`},
		{`bool("1")`, `bool true`},
		{`bool(0)`, `bool false`},
		{`abs(-3)`, `int 3`},
		{`floor(2.7)`, `float 2`},
		{`ceil(2.1)`, `float 3`},
		{`round(2.5)`, `float 3`},
		{`round(-2.5)`, `float -3`},
		{`string(100.0)`, `string "100"`},
		{`string(1e21)`, `string "1e+21"`},
		{`string(0.0000001)`, `string "1e-7"`},
		{`parse_time("2024-05-01T14:00:00+02:00")`, `int 1714564800000000000`},
		{`format_time(1714564800123000000)`, `string "2024-05-01T12:00:00.123Z"`},
		{`7 / 2`, `int 3`},
		{`-7 / 2`, `int -3`},
		{`-7 % 2`, `int -1`},
		{`7 / 2.0`, `float 3.5`},
		{`1 == "1"`, `bool false`},
		{`3 == 3.0`, `bool true`},
		{`"B" < "a"`, `bool true`},
		{`"x" not in nope`, `bool true`},
		{`price > 10`, `bool false`},
		{`price <= 10`, `bool false`},
		{`(price ?? 0) * 2`, `int 0`},
		{`nickname ?? name ?? "anonymous"`, `string "anonymous"`},
		{`time() < now() - 60000000000`, `bool false`},
		{`price * 2`, `error: * wants numbers, got missing and int`},
		{`!("bot" in lower(user_agent ?? "")) && path not in ["/health", "/ready"]`, `bool true`},
		{`type == "click" || (type == "purchase" && price > 10)`, `bool false`},
		{`len(items) > 10 ? "large" : "small"`, `string "small"`},
		{`coalesce(user.region, meta("x-region"), "unknown")`, `string "unknown"`},
		{`exists(n) && n > 0`, `bool false`},
		{`"email" in obj`, `bool false`},
	}, nil)
	for _, src := range []string{`type != "view" && price > 10`, `lower(user.email)`, `user.id`, `hash(user.id) % 16`,
		`key() != ""`, `meta("content-type") == "application/json"`, `type_of(id) == "string"`, `exists(user.email)`,
		`price > 100 ? "high" : price > 10 ? "mid" : "low"`, `"bot" in user_agent`, `"email" in user`, `tags[i]`, `obj[name]`,
		`coalesce(a, b).name`, `this.in`, `this`, `starts_with(url, "https:")`, `ends_with(file, ".png")`, `contains(path, "/admin")`,
		`min(price, 100)`, `max(retries, 1)`, `first + " " + last`, `string(n) + "ms"`, `int(qty) * 2`, `substr(format_time(time()), 0, 10)`,
		`lower(trim(user.email))`, `price * quantity`, `region ?? "eu"`, `!deleted`, `x == null`, `x != null`} {
		if _, err := Compile(src); err != nil {
			t.Errorf("Compile(%s): %v", src, err)
		}
	}
	for src, want := range map[string]string{
		`a = 1`:       "col 3: unexpected '=' (use == to compare)",
		`lenght(s)`:   `col 1: unknown function "lenght" (did you mean len?)`,
		`"a" * 2`:     "col 1: * wants numbers, got string",
		`lower(name)`: "",
	} {
		_, err := Compile(src)
		if want == "" {
			if err := CheckBool(MustCompile(src)); err == nil {
				t.Errorf("CheckBool(%s) = nil, want an error", src)
			}
			continue
		}
		if err == nil || err.Error() != want {
			t.Errorf("Compile(%s) = %v, want %s", src, err, want)
		}
	}
}
