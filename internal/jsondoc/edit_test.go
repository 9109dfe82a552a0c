package jsondoc

import (
	"errors"
	"reflect"
	"testing"
)

// edit is one step applied to a Doc in TestEdits.
type edit struct {
	op       string // "set", "delete", "rename"
	path, to []Seg
	v        Value
	ok       bool  // Delete/Rename result
	err      error // expected error (errors.Is), for set and rename
}

func set(path []Seg, v Value) edit { return edit{op: "set", path: path, v: v, ok: true} }
func setErr(path []Seg, v Value, err error) edit {
	return edit{op: "set", path: path, v: v, err: err}
}
func del(path []Seg, ok bool) edit        { return edit{op: "delete", path: path, ok: ok} }
func rename(from, to []Seg, ok bool) edit { return edit{op: "rename", path: from, to: to, ok: ok} }
func renameErr(from, to []Seg, err error) edit {
	return edit{op: "rename", path: from, to: to, err: err}
}

func str(s string) Value { return StringValue([]byte(s)) }

func TestEdits(t *testing.T) {
	tests := []struct {
		name  string
		doc   string
		edits []edit
		want  string // exact AppendJSON output
	}{
		{"set new top-level", `{"a":1, "b" : [1, 2]}`, []edit{set(P("c"), IntValue(3))}, `{"a":1,"b":[1, 2],"c":3}`},
		{"untouched members copied compactly", `{"a":1,"b" :2,"c": 3,"d":4 , "e":{ "x" : 1 },"f":5}`, []edit{set(P("g"), IntValue(6))},
			`{"a":1,"b":2,"c":3,"d":4,"e":{ "x" : 1 },"f":5,"g":6}`},
		{"replace top-level in place", `{"a":1,"b":2,"c":3}`, []edit{set(P("b"), str("x"))}, `{"a":1,"b":"x","c":3}`},
		{"delete top-level", `{"a":1,"b":2,"c":3}`, []edit{del(P("b"), true)}, `{"a":1,"c":3}`},
		{"delete first and last", `{"a":1,"b":2,"c":3}`, []edit{del(P("a"), true), del(P("c"), true)}, `{"b":2}`},
		{"delete everything", `{"a":1}`, []edit{del(P("a"), true)}, `{}`},
		{"delete absent", `{"a":1}`, []edit{del(P("x"), false), del(P("a", "b"), false), del(P("a", 0), false)}, `{"a":1}`},
		{"delete then set goes last", `{"a":1,"b":2}`, []edit{del(P("a"), true), set(P("a"), IntValue(9))}, `{"b":2,"a":9}`},
		{"set twice", `{"a":1}`, []edit{set(P("b"), IntValue(1)), set(P("b"), IntValue(2))}, `{"a":1,"b":2}`},
		{"set missing deletes", `{"a":1,"b":2}`, []edit{set(P("a"), MissingValue())}, `{"b":2}`},
		{"set every kind", `{}`, []edit{
			set(P("n"), NullValue()), set(P("t"), BoolValue(true)), set(P("i"), IntValue(-5)),
			set(P("f"), FloatValue(1.5)), set(P("s"), str("a\"b\n")),
			set(P("o"), RawValue(Object, []byte(` {"x": [1]} `))), set(P("arr"), RawValue(Array, []byte(`[]`))),
			set(P("nan"), FloatValue(nanValue())),
		}, `{"n":null,"t":true,"i":-5,"f":1.5,"s":"a\"b\n","o":{"x": [1]},"arr":[],"nan":null}`},
		{"escaped new key", `{}`, []edit{set(P("a\"b"), IntValue(1))}, `{"a\"b":1}`},
		{"escaped key replaced", `{"a\u0062":1,"c":2}`, []edit{set(P("ab"), IntValue(3))}, `{"a\u0062":3,"c":2}`},
		{"escaped new key looked up", `{}`, []edit{set(P("x\ny"), IntValue(1)), set(P("x\ny"), IntValue(2))}, `{"x\ny":2}`},
		{"duplicates: set replaces last, drops others", `{"a":1,"b":0,"a":2}`, []edit{set(P("a"), IntValue(3))}, `{"b":0,"a":3}`},
		{"duplicates: delete removes all", `{"a":1,"b":0,"a":2}`, []edit{del(P("a"), true)}, `{"b":0}`},
		{"nested set existing", `{"o": {"a": 1, "b": 2}, "z": 0}`, []edit{set(P("o", "a"), IntValue(5))}, `{"o":{"a":5,"b":2},"z":0}`},
		{"nested set new", `{"o": {"a": {"x": 1}}}`, []edit{set(P("o", "b"), IntValue(5))}, `{"o":{"a":{"x": 1},"b":5}}`},
		{"nested set in empty object", `{"o": { }}`, []edit{set(P("o", "b"), IntValue(5))}, `{"o":{"b":5}}`},
		{"nested set deep", `{"o":{"a":{"b":{"c":1}}}}`, []edit{set(P("o", "a", "b", "c"), IntValue(2))}, `{"o":{"a":{"b":{"c":2}}}}`},
		{"create intermediates", `{"a":1}`, []edit{set(P("x", "y", "z"), IntValue(1))}, `{"a":1,"x":{"y":{"z":1}}}`},
		{"create intermediates below existing", `{"o":{"p":1}}`, []edit{set(P("o", "q", "r"), IntValue(1))}, `{"o":{"p":1,"q":{"r":1}}}`},
		{"nested duplicates", `{"o":{"k":1,"j":0,"k":2}}`, []edit{set(P("o", "k"), IntValue(3))}, `{"o":{"j":0,"k":3}}`},
		{"nested delete", `{"o":{"a":1,"b":2},"z":0}`, []edit{del(P("o", "a"), true)}, `{"o":{"b":2},"z":0}`},
		{"nested delete last member", `{"o":{"a":1}}`, []edit{del(P("o", "a"), true)}, `{"o":{}}`},
		{"nested delete duplicates", `{"o":{"k":1,"j":0,"k":2}}`, []edit{del(P("o", "k"), true)}, `{"o":{"j":0}}`},
		{"nested delete absent leaves doc alone", `{"o":{"a":1}}`, []edit{del(P("o", "x"), false), del(P("o", "a", "b"), false)}, `{"o":{"a":1}}`},
		{"array element set", `{"a":[1, 2, 3]}`, []edit{set(P("a", 1), str("x"))}, `{"a":[1,"x",3]}`},
		{"array element nested set", `{"a":[{"k":1},{"k":2}]}`, []edit{set(P("a", 1, "k"), IntValue(5))}, `{"a":[{"k":1},{"k":5}]}`},
		{"array element delete", `{"a":[1,2,3]}`, []edit{del(P("a", 0), true), del(P("a", 1), true)}, `{"a":[2]}`},
		{"array element delete absent", `{"a":[1]}`, []edit{del(P("a", 1), false), del(P("a", "k"), false)}, `{"a":[1]}`},
		{"array nested delete", `{"a":[{"k":1,"j":2}]}`, []edit{del(P("a", 0, "k"), true)}, `{"a":[{"j":2}]}`},
		{"edits accumulate on rewritten member", `{"o":{"a":1}}`, []edit{
			set(P("o", "b"), IntValue(2)), set(P("o", "c", "d"), IntValue(3)), del(P("o", "a"), true), set(P("o", "c", "e"), IntValue(4)),
		}, `{"o":{"b":2,"c":{"d":3,"e":4}}}`},
		{"errors leave doc unchanged", `{"s":"x","a":[1],"o":{}}`, []edit{
			setErr(P("s", "k"), IntValue(1), ErrNotObject),
			setErr(P("a", "k"), IntValue(1), ErrNotObject),
			setErr(P("o", 0), IntValue(1), ErrNotArray),
			setErr(P("a", 1), IntValue(1), ErrIndexRange),
			setErr(P("a", 0, "x"), IntValue(1), ErrNotObject),
			setErr(P("new", 0), IntValue(1), ErrNotArray),
			setErr(P("new", "x", 0), IntValue(1), ErrNotArray),
			setErr(P("o", "x", 0), IntValue(1), ErrNotArray),
			setErr(P(0), IntValue(1), ErrNotObject),
			setErr(nil, IntValue(1), ErrEmptyPath),
			setErr(nil, MissingValue(), ErrEmptyPath),
			setErr(P("k"), Value{Kind: 99}, ErrInvalidValue),
			setErr(P("k"), RawValue(Object, []byte(`[1]`)), ErrInvalidValue),
			setErr(P("k"), RawValue(Array, []byte(`[1,]`)), ErrInvalidValue),
			setErr(P("k"), RawValue(Object, nil), ErrInvalidValue),
			setErr(P("o", "k"), RawValue(Object, []byte(`{"a":1} x`)), ErrInvalidValue),
			renameErr(P("s"), nil, ErrEmptyPath),
			renameErr(nil, P("s"), ErrEmptyPath),
			renameErr(P("o"), P("o", "x"), ErrMoveIntoSelf),
			renameErr(P("s"), P("a", 5), ErrIndexRange),
		}, `{"s":"x","a":[1],"o":{}}`},
		{"rename top-level", `{"a":1,"b":{"x":2},"c":3}`, []edit{rename(P("b"), P("d"), true)}, `{"a":1,"c":3,"d":{"x":2}}`},
		{"rename over existing", `{"a":1,"b":2,"c":3}`, []edit{rename(P("c"), P("a"), true)}, `{"a":3,"b":2}`},
		{"rename absent", `{"a":1}`, []edit{rename(P("x"), P("y"), false), rename(P("a", "b"), P("y"), false)}, `{"a":1}`},
		{"rename to itself", `{"a":1}`, []edit{rename(P("a"), P("a"), true)}, `{"a":1}`},
		{"rename nested to top", `{"o":{"a":1,"b":2}}`, []edit{rename(P("o", "a"), P("a"), true)}, `{"o":{"b":2},"a":1}`},
		{"rename top to nested", `{"a":1,"o":{"b":2}}`, []edit{rename(P("a"), P("o", "a"), true)}, `{"o":{"b":2,"a":1}}`},
		{"rename top to new nested", `{"a":1}`, []edit{rename(P("a"), P("x", "y"), true)}, `{"x":{"y":1}}`},
		{"rename within nested", `{"o":{"a":1,"b":2}}`, []edit{rename(P("o", "a"), P("o", "c"), true)}, `{"o":{"b":2,"c":1}}`},
		{"rename to ancestor", `{"o":{"a":{"x":1},"b":2}}`, []edit{rename(P("o", "a"), P("o"), true)}, `{"o":{"x":1}}`},
		{"rename set value twice", `{"a":"v"}`, []edit{set(P("a"), str("w")), rename(P("a"), P("b"), true), rename(P("b"), P("c"), true)}, `{"c":"w"}`},
		{"rename array element", `{"a":[1,{"k":2}]}`, []edit{rename(P("a", 1, "k"), P("k"), true)}, `{"a":[1,{}],"k":2}`},
		{"rename duplicates", `{"a":1,"a":2,"b":0}`, []edit{rename(P("a"), P("c"), true)}, `{"b":0,"c":2}`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := mustParse(t, tt.doc)
			for _, e := range tt.edits {
				applyEdit(t, d, e)
			}
			got := d.AppendJSON(nil)
			if string(got) != tt.want {
				t.Errorf("AppendJSON = %s\nwant         %s", got, tt.want)
			}
			if err := Validate(got); err != nil {
				t.Errorf("output is not valid JSON: %v", err)
			}
			if want := unmarshal(t, []byte(tt.want)); !reflect.DeepEqual(unmarshal(t, got), want) {
				t.Errorf("output decodes differently from %s", tt.want)
			}
			// Lookups see the edits.
			checkLookups(t, d, unmarshal(t, got).(map[string]any), nil)
			// Root of a modified doc is the serialized document.
			if r := d.Root(); r.Kind != Object || string(r.S) != string(got) {
				t.Errorf("Root() = %v %s, want the output", r.Kind, r.S)
			}
			modified := string(got) != tt.doc
			if d.Modified() != modified {
				t.Errorf("Modified() = %v, want %v", d.Modified(), modified)
			}
		})
	}
}

