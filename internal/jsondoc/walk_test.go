package jsondoc

import (
	"errors"
	"strings"
	"testing"
)

func obj(s string) Value { return RawValue(Object, []byte(s)) }
func arr(s string) Value { return RawValue(Array, []byte(s)) }

// show renders a walk result for test tables: "missing", the kind and JSON
// text of a value, or "error: " and the text of a *SyntaxError.
func show(v Value, err error) string {
	if err != nil {
		var se *SyntaxError
		if !errors.As(err, &se) {
			return "unexpected error type: " + err.Error()
		}
		return "error: " + se.Error()
	}
	if v.Kind == Missing {
		return "missing"
	}
	return v.Kind.String() + " " + string(AppendValue(nil, v))
}

func TestIter(t *testing.T) {
	tests := []struct {
		v    Value
		want string // key=value pairs (value only for arrays), then the error
	}{
		{arr(`[]`), ``},
		{arr(` [ ] `), ``},
		{arr(`[1, "two", 3.5, null, true, {"k": "v"}, [2]]`),
			`int 1|string "two"|float 3.5|null null|bool true|object {"k": "v"}|array [2]|`},
		{arr(`["a\u0062", "\n"]`), `string "ab"|string "\n"|`},
		{obj(`{}`), ``},
		{obj(`{"a": 1, "b\"c": {"d": [1]}, "a": 2}`), `a=int 1|b"c=object {"d": [1]}|a=int 2|`},
		{obj(`{"k\u0065y": "v\u0061l", "": ""}`), `key=string "val"|=string ""|`},
		{obj("\t{ \"a\" :\n1 } \n"), `a=int 1|`},
		{StringValue([]byte("[1]")), ``},
		{IntValue(1), ``},
		{MissingValue(), ``},
		// Malformed text: the walk stops at the problem.
		{arr(`[1, 2`), `int 1|int 2|invalid JSON at byte 5: unexpected end of input`},
		{arr(`[1 2]`), `int 1|invalid JSON at byte 3: unexpected character '2' after array element; want ',' or ']'`},
		{arr(`[1,]`), `int 1|invalid JSON at byte 3: unexpected character ']'; want a value`},
		{arr(`[1] x`), `int 1|invalid JSON at byte 4: unexpected character 'x' after top-level value`},
		// Nested values are delimited, not checked, until they are walked.
		{arr(`[[1, 2], [3}, {"a" 1}]`), `array [1, 2]|array [3}|object {"a" 1}|`},
		{arr(`[["a\x"]]`), `invalid JSON at byte 5: unexpected character 'x' in escape sequence`},
		{arr(`[[1, 2]`), `array [1, 2]|invalid JSON at byte 7: unexpected end of input`},
		{arr(`[[1, 2`), `invalid JSON at byte 6: unexpected end of input`},
		{arr(`{}`), `invalid JSON at byte 0: unexpected character '{'; want JSON text of array`},
		{arr(``), `invalid JSON at byte 0: unexpected end of input`},
		{obj(`{"a":`), `invalid JSON at byte 5: unexpected end of input`},
		{obj(`{"a" 1}`), `invalid JSON at byte 5: unexpected character '1' after object key; want ':'`},
		{obj(`{a: 1}`), `invalid JSON at byte 1: unexpected character 'a'; want a string as object key`},
		{obj(`{"a":1,}`), `a=int 1|invalid JSON at byte 7: unexpected character '}'; want a string as object key`},
		{obj(`{"\x": 1}`), `invalid JSON at byte 3: unexpected character 'x' in escape sequence`},
		{obj(`{"a": tru}`), `invalid JSON at byte 9: unexpected character '}' in literal true`},
		{obj(`[]`), `invalid JSON at byte 0: unexpected character '['; want JSON text of object`},
	}
	for _, tt := range tests {
		var scratch []byte
		var sb strings.Builder
		it := NewIter(tt.v)
		for {
			key, val, ok := it.Next(&scratch)
			if !ok {
				break
			}
			if tt.v.Kind == Object {
				sb.WriteString(string(key) + "=")
			} else if key != nil {
				t.Errorf("NewIter(%s): element with key %q", tt.v.S, key)
			}
			sb.WriteString(show(val, nil) + "|")
		}
		if err := it.Err(); err != nil {
			sb.WriteString(err.Error())
		}
		if _, _, ok := it.Next(&scratch); ok {
			t.Errorf("NewIter(%s): Next after the end reports more", tt.v.S)
		}
		if got := sb.String(); got != tt.want {
			t.Errorf("NewIter(%s %s) walks\n\t%s\nwant\n\t%s", tt.v.Kind, tt.v.S, got, tt.want)
		}
	}
}

