package processor_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/expr"
	"github.com/weir-dev/weir/internal/jsondoc"
	"github.com/weir-dev/weir/internal/processor"
	"github.com/weir-dev/weir/internal/runtime"
)

// procNode parses a pipeline whose processor "p" has the given fields (YAML
// lines indented by four spaces, below "p:") and returns p's config node.
// The processor's name is at 6:3 of test.yaml; its first field is on line 9.
func procNode(t *testing.T, typ, fields string) *config.Node {
	t.Helper()
	src := "name: t\n" +
		"inputs:\n" +
		"  in: {type: generate}\n" +
		"outputs: {out: {type: discard, from: p}}\n" +
		"processors:\n" +
		"  p:\n" +
		"    type: " + typ + "\n" +
		"    from: in\n" +
		fields
	p, err := config.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("config.Parse: %v\n%s", err, src)
	}
	n := p.Node("p")
	if n == nil {
		t.Fatal("no node p")
	}
	return n
}

// compileFilter decodes and compiles a filter the way the app does.
func compileFilter(t *testing.T, fields string) (*processor.Filter, config.Errors) {
	t.Helper()
	n := procNode(t, "filter", fields)
	var cfg processor.FilterConfig
	if errs := n.Decode(&cfg); len(errs) > 0 {
		t.Fatalf("Decode: %v", errs)
	}
	return processor.CompileFilter(cfg, n.Path())
}

// decodeMap decodes a map's config from YAML.
func decodeMap(t *testing.T, fields string) (processor.MapConfig, *config.Node, config.Errors) {
	t.Helper()
	n := procNode(t, "map", fields)
	var cfg processor.MapConfig
	errs := n.Decode(&cfg)
	return cfg, n, errs
}

// compileMap decodes and compiles a map the way the app does.
func compileMap(t *testing.T, fields string) (*processor.Map, config.Errors) {
	t.Helper()
	cfg, n, errs := decodeMap(t, fields)
	if len(errs) > 0 {
		t.Fatalf("Decode: %v", errs)
	}
	return processor.CompileMap(cfg, n.Path(), n.FieldPos)
}

func mustFilter(t *testing.T, fields string) runtime.Processor {
	t.Helper()
	f, errs := compileFilter(t, fields)
	if len(errs) > 0 || f == nil {
		t.Fatalf("CompileFilter: %v", errs)
	}
	return f.New()
}

func mustMap(t *testing.T, fields string) runtime.Processor {
	t.Helper()
	m, errs := compileMap(t, fields)
	if len(errs) > 0 || m == nil {
		t.Fatalf("CompileMap: %v", errs)
	}
	return m.New()
}

// result is what a chain of processors did to one event.
type result struct {
	keep  bool
	err   error
	value string // the serialized document (the input when unmodified)
	key   []byte
}

// runChain runs procs on one event the way a fused stage does: one Record,
// every processor in turn until one drops the event or fails, then the
// document serialized once.
func runChain(t *testing.T, value string, key []byte, procs ...runtime.Processor) result {
	t.Helper()
	ev := event.Event{Value: []byte(value), Key: key, Offset: 7}
	var r runtime.Record
	r.Reset(&ev)
	res := result{keep: true}
	for _, p := range procs {
		res.keep, res.err = p.Process(&r)
		if !res.keep || res.err != nil {
			break
		}
	}
	res.value = value
	if r.Modified() {
		d, err := r.Doc()
		if err != nil {
			t.Fatalf("Doc after a modification: %v", err)
		}
		res.value = string(d.AppendJSON(nil))
	}
	if string(ev.Value) != value {
		t.Errorf("a processor changed Event.Value in place: %q, want %q", ev.Value, value)
	}
	res.key = ev.Key
	return res
}