func nanValue() float64 {
	zero := 0.0
	return zero / zero
}

func applyEdit(t *testing.T, d *Doc, e edit) {
	t.Helper()
	switch e.op {
	case "set":
		err := d.Set(e.path, e.v)
		if e.err == nil && err != nil || e.err != nil && !errors.Is(err, e.err) {
			t.Errorf("Set(%s, %+v) = %v, want %v", FormatPath(e.path), e.v, err, e.err)
		}
		if err != nil {
			var pe *PathError
			if !errors.As(err, &pe) {
				t.Errorf("Set(%s) error %T is not a *PathError", FormatPath(e.path), err)
			}
		}
		if err == nil && e.v.Kind != Missing {
			want := e.v
			if want.Kind == Object || want.Kind == Array {
				want.S = trimSpace(want.S)
			}
			if got := d.Lookup(e.path); !got.Equal(want) && !(e.v.Kind == Float && got.Kind == Null) {
				t.Errorf("after Set(%s, %+v): Lookup = %+v", FormatPath(e.path), e.v, got)
			}
		}
	case "delete":
		if got := d.Delete(e.path); got != e.ok {
			t.Errorf("Delete(%s) = %v, want %v", FormatPath(e.path), got, e.ok)
		}
		if got := d.Lookup(e.path); got.Kind != Missing && len(e.path) > 0 && !e.path[len(e.path)-1].IsIndex() {
			t.Errorf("after Delete(%s): Lookup = %+v", FormatPath(e.path), got)
		}
	case "rename":
		ok, err := d.Rename(e.path, e.to)
		if ok != e.ok || e.err == nil && err != nil || e.err != nil && !errors.Is(err, e.err) {
			t.Errorf("Rename(%s, %s) = %v, %v; want %v, %v", FormatPath(e.path), FormatPath(e.to), ok, err, e.ok, e.err)
		}
	}
}

