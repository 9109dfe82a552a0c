package config

import (
	"reflect"
	"strings"
	"testing"
)

// exprAt decodes the value of key "e" in doc as an Expr, with the source.
func exprAt(t *testing.T, doc string) Expr {
	t.Helper()
	root, serr := parseYAML("x.yaml", []byte(doc))
	if serr != nil {
		t.Fatal(serr)
	}
	var c struct {
		E Expr `yaml:"e"`
	}
	d := newDecoder("x.yaml", newSource([]byte(doc)))
	d.value(root, "", reflect.ValueOf(&c).Elem(), nil)
	if len(d.errs) > 0 {
		t.Fatal(d.errs)
	}
	return c.E
}

// at returns the line:col of each listed offset of e.
func at(e Expr, offsets ...int) string {
	var parts []string
	for _, o := range offsets {
		p := e.PosAt(o)
		parts = append(parts, strings.TrimPrefix(p.String(), "x.yaml:"))
	}
	return strings.Join(parts, " ")
}

func TestExprPosAt(t *testing.T) {
	for _, tc := range []struct {
		name, doc string
		src       string
		offsets   []int
		want      string
	}{
		{
			name: "plain", doc: "e: a + b\n", src: "a + b",
			offsets: []int{0, 2, 4, 5, 99, -1}, want: "1:4 1:6 1:8 1:9 1:9 1:4",
		},
		{
			name: "unicode", doc: "e: é == ü\n", src: "é == ü",
			// é is two bytes; both map to its column.
			offsets: []int{0, 1, 2, 3, 6}, want: "1:4 1:4 1:5 1:6 1:9",
		},
		{
			name: "single quoted", doc: "e: 'it''s x'\n", src: "it's x",
			offsets: []int{0, 2, 3, 5, 6}, want: "1:5 1:7 1:9 1:11 1:12",
		},
		{
			name: "double quoted escapes", doc: `e: "a\tb \"q\" \u00e9!"` + "\n", src: "a\tb \"q\" é!",
			// a=5 \t=6 b=8 ' '=9 \"=10 q=12 \"=13 ' '=15 é=16 (6 chars) !=22
			offsets: []int{0, 1, 2, 3, 4, 5, 6, 7, 8, 10, 11}, want: "1:5 1:6 1:8 1:9 1:10 1:12 1:13 1:15 1:16 1:22 1:23",
		},
		{
			name: "plain multi-line", doc: "e: a ==\n  b\n", src: "a == b",
			offsets: []int{0, 4, 5}, want: "1:4 1:8 2:3",
		},
		{
			name: "literal block", doc: "e: |\n  x == 1 ||\n    y\n", src: "x == 1 ||\n  y\n",
			offsets: []int{0, 5, 9, 10, 12}, want: "2:3 2:8 2:12 3:3 3:5",
		},
		{
			name: "folded block", doc: "e: >-\n  a &&\n  b\n", src: "a && b",
			offsets: []int{0, 2, 5}, want: "2:3 2:5 3:3",
		},
		{
			name: "double quoted line continuation", doc: "e: \"a \\\n  b\"\n", src: "a b",
			offsets: []int{0, 1, 2}, want: "1:5 1:6 2:3",
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := exprAt(t, tc.doc)
			if e.Src != tc.src {
				t.Fatalf("Src = %q, want %q", e.Src, tc.src)
			}
			if got := at(e, tc.offsets...); got != tc.want {
				t.Errorf("positions = %s\nwant        %s", got, tc.want)
			}
		})
	}
}

func TestExprPosAtWithoutTable(t *testing.T) {
	e := Expr{Src: "ab\ncd", Pos: Pos{"f", 3, 7}}
	if got := at(e, 0, 1, 3, 4); got != "f:3:7 f:3:8 f:4:7 f:4:8" {
		t.Errorf("got %s", got)
	}
	q := Expr{Src: "ab", Pos: Pos{"f", 1, 5}, Quoted: true}
	if got := q.PosAt(1); got != (Pos{"f", 1, 7}) {
		t.Errorf("quoted: got %v", got)
	}
	if got := (&Expr{Src: "x"}).PosAt(0); got != (Pos{}) {
		t.Errorf("no position: got %v", got)
	}
}

// TestExprWithoutSource decodes with the exported Decode, which has no file
// text: single-line scalars are still exact.
func TestExprWithoutSource(t *testing.T) {
	const doc = "e: 'it''s'\n"
	root, _ := parseYAML("x.yaml", []byte(doc))
	var c struct {
		E *Expr `yaml:"e"`
	}
	if errs := Decode("x.yaml", root, "", &c); errs != nil {
		t.Fatal(errs)
	}
	if got := at(*c.E, 0, 2, 3); got != "1:5 1:7 1:9" {
		t.Errorf("got %s", got)
	}
}
