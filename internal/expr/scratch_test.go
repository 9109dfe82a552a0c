package expr

import (
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/weir-dev/weir/internal/jsondoc"
)

// TestScratch checks that several string results built in one evaluation
// stay intact, whatever the scratch buffer's starting capacity (small ones
// force reallocation mid-expression), and that bytes already in the buffer
// are left alone.
func TestScratch(t *testing.T) {
	const event = `{"a": "ABC", "b": "def", "i": 7, "f": 2.5, "u": "Ünï"}`
	cases := []struct{ src, want string }{
		{`concat(lower(a), upper(b))`, `string "abcDEF"`},
		{`lower(a) + upper(b)`, `string "abcDEF"`},
		{`lower(a) + upper(b) + lower(a)`, `string "abcDEFabc"`},
		{`lower(a) + "-" + upper(b) + "-" + string(i)`, `string "abc-DEF-7"`},
		{`upper(lower(a))`, `string "ABC"`},
		{`lower(a) == lower(a)`, `bool true`},
		{`string(i) + string(f)`, `string "72.5"`},
		{`[lower(a), upper(b), lower(a) + "!"]`, `array ["abc","DEF","abc!"]`},
		{`concat(lower(a), [upper(b)], lower(u))`, `string "abc[\"DEF\"]ünï"`},
		{`concat(upper(u), lower(a) + upper(b), format_time(i))`, `string "ÜNÏabcDEF1970-01-01T00:00:00.000000007Z"`},
		{`lower(a) in [upper(b), lower(a)]`, `bool true`},
		{`substr(lower(a) + upper(b), 2, 2)`, `string "cD"`},
		{`lower(a) < upper(b)`, `bool false`},
		{`[lower(a) + upper(b), string([upper(b), i])]`, `array ["abcDEF","[\"DEF\",7]"]`},
	}
	for _, capacity := range []int{0, 1, 4, 7, 64} {
		for _, tc := range cases {
			env := newMapEnv(t, event)
			env.scratch = append(make([]byte, 0, capacity), "PRE"...)
			if capacity < 3 {
				env.scratch = []byte("PRE")[:3:3]
			}
			v, err := MustCompile(tc.src).Eval(env)
			if err != nil || show(v) != tc.want {
				t.Errorf("cap %d: %s = %s, %v; want %s", capacity, tc.src, show(v), err, tc.want)
			}
			if string(env.scratch[:3]) != "PRE" {
				t.Errorf("cap %d: %s overwrote existing scratch bytes: %q", capacity, tc.src, env.scratch)
			}
		}
	}
}

// TestScratchResultsAreCapped checks that appending to a result cannot
// overwrite scratch bytes that follow it.
func TestScratchResultsAreCapped(t *testing.T) {
	env := newMapEnv(t, `{"a": "ABC", "b": "DEF"}`)
	env.scratch = make([]byte, 0, 64)
	v, err := MustCompile(`[lower(a), lower(b)]`).Eval(env)
	if err != nil {
		t.Fatal(err)
	}
	first, err := MustCompile(`lower(a)`).Eval(env)
	if err != nil {
		t.Fatal(err)
	}
	if cap(first.S) != len(first.S) || cap(v.S) != len(v.S) {
		t.Fatalf("results have spare capacity: %d, %d", cap(first.S)-len(first.S), cap(v.S)-len(v.S))
	}
	_ = append(first.S, "XXXX"...)
	if string(v.S) != `["abc","def"]` {
		t.Errorf("earlier result changed to %s", v.S)
	}
}

func TestNilScratchTolerated(t *testing.T) {
	env := &nilScratchEnv{mapEnv: newMapEnv(t, `{"a": "ABC"}`)}
	v, err := MustCompile(`lower(a) + "x"`).Eval(env)
	if err != nil || show(v) != `string "abcx"` {
		t.Errorf("got %s, %v", show(v), err)
	}
}

type nilScratchEnv struct{ *mapEnv }

func (nilScratchEnv) Scratch() *[]byte { return nil }

