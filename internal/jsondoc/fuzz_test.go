package jsondoc

import (
	"bytes"
	"encoding/json"
	"reflect"
	"testing"
	"unicode/utf8"
)

var fuzzSeeds = []string{
	``, `{}`, `[]`, `0`, `-0.5e+3`, `"a\u00e9\uD83D\uDE00\n"`, `{"a":1,"a":2}`,
	` {"a" : [1, {"b": null}], "c": "d\"e"} `, `[[[]]]`, `{"a":1,}`, `01`, `1.`, `"\u12"`,
	"\"\x01\"", "\"\xff\"", `tru`, `{"":""}`, `{"a\u0062":{"c":[true,false]}}`,
	`{"a":`, `{"a" 1}`, `{a: 1}`, `[1,`, `[1 2]`, `[1,]`, `[1] x`, `[{"k\u0065y":"\u0076"},[]]`,
	string(benchEvent),
}

func FuzzValidate(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		err := Validate(raw)
		if want := json.Valid(raw); (err == nil) != want {
			t.Fatalf("Validate(%q) = %v, encoding/json.Valid = %v", raw, err, want)
		}
		if err != nil {
			se, ok := err.(*SyntaxError)
			if !ok || se.Offset < 0 || se.Offset > len(raw) {
				t.Fatalf("Validate(%q) = %#v, want a *SyntaxError with an offset in range", raw, err)
			}
		}
		var d Doc
		if perr := d.Parse(raw); (perr == nil) != (err == nil) || perr != nil && perr.Error() != err.Error() {
			t.Fatalf("Parse(%q) = %v, Validate = %v", raw, perr, err)
		}
		if _, perr := ParseValue(raw, nil); (perr == nil) != (err == nil) {
			t.Fatalf("ParseValue(%q) = %v, Validate = %v", raw, perr, err)
		}
		checkWalkAll(t, raw)
	})
}

func FuzzParseRoundTrip(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		var d Doc
		if d.Parse(raw) != nil {
			return
		}
		checkWalk(t, &d)
		// Unmodified: verbatim.
		if got, want := d.AppendJSON(nil), bytes.Trim(raw, " \t\r\n"); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON(%q) = %q, want %q", raw, got, want)
		}
		var orig any
		if json.Unmarshal(raw, &orig) != nil {
			return // valid, but a number is beyond float64
		}
		// encoding/json replaces invalid UTF-8, which Lookup returns as is:
		// paths to such keys cannot be written as decoded.
		validUTF8 := utf8.Valid(raw)
		if m, ok := orig.(map[string]any); ok && validUTF8 {
			checkLookups(t, &d, m, nil)
		}

		// Set a new top-level key: encoding/json sees the old members plus
		// the new one.
		err := d.Set([]Seg{Key("\x00fuzz\"new")}, StringValue([]byte("v\n")))
		m, isObject := orig.(map[string]any)
		if !isObject {
			if err == nil {
				t.Fatalf("Set on non-object root %q succeeded", raw)
			}
			return
		}
		if err != nil {
			t.Fatalf("Set on %q: %v", raw, err)
		}
		out := d.AppendJSON(nil)
		m["\x00fuzz\"new"] = "v\n"
		if got := unmarshal(t, out); !reflect.DeepEqual(got, m) {
			t.Fatalf("after Set on %q: %s decodes to %v, want %v", raw, out, got, m)
		}

		if !validUTF8 {
			return
		}
		// Rewrite each member in place through a nested path or a delete,
		// and compare with the same edits on the decoded form.
		for k, v := range m {
			switch v := v.(type) {
			case map[string]any:
				if err := d.Set([]Seg{Key(k), Key("n")}, IntValue(1)); err != nil {
					t.Fatalf("nested Set on %q: %v", raw, err)
				}
				v["n"] = float64(1)
			case []any:
				if len(v) > 0 {
					if !d.Delete([]Seg{Key(k), Index(0)}) {
						t.Fatalf("Delete(%q[0]) on %q failed", k, raw)
					}
					m[k] = v[1:]
				}
			default:
				if !d.Delete([]Seg{Key(k)}) {
					t.Fatalf("Delete(%q) on %q failed", k, raw)
				}
				delete(m, k)
			}
		}
		out = d.AppendJSON(nil)
		if got := unmarshal(t, out); !reflect.DeepEqual(got, m) {
			t.Fatalf("after edits on %q: %s decodes to %v, want %v", raw, out, got, m)
		}
	})
}