func TestFilter(t *testing.T) {
	for _, tc := range []struct {
		expr, value string
		keep        bool
		err         string // fragment of the error, "" for none
	}{
		{"price > 10", `{"price":20}`, true, ""},
		{"price > 10", `{"price":10}`, false, ""},
		{"price > 10", `{}`, false, ""},
		{"price > 10", `{"price":null}`, false, ""},
		{"flag", `{"flag":true}`, true, ""},
		{"flag", `{"flag":false}`, false, ""},
		{"flag", `{}`, false, ""},
		{"flag", `{"flag":null}`, false, ""},
		{"flag", `{"flag":"yes"}`, false, "condition yields string, want bool"},
		{"flag", `{"flag":1}`, false, "condition yields int, want bool"},
		{"flag", `{"flag":[true]}`, false, "condition yields array, want bool"},
		{`type == "purchase" && price > 10`, `{"type":"purchase","price":11}`, true, ""},
		{`type == "purchase" && price > 10`, `{"type":"view","price":11}`, false, ""},
		{"!deleted", `{}`, true, ""},
		{"a / b > 1", `{"a":1,"b":0}`, false, "division by zero"},
		{"flag", `{"flag":`, false, "invalid JSON"},
	} {
		t.Run(tc.expr+" on "+tc.value, func(t *testing.T) {
			res := runChain(t, tc.value, nil, mustFilter(t, "    expr: '"+tc.expr+"'\n"))
			if tc.err != "" {
				if res.err == nil || !strings.Contains(res.err.Error(), tc.err) {
					t.Fatalf("Process = %v, %v; want an error containing %q", res.keep, res.err, tc.err)
				}
				if res.keep {
					t.Errorf("Process kept the event along with an error")
				}
				return
			}
			if res.err != nil || res.keep != tc.keep {
				t.Errorf("Process = %v, %v; want %v, nil", res.keep, res.err, tc.keep)
			}
			if res.value != tc.value {
				t.Errorf("filter changed the value to %s", res.value)
			}
		})
	}
}

// An event that is not JSON fails with a *runtime.ParseError carrying the
// event's offset, whichever processor reads it first.
func TestInvalidJSONIsParseError(t *testing.T) {
	for name, p := range map[string]runtime.Processor{
		"filter": mustFilter(t, "    expr: ok\n"),
		"map":    mustMap(t, "    set: {x: '1'}\n"),
	} {
		res := runChain(t, `{"ok":tru}`, nil, p)
		var pe *runtime.ParseError
		if !errors.As(res.err, &pe) || pe.Offset != 7 || res.keep {
			t.Errorf("%s: Process = %v, %v; want false and a *runtime.ParseError at offset 7", name, res.keep, res.err)
		}
	}
}

