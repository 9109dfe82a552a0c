package jsondoc

import (
	"encoding/json"
	"errors"
	"strings"
	"testing"
)

// P builds a path from keys and ints: P("a", 0, "b") is a[0].b.
func P(segs ...any) []Seg {
	path := make([]Seg, len(segs))
	for i, s := range segs {
		switch s := s.(type) {
		case string:
			path[i] = Key(s)
		case int:
			path[i] = Index(s)
		default:
			panic("bad segment")
		}
	}
	return path
}

func mustParse(t testing.TB, raw string) *Doc {
	t.Helper()
	var d Doc
	if err := d.Parse([]byte(raw)); err != nil {
		t.Fatalf("Parse(%s): %v", raw, err)
	}
	return &d
}

// unmarshal decodes JSON text with encoding/json, failing the test on error.
func unmarshal(t testing.TB, text []byte) any {
	t.Helper()
	var v any
	if err := json.Unmarshal(text, &v); err != nil {
		t.Fatalf("encoding/json rejects %s: %v", text, err)
	}
	return v
}

const lookupDoc = ` {
	"s": "plain", "e": "esc\"aped\n\u00e9",
	"i": 42, "neg": -7, "f": 12.5, "big": 1e400, "huge": 12345678901234567890,
	"t": true, "fa": false, "n": null,
	"o": {"a": {"b": [10, {"c": "deep"}, [1, 2]]}, "x": "y"},
	"arr": [ "zero", 1, {"k": "v"} ],
	"dup": 1, "dup": 2,
	"esc\u0061ped key": "found",
	"": "empty key",
	"o2": {"k": 1, "k": 2}
} `

func TestLookup(t *testing.T) {
	d := mustParse(t, lookupDoc)
	tests := []struct {
		path []Seg
		want Value
	}{
		{P("s"), StringValue([]byte("plain"))},
		{P("e"), StringValue([]byte("esc\"aped\né"))},
		{P("i"), IntValue(42)},
		{P("neg"), IntValue(-7)},
		{P("f"), FloatValue(12.5)},
		{P("huge"), FloatValue(12345678901234567890)},
		{P("t"), BoolValue(true)},
		{P("fa"), BoolValue(false)},
		{P("n"), NullValue()},
		{P("o", "x"), StringValue([]byte("y"))},
		{P("o", "a", "b", 0), IntValue(10)},
		{P("o", "a", "b", 1, "c"), StringValue([]byte("deep"))},
		{P("o", "a", "b", 2, 1), IntValue(2)},
		{P("o", "a", "b", 2), RawValue(Array, []byte("[1, 2]"))},
		{P("arr", 0), StringValue([]byte("zero"))},
		{P("arr", 2, "k"), StringValue([]byte("v"))},
		{P("arr", 2), RawValue(Object, []byte(`{"k": "v"}`))},
		{P("dup"), IntValue(2)},
		{P("o2", "k"), IntValue(2)},
		{P("escaped key"), StringValue([]byte("found"))},
		{P(""), StringValue([]byte("empty key"))},
		// Missing.
		{P("nope"), MissingValue()},
		{P("s", "x"), MissingValue()},
		{P("s", 0), MissingValue()},
		{P("o", 0), MissingValue()},
		{P("arr", 3), MissingValue()},
		{P("arr", "0"), MissingValue()},
		{P("o", "a", "b", 5), MissingValue()},
		{P("o", "a", "nope", "x"), MissingValue()},
		{P(0), MissingValue()},
		{P("n", "x"), MissingValue()},
		{P("esc\\u0061ped key"), MissingValue()},
	}
	for _, tt := range tests {
		got := d.Lookup(tt.path)
		if got.Kind != tt.want.Kind || !got.Equal(tt.want) {
			t.Errorf("Lookup(%s) = %v %q %v, want %v %q %v", FormatPath(tt.path), got.Kind, got.S, got, tt.want.Kind, tt.want.S, tt.want)
		}
	}
	if got := d.Lookup(P("big")); got.Kind != Float || got.F <= 1e308 {
		t.Errorf("Lookup(big) = %+v, want +Inf", got)
	}
}