// FuzzParseUnchecked: on every document ParseUnchecked allows (an object
// that Parse accepts, no top-level key twice), Lookup of any path gives
// what it gives after Parse, and so do Root, AppendJSON and an edit.
func FuzzParseUnchecked(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Add([]byte(`{"event_id":"e1","type":"click","props":{"price":1.5,"tags":["a","b"],"k":{"k":null}},"n":-3}`))
	f.Add([]byte(` {"t\u0079pe" : "x", "a":[{"b":[1,{"c":"\u00e9"}]}] , "z":{}} `))
	f.Fuzz(func(t *testing.T, raw []byte) {
		var d Doc
		if d.Parse(raw) != nil || d.kind != Object || !utf8.Valid(raw) {
			return
		}
		var orig map[string]any
		if json.Unmarshal(raw, &orig) != nil || len(orig) != len(d.members) {
			return // a number beyond float64, or a repeated top-level key
		}
		var u Doc
		u.ParseUnchecked(raw)
		paths := [][]Seg{nil, {Key("no such key")}, {Index(0)}, {Key("no such key"), Key("x")}}
		var collect func(v any, path []Seg)
		collect = func(v any, path []Seg) {
			paths = append(paths, path, append(path[:len(path):len(path)], Key("no such key")), append(path[:len(path):len(path)], Index(99)))
			switch w := v.(type) {
			case map[string]any:
				for k, c := range w {
					collect(c, append(path[:len(path):len(path)], Key(k)))
				}
			case []any:
				for i, c := range w {
					collect(c, append(path[:len(path):len(path)], Index(i)))
				}
			}
		}
		collect(orig, nil)
		for _, p := range paths {
			want, got := d.Lookup(p), u.Lookup(p)
			if got.Kind != want.Kind || got.B != want.B || got.I != want.I || got.F != want.F || string(got.S) != string(want.S) {
				t.Fatalf("Lookup(%s) of %q: %+v after ParseUnchecked, %+v after Parse", FormatPath(p), raw, got, want)
			}
		}
		if got, want := u.AppendJSON(nil), d.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON of %q: %q after ParseUnchecked, %q after Parse", raw, got, want)
		}
		v := StringValue([]byte("v"))
		if err1, err2 := u.Set([]Seg{Key("type")}, v), d.Set([]Seg{Key("type")}, v); (err1 == nil) != (err2 == nil) {
			t.Fatalf("Set of %q: %v after ParseUnchecked, %v after Parse", raw, err1, err2)
		}
		if got, want := u.AppendJSON(nil), d.AppendJSON(nil); !bytes.Equal(got, want) {
			t.Fatalf("AppendJSON after Set of %q: %q after ParseUnchecked, %q after Parse", raw, got, want)
		}
	})
}

// ParseUnchecked of something that is not an object leaves the document
// empty, as a failed Parse does.
func TestParseUncheckedNotObject(t *testing.T) {
	for _, raw := range []string{``, `  `, `[1]`, `"s"`, `1`} {
		var d Doc
		d.ParseUnchecked([]byte(raw))
		if k := d.Lookup([]Seg{Key("a")}).Kind; k != Missing {
			t.Errorf("ParseUnchecked(%q): Lookup(a) kind %v, want missing", raw, k)
		}
		if r := d.Root().Kind; r != Missing {
			t.Errorf("ParseUnchecked(%q): Root kind %v, want missing", raw, r)
		}
	}
}