// checkLookups compares every value reachable in want (decoded by
// encoding/json) with what d.Lookup returns for its path.
func checkLookups(t *testing.T, d *Doc, want any, path []Seg) {
	t.Helper()
	got := d.Lookup(path)
	switch w := want.(type) {
	case map[string]any:
		if got.Kind != Object {
			t.Errorf("Lookup(%s) kind = %v, want object", FormatPath(path), got.Kind)
			return
		}
		for k, v := range w {
			checkLookups(t, d, v, append(path[:len(path):len(path)], Key(k)))
		}
	case []any:
		if got.Kind != Array {
			t.Errorf("Lookup(%s) kind = %v, want array", FormatPath(path), got.Kind)
			return
		}
		for i, v := range w {
			checkLookups(t, d, v, append(path[:len(path):len(path)], Index(i)))
		}
	case string:
		if got.Kind != String || string(got.S) != w {
			t.Errorf("Lookup(%s) = %+v, want %q", FormatPath(path), got, w)
		}
	case float64:
		if !got.Equal(FloatValue(w)) && !(got.Kind == Int && float64(got.I) == w) {
			t.Errorf("Lookup(%s) = %+v, want %v", FormatPath(path), got, w)
		}
	case bool:
		if !got.Equal(BoolValue(w)) {
			t.Errorf("Lookup(%s) = %+v, want %v", FormatPath(path), got, w)
		}
	case nil:
		if got.Kind != Null {
			t.Errorf("Lookup(%s) = %+v, want null", FormatPath(path), got)
		}
	}
}