func TestMap(t *testing.T) {
	for _, tc := range []struct {
		name   string
		fields string
		value  string
		want   string // serialized result
		err    string // fragment of the error, "" for none
	}{
		{
			name:   "set in order, each expression sees the ones before",
			fields: "    set:\n      a: '1'\n      b: a + 1\n      c: b * 10\n      d: c + a\n",
			value:  `{"id":1}`,
			want:   `{"id":1,"a":1,"b":2,"c":20,"d":21}`,
		},
		{
			name:   "set replaces a field in place",
			fields: "    set:\n      price: price * 2\n",
			value:  `{"price":21,"id":"x"}`,
			want:   `{"price":42,"id":"x"}`,
		},
		{
			name:   "nested set creates objects",
			fields: "    set:\n      user.address.city: '\"Paris\"'\n",
			value:  `{"id":1}`,
			want:   `{"id":1,"user":{"address":{"city":"Paris"}}}`,
		},
		{
			name:   "nested set into an existing object",
			fields: "    set:\n      user.age: 3\n      user.name: upper(user.name)\n",
			value:  `{"user":{"name":"ada"},"id":1}`,
			want:   `{"user":{"name":"ADA","age":3},"id":1}`,
		},
		{
			name:   "a missing result deletes the field",
			fields: "    set:\n      gone: nothing_here\n",
			value:  `{"gone":1,"kept":2}`,
			want:   `{"kept":2}`,
		},
		{
			name:   "a null result sets null",
			fields: "    set:\n      n: 'null'\n",
			value:  `{"n":1}`,
			want:   `{"n":null}`,
		},
		{
			name:   "rename",
			fields: "    rename:\n      page: url\n",
			value:  `{"page":"/","id":1}`,
			want:   `{"id":1,"url":"/"}`,
		},
		{
			name:   "rename out of a nested object",
			fields: "    rename:\n      user.name: name\n",
			value:  `{"user":{"name":"ada","id":2}}`,
			want:   `{"user":{"id":2},"name":"ada"}`,
		},
		{
			name:   "rename of an absent field is skipped",
			fields: "    rename:\n      page: url\n",
			value:  `{"id":1}`,
			want:   `{"id":1}`,
		},
		{
			name:   "delete",
			fields: "    delete: [user_agent, user.secret, absent]\n",
			value:  `{"id":1,"user_agent":"curl","user":{"secret":"s","name":"n"}}`,
			want:   `{"id":1,"user":{"name":"n"}}`,
		},
		{
			name: "steps run set, rename, delete",
			// set writes tmp from x; rename moves tmp to y; delete removes
			// x. Any other order leaves a different document.
			fields: "    set:\n      tmp: x * 2\n    rename:\n      tmp: y\n    delete: [x]\n",
			value:  `{"x":4}`,
			want:   `{"y":8}`,
		},
		{
			name:   "set whose expression fails returns the error",
			fields: "    set:\n      ratio: a / b\n",
			value:  `{"a":1,"b":0}`,
			err:    "division by zero",
		},
		{
			name:   "set with a type error at run time returns the error",
			fields: "    set:\n      n: a * 2\n",
			value:  `{"a":"two"}`,
			err:    "* wants numbers",
		},
		{
			name:   "set below a value that is not an object is an error",
			fields: "    set:\n      a.b: '1'\n",
			value:  `{"a":5}`,
			err:    "not an object",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runChain(t, tc.value, nil, mustMap(t, tc.fields))
			if tc.err != "" {
				if res.err == nil || !strings.Contains(res.err.Error(), tc.err) || res.keep {
					t.Fatalf("Process = %v, %v; want false and an error containing %q", res.keep, res.err, tc.err)
				}
				return
			}
			if res.err != nil || !res.keep {
				t.Fatalf("Process = %v, %v; want true, nil", res.keep, res.err)
			}
			if res.value != tc.want {
				t.Errorf("value = %s\n   want %s", res.value, tc.want)
			}
		})
	}
}

// A set whose expression fails at run time reports an *expr.EvalError with
// the offset of the operator at fault.
func TestMapEvalErrorType(t *testing.T) {
	res := runChain(t, `{"a":1,"b":0}`, nil, mustMap(t, "    set:\n      r: a / b\n"))
	var ee *expr.EvalError
	if !errors.As(res.err, &ee) || ee.Pos != 2 {
		t.Errorf("error = %#v, want an *expr.EvalError at offset 2", res.err)
	}
}

func TestMapKey(t *testing.T) {
	for _, tc := range []struct {
		name, key, value string
		old              []byte
		want             []byte
	}{
		{"string as is", "user_id", `{"user_id":"u_1"}`, nil, []byte("u_1")},
		{"int as JSON", "n", `{"n":42}`, nil, []byte("42")},
		{"float as JSON", "n", `{"n":1.5}`, nil, []byte("1.5")},
		{"bool as JSON", "b", `{"b":true}`, nil, []byte("true")},
		{"array as JSON", "a", `{"a":[1,"x"]}`, nil, []byte(`[1,"x"]`)},
		{"computed string", `concat(a, "-", b)`, `{"a":"x","b":"y"}`, nil, []byte("x-y")},
		{"replaces an old key", "user_id", `{"user_id":"new"}`, []byte("old"), []byte("new")},
		{"missing clears", "absent", `{}`, []byte("old"), nil},
		{"null clears", "n", `{"n":null}`, []byte("old"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			res := runChain(t, tc.value, tc.old, mustMap(t, "    key: '"+tc.key+"'\n"))
			if res.err != nil || !res.keep {
				t.Fatalf("Process = %v, %v", res.keep, res.err)
			}
			if string(res.key) != string(tc.want) || (tc.want == nil) != (res.key == nil) {
				t.Errorf("key = %q (nil %v), want %q (nil %v)", res.key, res.key == nil, tc.want, tc.want == nil)
			}
			if res.value != tc.value {
				t.Errorf("key changed the value to %s", res.value)
			}
		})
	}
}