func TestLookupAliasing(t *testing.T) {
	raw := []byte(`{"plain":"abc","esc":"a\nb"}`)
	d := mustParse(t, string(raw))
	d.raw = raw
	v := d.Lookup(P("plain"))
	if &v.S[0] != &d.Raw()[10] {
		t.Error("plain string does not alias the input")
	}
	e1 := d.Lookup(P("esc"))
	e2 := d.Lookup(P("esc"))
	if string(e1.S) != "a\nb" || string(e2.S) != "a\nb" {
		t.Errorf("escaped lookups = %q, %q", e1.S, e2.S)
	}
	// Appending to a returned S must not clobber later results.
	_ = append(e1.S, "XXXX"...)
	if string(e2.S) != "a\nb" {
		t.Errorf("append to one Value changed another: %q", e2.S)
	}
}

func TestLookupRootAndScalars(t *testing.T) {
	tests := []struct {
		raw  string
		want Value
	}{
		{` 42 `, IntValue(42)},
		{`"s"`, StringValue([]byte("s"))},
		{`null`, NullValue()},
		{` [1,2] `, RawValue(Array, []byte(`[1,2]`))},
		{` {"a":1} `, RawValue(Object, []byte(`{"a":1}`))},
	}
	for _, tt := range tests {
		d := mustParse(t, tt.raw)
		if got := d.Root(); !got.Equal(tt.want) || got.Kind != tt.want.Kind {
			t.Errorf("Parse(%s).Root() = %+v, want %+v", tt.raw, got, tt.want)
		}
		if got := d.Lookup(nil); !got.Equal(tt.want) {
			t.Errorf("Parse(%s).Lookup(nil) = %+v, want %+v", tt.raw, got, tt.want)
		}
		if got := string(d.AppendJSON([]byte("x"))); got != "x"+strings.TrimSpace(tt.raw) {
			t.Errorf("Parse(%s).AppendJSON = %s", tt.raw, got)
		}
	}
	d := mustParse(t, `[10, [20, 30]]`)
	if got := d.Lookup(P(1, 0)); !got.Equal(IntValue(20)) {
		t.Errorf("array root Lookup([1][0]) = %+v", got)
	}
	if got := d.Lookup(P("a")); got.Kind != Missing {
		t.Errorf("array root Lookup(a) = %+v", got)
	}
	var zero Doc
	if got := zero.Lookup(P("a")); got.Kind != Missing {
		t.Errorf("zero Doc Lookup = %+v", got)
	}
	if got := zero.Root(); got.Kind != Missing {
		t.Errorf("zero Doc Root = %+v", got)
	}
	if zero.Delete(P("a")) {
		t.Error("zero Doc Delete reported true")
	}
	if err := zero.Set(P("a"), IntValue(1)); !errors.Is(err, ErrNotObject) {
		t.Errorf("zero Doc Set = %v, want ErrNotObject", err)
	}
}

func TestParseReuse(t *testing.T) {
	var d Doc
	docs := []string{`{"a":1,"b":2}`, `{"c":"x\ny"}`, `[1]`, `{"a":{"b":1}}`, `{}`}
	for range 3 {
		for _, raw := range docs {
			if err := d.Parse([]byte(raw)); err != nil {
				t.Fatal(err)
			}
			if d.Modified() {
				t.Errorf("fresh Parse(%s) is modified", raw)
			}
			if got := string(d.AppendJSON(nil)); got != raw {
				t.Errorf("AppendJSON = %s, want %s", got, raw)
			}
			_ = d.Set(P("new"), IntValue(1))
		}
	}
}

func TestEditAllocs(t *testing.T) {
	var d Doc
	var out []byte
	nested := []byte(`{"a":{"b":{"c":1}},"s":"x\ny","n":1}`)
	run := func() {
		if err := d.Parse(benchEvent); err != nil {
			t.Fatal(err)
		}
		_ = d.Set(P("score"), FloatValue(0.875))
		_ = d.Set(P("type"), StringValue([]byte("view")))
		d.Delete(P("user_agent"))
		_, _ = d.Rename(P("user_id"), P("uid"))
		out = d.AppendJSON(out[:0])
		if err := d.Parse(nested); err != nil {
			t.Fatal(err)
		}
		_ = d.Lookup(P("s"))
		_ = d.Lookup(P("a", "b", "c"))
		_ = d.Set(P("a", "b", "d"), IntValue(2))
		_ = d.Set(P("x", "y"), IntValue(2))
		d.Delete(P("a", "b", "c"))
		_, _ = d.Rename(P("a", "b"), P("ab"))
		out = d.AppendJSON(out[:0])
	}
	run()
	if n := testing.AllocsPerRun(100, run); n != 0 {
		t.Errorf("parse/edit/serialize cycle allocates %v times per run, want 0", n)
	}
}