func TestSetNonObjectRoot(t *testing.T) {
	for _, raw := range []string{`[1]`, `1`, `"s"`, `null`} {
		d := mustParse(t, raw)
		if err := d.Set(P("a"), IntValue(1)); !errors.Is(err, ErrNotObject) {
			t.Errorf("Parse(%s).Set = %v, want ErrNotObject", raw, err)
		}
		if d.Delete(P(0)) || d.Delete(P("a")) {
			t.Errorf("Parse(%s).Delete reported true", raw)
		}
		if ok, err := d.Rename(P(0), P("a")); ok || (raw == `[1]`) != (err != nil) {
			t.Errorf("Parse(%s).Rename = %v, %v", raw, ok, err)
		}
		if d.Modified() || string(d.AppendJSON(nil)) != raw {
			t.Errorf("Parse(%s) changed: %s", raw, d.AppendJSON(nil))
		}
	}
}

func TestSetCopiesValue(t *testing.T) {
	d := mustParse(t, `{"a":1}`)
	b := []byte("hello")
	if err := d.Set(P("s"), StringValue(b)); err != nil {
		t.Fatal(err)
	}
	o := []byte(`{"k":"v"}`)
	if err := d.Set(P("o", "x"), RawValue(Object, o)); err != nil {
		t.Fatal(err)
	}
	copy(b, "XXXXX")
	copy(o, `{"k":"X"}`)
	if got := string(d.AppendJSON(nil)); got != `{"a":1,"s":"hello","o":{"x":{"k":"v"}}}` {
		t.Errorf("AppendJSON = %s", got)
	}
}