func TestMember(t *testing.T) {
	o := obj(`{"a": 1, "b": {"c": "d\n"}, "e\"k": [1, 2], "k\u0065y": "v\u0061l", "dup": 1, "dup": 2, "": 0}`)
	tests := []struct {
		v    Value
		name string
		want string
	}{
		{o, "a", `int 1`},
		{o, "b", `object {"c": "d\n"}`},
		{o, `e"k`, `array [1, 2]`},
		{o, "key", `string "val"`},
		{o, "dup", `int 2`},
		{o, "", `int 0`},
		{o, "nope", `missing`},
		{o, "ke", `missing`},
		{o, "keyy", `missing`},
		{obj(`{}`), "a", `missing`},
		{arr(`[1]`), "0", `missing`},
		{StringValue([]byte(`{"a":1}`)), "a", `missing`},
		// Nested values are delimited, not checked.
		{obj(`{"a": [1 2], "b": 1}`), "b", `int 1`},
		{obj(`{"a": [1 2], "b": 1}`), "a", `array [1 2]`},
		// Members after the one wanted are checked too: a later duplicate
		// would win.
		{obj(`{"a": 1, "b"}`), "a", `error: invalid JSON at byte 12: unexpected character '}' after object key; want ':'`},
		{obj(`{"a": 1`), "a", `error: invalid JSON at byte 7: unexpected end of input`},
		{obj(`{"a": 1}}`), "a", `error: invalid JSON at byte 8: unexpected character '}' after top-level value`},
		{obj(`[]`), "a", `error: invalid JSON at byte 0: unexpected character '['; want JSON text of object`},
	}
	for _, tt := range tests {
		scratch := []byte("keep")
		got := show(Member(tt.v, []byte(tt.name), &scratch))
		if got != tt.want {
			t.Errorf("Member(%s, %q) = %s, want %s", tt.v.S, tt.name, got, tt.want)
		}
		// Scratch keeps what it held and gains only an unescaped result,
		// not the keys compared on the way.
		if want := "keep"; tt.name == "key" {
			if string(scratch) != want+"val" {
				t.Errorf("Member(%s, %q) leaves scratch %q, want %q", tt.v.S, tt.name, scratch, want+"val")
			}
		} else if string(scratch) != want {
			t.Errorf("Member(%s, %q) leaves scratch %q, want %q", tt.v.S, tt.name, scratch, want)
		}
	}
}

func TestElement(t *testing.T) {
	a := arr(`[1, "t\u0077o", 3.5, null, {"k": "v"}, [2]]`)
	tests := []struct {
		v    Value
		i    int
		want string
	}{
		{a, 0, `int 1`},
		{a, 1, `string "two"`},
		{a, 2, `float 3.5`},
		{a, 3, `null null`},
		{a, 4, `object {"k": "v"}`},
		{a, 5, `array [2]`},
		{a, 6, `missing`},
		{a, -1, `missing`},
		{arr(`[]`), 0, `missing`},
		{obj(`{"0": 1}`), 0, `missing`},
		// Only the text up to the element is checked.
		{arr(`[1, 2`), 0, `int 1`},
		{arr(`[1, 2`), 5, `error: invalid JSON at byte 5: unexpected end of input`},
		{arr(`[1 2]`), 1, `error: invalid JSON at byte 3: unexpected character '2' after array element; want ',' or ']'`},
		{arr(`[1,]`), 1, `error: invalid JSON at byte 3: unexpected character ']'; want a value`},
		{arr(`1`), 0, `error: invalid JSON at byte 0: unexpected character '1'; want JSON text of array`},
		{arr(``), 0, `error: invalid JSON at byte 0: unexpected end of input`},
	}
	for _, tt := range tests {
		var scratch []byte
		if got := show(Element(tt.v, tt.i, &scratch)); got != tt.want {
			t.Errorf("Element(%s, %d) = %s, want %s", tt.v.S, tt.i, got, tt.want)
		}
	}
}

func TestLen(t *testing.T) {
	tests := []struct {
		v    Value
		want string
	}{
		{arr(`[]`), `0`},
		{arr(`[1, [2, 3], {"a": [4]}]`), `3`},
		{obj(`{}`), `0`},
		{obj(`{"a": 1, "a": 2, "b": {"c": 3}}`), `3`},
		{StringValue([]byte(`abc`)), `0`},
		{NullValue(), `0`},
		{MissingValue(), `0`},
		{arr(`[1, 2`), `error: invalid JSON at byte 5: unexpected end of input`},
		{arr(`[1, 2] ,`), `error: invalid JSON at byte 7: unexpected character ',' after top-level value`},
		{arr(`[1, [2}]`), `2`}, // the nested [2} is not walked
		{arr(`[1, [2]`), `error: invalid JSON at byte 7: unexpected end of input`},
		{obj(`{"a":1,"b":"\u12"}`), `error: invalid JSON at byte 16: unexpected character '"' in \u escape; want a hex digit`},
		{arr(nested("[", "]", maxDepth+1)), `1`}, // nor are levels counted
	}
	for _, tt := range tests {
		n, err := Len(tt.v)
		got := strings.TrimPrefix(show(IntValue(int64(n)), err), "int ")
		if got != tt.want {
			t.Errorf("Len(%.40s) = %s, want %s", tt.v.S, got, tt.want)
		}
	}
}