// The key bytes are the map's own: reusing the record for the next event
// must not change the key the first event got.
func TestMapKeyIsCopied(t *testing.T) {
	p := mustMap(t, "    key: user_id\n")
	var r runtime.Record
	ev1 := event.Event{Value: []byte(`{"user_id":"first"}`)}
	r.Reset(&ev1)
	if _, err := p.Process(&r); err != nil {
		t.Fatal(err)
	}
	ev2 := event.Event{Value: []byte(`{"user_id":"other"}`)}
	r.Reset(&ev2)
	if _, err := p.Process(&r); err != nil {
		t.Fatal(err)
	}
	copy(ev1.Value, `{"user_id":"XXXXX"}`) // the key must not alias the value
	if string(ev1.Key) != "first" || string(ev2.Key) != "other" {
		t.Errorf("keys = %q, %q; want first, other", ev1.Key, ev2.Key)
	}
}

// A chain map → filter → map on one Record parses the JSON once: every
// processor sees the same *jsondoc.Doc, a later one sees what an earlier one
// set, and the result is serialized once at the end.
func TestChainParsesOnce(t *testing.T) {
	var docs []*jsondoc.Doc
	probe := procFunc(func(r *runtime.Record) (bool, error) {
		d, err := r.Doc()
		if err != nil {
			return false, err
		}
		docs = append(docs, d)
		return true, nil
	})
	chain := []runtime.Processor{
		probe,
		mustMap(t, "    set:\n      total: price * qty\n      user.tier: '\"gold\"'\n"),
		probe,
		// Reads a field only the map above set: the document is shared.
		mustFilter(t, "    expr: total > 100 && user.tier == \"gold\"\n"),
		probe,
		mustMap(t, "    rename:\n      total: amount\n    delete: [qty]\n    key: user.tier\n"),
		probe,
	}
	const in = `{"price":30, "qty":4, "note":"keep me"}`
	res := runChain(t, in, nil, chain...)
	if res.err != nil || !res.keep {
		t.Fatalf("chain = %v, %v; want true, nil", res.keep, res.err)
	}
	if len(docs) != 4 {
		t.Fatalf("probes ran %d times, want 4", len(docs))
	}
	for i, d := range docs[1:] {
		if d != docs[0] {
			t.Errorf("probe %d saw document %p, probe 0 saw %p: the chain parsed more than once", i+1, d, docs[0])
		}
	}
	if want := `{"price":30,"note":"keep me","user":{"tier":"gold"},"amount":120}`; res.value != want {
		t.Errorf("value = %s\n   want %s", res.value, want)
	}
	if string(res.key) != "gold" {
		t.Errorf("key = %q, want gold", res.key)
	}

	// The filter drops an event that fails it; nothing after it runs.
	docs = nil
	res = runChain(t, `{"price":1,"qty":1}`, nil, chain...)
	if res.err != nil || res.keep || len(docs) != 2 {
		t.Errorf("chain on a small order = %v, %v with %d probes; want dropped after 2 probes", res.keep, res.err, len(docs))
	}
}

// Reset forgets the previous event's document.
func TestRecordReuse(t *testing.T) {
	m := mustMap(t, "    set:\n      seen: '\"yes\"'\n")
	f := mustFilter(t, "    expr: n > 1\n")
	var r runtime.Record
	for i, tc := range []struct {
		value string
		keep  bool
		want  string
	}{
		{`{"n":2}`, true, `{"n":2,"seen":"yes"}`},
		{`{"n":0,"x":[1]}`, false, ``},
		{`{"n":5}`, true, `{"n":5,"seen":"yes"}`},
	} {
		ev := event.Event{Value: []byte(tc.value)}
		r.Reset(&ev)
		keep, err := f.Process(&r)
		if err != nil || keep != tc.keep {
			t.Fatalf("event %d: filter = %v, %v; want %v", i, keep, err, tc.keep)
		}
		if !keep {
			continue
		}
		if _, err := m.Process(&r); err != nil {
			t.Fatal(err)
		}
		d, _ := r.Doc()
		if got := string(d.AppendJSON(nil)); got != tc.want {
			t.Errorf("event %d = %s, want %s", i, got, tc.want)
		}
	}
}

type procFunc func(r *runtime.Record) (bool, error)

func (f procFunc) Process(r *runtime.Record) (bool, error) { return f(r) }