// TestConcurrentEval runs one program from 8 goroutines, each with its own
// Env; run it with -race.
func TestConcurrentEval(t *testing.T) {
	p := MustCompile(`concat(lower(name), "-", upper(name)) + string(n * 2) + (n in [1, 3, 5] ? "odd" : "")`)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for g := range 8 {
		wg.Go(func() {
			for i := range 500 {
				n := (g + i) % 6
				name := fmt.Sprintf("Gö%d", g)
				env := newMapEnv(t, fmt.Sprintf(`{"name": %q, "n": %d}`, name, n))
				v, err := p.Eval(env)
				want := strings.ToLower(name) + "-" + strings.ToUpper(name) + fmt.Sprint(n*2)
				if n%2 == 1 {
					want += "odd"
				}
				if err != nil || v.Kind != jsondoc.String || string(v.S) != want {
					errs <- fmt.Errorf("goroutine %d: got %s, %v; want %q", g, show(v), err, want)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// allocEnv is an Env that does not allocate, for allocation tests.
type allocEnv struct {
	sliceEnv
}

var allocKey, allocMeta = []byte("key-1"), []byte("hv")

func (e *allocEnv) Key() []byte { return allocKey }
func (e *allocEnv) Meta(name string) ([]byte, bool) {
	if name == "h" {
		return allocMeta, true
	}
	return nil, false
}
func (e *allocEnv) Time() int64 { return 1714564800000000000 }

func newAllocEnv() *allocEnv {
	fields := map[string]jsondoc.Value{
		"s":    jsondoc.StringValue([]byte("Hello")),
		"uni":  jsondoc.StringValue([]byte("ÄÖÜ straße")),
		"i":    jsondoc.IntValue(7),
		"f":    jsondoc.FloatValue(2.5),
		"t":    jsondoc.BoolValue(true),
		"num":  jsondoc.StringValue([]byte("42")),
		"flt":  jsondoc.StringValue([]byte("3.75")),
		"ts":   jsondoc.StringValue([]byte("2024-05-01T12:00:00.5+02:00")),
		"strs": jsondoc.RawValue(jsondoc.Array, []byte(`["a", "b\u0063", 3]`)),
		"obj":  jsondoc.RawValue(jsondoc.Object, []byte(`{"a": 1, "b": {"c": "d\n"}, "e\"k": [1, 2]}`)),
	}
	env := &allocEnv{}
	for _, k := range slices.Sorted(maps.Keys(fields)) { // a stable order for benchmarks
		env.paths = append(env.paths, []jsondoc.Seg{jsondoc.Key(k)})
		env.vals = append(env.vals, fields[k])
	}
	env.scratch = make([]byte, 0, 4096)
	return env
}

var allocFreeExprs = []string{
	`type != "view"`,
	`s == "Hello" || i > 3`,
	`i + 1`, `f / 2`, `i * f`, `-i`, `!t`,
	`s`, `obj`, `nope ?? s`,
	`s in ["a", "b"]`,
	`s in ["a","b","c","d","e","f","g","h","i","j","k","l","Hello"]`,
	`"bc" in strs`, `3 in strs`, `"a" in obj`, `"ell" in s`,
	`coalesce(nope, obj).b.c`, `coalesce(nope, obj)["e\"k"][1]`, `coalesce(strs)[1]`,
	`obj == obj`, `strs == ["a", "bc", 3]`,
	`lower(s)`, `upper(uni)`, `lower(s) + "x"`, `trim(s)`,
	`concat(lower(s), upper(s))`, `concat(s, i, f, t)`, `[s, i, f]`,
	`substr(s, 1, 2)`, `contains(s, "ll")`, `starts_with(s, "He")`,
	`len(s)`, `len(strs)`, `len(obj)`,
	`string(i)`, `string(f)`, `string(obj)`,
	`int(num)`, `int(flt)`, `float(flt)`, `bool("true")`,
	`abs(-i)`, `floor(f)`, `min(i, f)`, `max(s, "x")`,
	`exists(s)`, `type_of(obj)`,
	`key()`, `meta("h")`, `meta("x")`, `time()`,
	`parse_time(ts)`, `format_time(parse_time(ts))`, `format_time(time())`,
	`hash(s)`, `hash(i)`, `hash(f)`,
	`coalesce(nope, i)`,
	`i > 5 ? "big" : "small"`,
}

func TestZeroAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	for _, src := range allocFreeExprs {
		p := MustCompile(src)
		env := newAllocEnv()
		if _, err := p.Eval(env); err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		allocs := testing.AllocsPerRun(100, func() {
			env.scratch = env.scratch[:0]
			if _, err := p.Eval(env); err != nil {
				t.Fatal(err)
			}
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocs per Eval, want 0", src, allocs)
		}
	}
}