func TestValuesSurviveEdits(t *testing.T) {
	d := mustParse(t, `{"a":"x\ny","o":{"k":[1,2]},"b":"plain"}`)
	a := d.Lookup(P("a"))
	o := d.Lookup(P("o"))
	if err := d.Set(P("b"), str("new")); err != nil {
		t.Fatal(err)
	}
	b := d.Lookup(P("b"))
	for i := range 100 { // grow the buffers
		if err := d.Set(P("o", "k", 0), IntValue(int64(i))); err != nil {
			t.Fatal(err)
		}
		d.Set(P("b"), str("another value"))
		d.Lookup(P("a"))
	}
	if string(a.S) != "x\ny" || string(o.S) != `{"k":[1,2]}` || string(b.S) != "new" {
		t.Errorf("earlier Values changed: %q %q %q", a.S, o.S, b.S)
	}
}

func TestPathErrorText(t *testing.T) {
	tests := []struct {
		path []Seg
		want string
	}{
		{nil, ""},
		{P("a"), "a"},
		{P("a", "b_c", 3, "d-e"), "a.b_c[3].d-e"},
		{P(0, "x"), "[0].x"},
		{P("x y", "", "1a"), `["x y"][""]["1a"]`},
	}
	for _, tt := range tests {
		if got := FormatPath(tt.path); got != tt.want {
			t.Errorf("FormatPath(%#v) = %s, want %s", tt.path, got, tt.want)
		}
	}
	d := mustParse(t, `{"a":{"b":"s"}}`)
	err := d.Set(P("a", "b", "c"), IntValue(1))
	const want = "jsondoc: path a.b.c: segment 2: value is not an object"
	if err == nil || err.Error() != want {
		t.Errorf("Set error = %v, want %q", err, want)
	}
	err = d.Set(P("k"), RawValue(Object, []byte(`{"x":]`)))
	var se *SyntaxError
	if !errors.Is(err, ErrInvalidValue) || !errors.As(err, &se) || se.Offset != 5 {
		t.Errorf("Set of invalid raw value = %v, want ErrInvalidValue wrapping a *SyntaxError at 5", err)
	}
}