// checkErrs compares compile errors with "pos field msg-fragment" triples.
func checkErrs(t *testing.T, errs config.Errors, want ...[3]string) {
	t.Helper()
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), errs)
	}
	for i, w := range want {
		e := errs[i]
		if e.Pos.String() != w[0] || e.Field != w[1] || !strings.Contains(e.Msg, w[2]) {
			t.Errorf("error %d:\n got  %s | %s | %s\n want %s | %s | ~%s", i, e.Pos, e.Field, e.Msg, w[0], w[1], w[2])
		}
	}
}

func TestCompileFilterErrors(t *testing.T) {
	for _, tc := range []struct {
		name, fields string
		want         [3]string
	}{
		// Line 9 is the first field; "    expr: " puts the value at col 11.
		{"syntax error", "    expr: price = 3\n", [3]string{"test.yaml:9:17", "processors.p.expr", "unexpected '='"}},
		{"type error", "    expr: price * \"x\" > 1\n", [3]string{"test.yaml:9:19", "processors.p.expr", "* wants numbers"}},
		{"not boolean", "    expr: lower(name)\n", [3]string{"test.yaml:9:11", "processors.p.expr", "must be boolean"}},
		{"quoted", "    expr: \"a == 1 &&\"\n", [3]string{"test.yaml:9:21", "processors.p.expr", "unexpected end"}},
		{"block scalar", "    expr: |\n      a == 1 &&\n        b = 2\n", [3]string{"test.yaml:11:11", "processors.p.expr", "unexpected '='"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, errs := compileFilter(t, tc.fields)
			if f != nil {
				t.Error("CompileFilter returned a filter along with errors")
			}
			checkErrs(t, errs, tc.want)
		})
	}
}

// CompileFilter places errors through config.Expr.PosAt, also for an Expr
// built directly (without a YAML source).
func TestCompileFilterDirectExpr(t *testing.T) {
	x := &config.Expr{Src: "a = 1", Pos: config.Pos{File: "f.yaml", Line: 3, Col: 9}}
	f, errs := processor.CompileFilter(processor.FilterConfig{Expr: x}, "processors.keep")
	if f != nil {
		t.Error("got a filter")
	}
	checkErrs(t, errs, [3]string{"f.yaml:3:11", "processors.keep.expr", "unexpected '='"})
	if errs[0].Hint == "" {
		t.Error("the expression error's hint was lost")
	}

	// No expression: the decoder reports the missing field, CompileFilter
	// adds nothing and builds nothing.
	if f, errs := processor.CompileFilter(processor.FilterConfig{}, "processors.keep"); f != nil || len(errs) != 0 {
		t.Errorf("CompileFilter of an empty config = %v, %v; want nil, no errors", f, errs)
	}
}

func TestCompileMapErrors(t *testing.T) {
	for _, tc := range []struct {
		name, fields string
		want         [][3]string
	}{
		{
			name:   "set expression",
			fields: "    set:\n      total: price = 3\n",
			want:   [][3]string{{"test.yaml:10:20", "processors.p.set.total", "unexpected '='"}},
		},
		{
			name:   "second set expression of two",
			fields: "    set:\n      ok: '1'\n      bad: lenght(x)\n",
			want:   [][3]string{{"test.yaml:11:12", "processors.p.set.bad", "unknown function"}},
		},
		{
			name:   "quoted set expression",
			fields: "    set:\n      s: 'lower(1)'\n",
			want:   [][3]string{{"test.yaml:10:17", "processors.p.set.s", "lower wants string"}},
		},
		{
			name:   "key expression",
			fields: "    key: user_id +\n",
			want:   [][3]string{{"test.yaml:9:19", "processors.p.key", "unexpected end"}},
		},
		{
			name:   "bad set path",
			fields: "    set:\n      a..b: '1'\n",
			want:   [][3]string{{"test.yaml:10:7", "processors.p.set", "empty segment"}},
		},
		{
			name:   "bad rename path",
			fields: "    rename:\n      a.: b\n",
			want:   [][3]string{{"test.yaml:10:7", "processors.p.rename.a.", "empty segment"}},
		},
		{
			name:   "bad delete path",
			fields: "    delete: [ok, .x]\n",
			want:   [][3]string{{"test.yaml:9:13", "processors.p.delete", "empty segment"}},
		},
		{
			name:   "map that does nothing",
			fields: "",
			want:   [][3]string{{"test.yaml:6:3", "processors.p", "map does nothing"}},
		},
		{
			name:   "every problem at once",
			fields: "    set:\n      a: '1 +'\n      b: x = 1\n    key: '('\n",
			want: [][3]string{
				{"test.yaml:10:14", "processors.p.set.a", "unexpected end"},
				{"test.yaml:11:12", "processors.p.set.b", "unexpected '='"},
				{"test.yaml:12:12", "processors.p.key", "unexpected end"},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, errs := compileMap(t, tc.fields)
			if err := errs.Err(); err != nil {
				errs = err.(config.Errors) // sorted by position
			}
			checkErrs(t, errs, tc.want...)
		})
	}
}