// TestWalkMatchesValidate checks that walking every level of an array or
// object finds a problem exactly when Validate does.
func TestWalkMatchesValidate(t *testing.T) {
	for _, raw := range append(validDocs, fuzzSeeds...) {
		checkWalkAll(t, []byte(raw))
	}
	for _, raw := range []string{
		`[1, [2}]`, `[[1 2]]`, `[{"a":1,}]`, `{"a": [{"b": tru}]}`, `[["\u12"]]`, "[[\"\x01\"]]",
		`[[1], [2]] x`, `{"a": {"b": {}}, "c": [[], [[]], {}]}`, `[{"a":{}}, {"b":[}]]`,
	} {
		checkWalkAll(t, []byte(raw))
	}
}

// checkWalkAll walks every level of raw, when it starts like an array or
// an object, and compares the outcome with Validate.
func checkWalkAll(t *testing.T, raw []byte) {
	t.Helper()
	s := trimSpace(raw)
	if len(s) == 0 || s[0] != '[' && s[0] != '{' {
		return
	}
	k := Array
	if s[0] == '{' {
		k = Object
	}
	err := walkAll(RawValue(k, raw))
	verr := Validate(raw)
	if verr != nil && strings.Contains(verr.Error(), "nesting deeper") {
		return // walkers do not count levels
	}
	if (err == nil) != (verr == nil) {
		t.Fatalf("walking %q: %v; Validate: %v", raw, err, verr)
	}
}

func walkAll(v Value) error {
	var scratch []byte
	it := NewIter(v)
	for {
		_, val, ok := it.Next(&scratch)
		if !ok {
			return it.Err()
		}
		if val.Kind == Object || val.Kind == Array {
			if err := walkAll(val); err != nil {
				return err
			}
		}
	}
}

// checkWalk compares Iter, Member, Element and Len on the root of a valid
// document with Doc.Lookup.
func checkWalk(t *testing.T, d *Doc) {
	t.Helper()
	root := d.Root()
	if root.Kind != Object && root.Kind != Array {
		return
	}
	var scratch []byte
	it := NewIter(root)
	n := 0
	for {
		key, val, ok := it.Next(&scratch)
		if !ok {
			break
		}
		var m Value
		var err error
		var path []Seg
		if root.Kind == Object {
			m, err = Member(root, key, &scratch)
			path = []Seg{Key(string(key))}
		} else {
			m, err = Element(root, n, &scratch)
			path = []Seg{Index(n)}
			if !m.Equal(val) {
				t.Fatalf("%s: Element(%d) = %+v, Next gave %+v", d.Raw(), n, m, val)
			}
		}
		if want := d.Lookup(path); err != nil || m.Kind != want.Kind || !m.Equal(want) {
			t.Fatalf("%s: walking %s gives %+v, %v; Lookup gives %+v", d.Raw(), FormatPath(path), m, err, want)
		}
		n++
	}
	if err := it.Err(); err != nil {
		t.Fatalf("%s: Iter: %v", d.Raw(), err)
	}
	if l, err := Len(root); l != n || err != nil {
		t.Fatalf("%s: Len = %d, %v; Iter walked %d", d.Raw(), l, err, n)
	}
	if root.Kind == Array {
		if v, err := Element(root, n, &scratch); v.Kind != Missing || err != nil {
			t.Fatalf("%s: Element(%d) = %+v, %v; want missing", d.Raw(), n, v, err)
		}
	}
}

func TestWalkDocs(t *testing.T) {
	for _, raw := range append(validDocs, lookupDoc, string(benchNested)) {
		checkWalk(t, mustParse(t, raw))
	}
}

func TestWalkAllocs(t *testing.T) {
	o := RawValue(Object, benchNested)
	a := arr(`[1, "t\u0077o", {"k": "v"}]`)
	scratch := make([]byte, 0, 1024)
	user, esc := []byte("user"), []byte(`e"k`)
	e := obj(`{"e\"k": "v\n", "a": 1}`)
	n := testing.AllocsPerRun(100, func() {
		scratch = scratch[:0]
		if v, err := Member(o, user, &scratch); v.Kind != Object || err != nil {
			t.Fatal(v, err)
		}
		if v, err := Member(e, esc, &scratch); v.Kind != String || err != nil {
			t.Fatal(v, err)
		}
		if v, err := Element(a, 1, &scratch); v.Kind != String || err != nil {
			t.Fatal(v, err)
		}
		if n, err := Len(o); n != 4 || err != nil {
			t.Fatal(n, err)
		}
		it := NewIter(e)
		for _, _, ok := it.Next(&scratch); ok; _, _, ok = it.Next(&scratch) {
		}
	})
	if n != 0 {
		t.Errorf("walking allocates %v times per run, want 0", n)
	}
}

func BenchmarkMember(b *testing.B) {
	o := RawValue(Object, benchNested)
	ts := []byte("ts")
	scratch := make([]byte, 0, 64)
	b.ReportAllocs()
	b.SetBytes(int64(len(benchNested)))
	for b.Loop() {
		scratch = scratch[:0]
		if v, err := Member(o, ts, &scratch); v.Kind != Int || err != nil {
			b.Fatal(v, err)
		}
	}
}