// A set value must be a scalar expression; the decoder reports anything else
// at its position.
func TestMapSetNotAScalar(t *testing.T) {
	for _, tc := range []struct{ fields, pos, msg string }{
		{"    set: [a, b]\n", "test.yaml:9:10", "got a list"},
		{"    set:\n      a: {b: 1}\n", "test.yaml:10:10", "got a mapping"},
	} {
		_, _, errs := decodeMap(t, tc.fields)
		if len(errs) != 1 || errs[0].Pos.String() != tc.pos || !strings.Contains(errs[0].Msg, tc.msg) {
			t.Errorf("Decode of %q = %v; want one error at %s containing %q", tc.fields, errs, tc.pos, tc.msg)
		}
	}
}

// Errors in a set expression written as a block scalar are placed where the
// expression text is, like errors in a filter's expr are.
func TestMapSetBlockScalarPosition(t *testing.T) {
	_, errs := compileMap(t, "    set:\n      total: |\n        price *\n          qty = 2\n")
	checkErrs(t, errs, [3]string{"test.yaml:12:15", "processors.p.set.total", "unexpected '='"})
}

// Chained renames give the same result on every compile: the outcome of a
// config must not depend on Go's map iteration order.
func TestMapRenameDeterministic(t *testing.T) {
	seen := map[string]bool{}
	for range 50 {
		res := runChain(t, `{"a":1,"b":2}`, nil, mustMap(t, "    rename:\n      a: b\n      b: c\n"))
		if res.err != nil {
			t.Fatal(res.err)
		}
		seen[res.value] = true
	}
	if len(seen) != 1 {
		t.Errorf("rename {a: b, b: c} gave %d different results over 50 compiles: %v", len(seen), seen)
	}
}

func TestParsePath(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []jsondoc.Seg
		err  string
	}{
		{"a", []jsondoc.Seg{jsondoc.Key("a")}, ""},
		{"user.address.city", []jsondoc.Seg{jsondoc.Key("user"), jsondoc.Key("address"), jsondoc.Key("city")}, ""},
		{"", nil, "empty field path"},
		{"a..b", nil, `"a..b" has an empty segment`},
		{".a", nil, "empty segment"},
		{"a.", nil, "empty segment"},
	} {
		got, err := processor.ParsePath(tc.in)
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("ParsePath(%q) = %v, %v; want an error containing %q", tc.in, got, err, tc.err)
			}
			continue
		}
		if err != nil || fmt.Sprint(got) != fmt.Sprint(tc.want) {
			t.Errorf("ParsePath(%q) = %v, %v; want %v", tc.in, got, err, tc.want)
		}
	}
}

// ParsePath documents that numeric segments select array elements.
func TestParsePathNumericSegment(t *testing.T) {
	got, err := processor.ParsePath("items.0.price")
	want := []jsondoc.Seg{jsondoc.Key("items"), jsondoc.Index(0), jsondoc.Key("price")}
	if err != nil || fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("ParsePath(items.0.price) = %v, %v; want %v", got, err, want)
	}
	res := runChain(t, `{"items":[{"price":1}]}`, nil, mustMap(t, "    set:\n      items.0.price: '2'\n"))
	if res.err != nil || res.value != `{"items":[{"price":2}]}` {
		t.Errorf("set items.0.price = %s, %v; want {\"items\":[{\"price\":2}]}", res.value, res.err)
	}
}
