package config

import (
	"reflect"
	"strconv"
	"testing"
)

func testLookup(name string) (string, bool) {
	v, ok := map[string]string{"HOME": "/home/w", "EMPTY": "", "N": "4"}[name]
	return v, ok
}

func TestExpandEnv(t *testing.T) {
	for _, tc := range []struct {
		in, want string
		probs    []string // "offset: msg"
	}{
		{in: "plain", want: "plain"},
		{in: "cost: $5", want: "cost: $5"},
		{in: "${HOME}/x", want: "/home/w/x"},
		{in: "a${N}b${N}", want: "a4b4"},
		{in: "${EMPTY}", want: ""},
		{in: "${EMPTY:-dflt}", want: "dflt"},
		{in: "${UNSET:-dflt}", want: "dflt"},
		{in: "${UNSET:-}", want: ""},
		{in: "${N:-9}", want: "4"},
		{in: "${UNSET:-a:-b}", want: "a:-b"},
		{in: "$${HOME}", want: "${HOME}"},
		{in: "$$${HOME}", want: "$${HOME}"}, // a lone $, then the escape
		{in: "$${", want: "${"},
		{in: "${UNSET}", want: "", probs: []string{"0: environment variable UNSET is not set"}},
		{in: "x ${A B}", want: "x ", probs: []string{`2: invalid environment variable reference "${A B}"`}},
		{in: "${HOME", want: "${HOME", probs: []string{`0: unterminated "${" (no closing "}")`}},
		{in: "${}", want: "", probs: []string{`0: invalid environment variable reference "${}"`}},
		{in: "${A:-${B}}", want: "}", probs: []string{"0: nested reference in the default of ${A}"}},
		{in: "${UNSET} ${ALSO}", want: " ", probs: []string{
			"0: environment variable UNSET is not set",
			"9: environment variable ALSO is not set",
		}},
	} {
		got, _, probs := expandEnv(tc.in, testLookup)
		var ps []string
		for _, p := range probs {
			ps = append(ps, strconv.Itoa(p.off)+": "+p.msg)
		}
		if got != tc.want || !reflect.DeepEqual(ps, tc.probs) {
			t.Errorf("expandEnv(%q) = %q, %q; want %q, %q", tc.in, got, ps, tc.want, tc.probs)
		}
	}
}

func TestExpandEnvSpans(t *testing.T) {
	// in:  "a${N}b$${c"
	// out: "a4b${c"
	got, spans, probs := expandEnv("a${N}b$${c", testLookup)
	if got != "a4b${c" || probs != nil {
		t.Fatalf("got %q %v", got, probs)
	}
	want := []envSpan{
		{out: 0, n: 1, in: 0},
		{out: 1, n: 1, in: 1, subst: true},
		{out: 2, n: 1, in: 5},
		{out: 3, n: 3, in: 7},
	}
	if !reflect.DeepEqual(spans, want) {
		t.Errorf("spans = %+v, want %+v", spans, want)
	}
}

// TestEnvPositions checks that substitution errors and substituted
// expressions point into the file as written.
func TestEnvPositions(t *testing.T) {
	t.Setenv("WEIR_T_USER", "alice")
	t.Setenv("WEIR_T_UNSET", "")
	t.Setenv("WEIR_T_P", "3")
	const doc = `name: env
inputs:
  web:
    type: generate
    parallelism: ${WEIR_T_P}
processors:
  f:
    type: filter
    from: web
    expr: user == "${WEIR_T_USER}" && x == "$${lit}"
  g:
    type: filter
    from: web
    expr: "\t${WEIR_T_UNSET:-d} ${WEIR_T_NOPE}"
outputs:
  o: {type: stdout, from: [f, g]}
`
	p, err := Parse("env.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	if got := p.Node("web").Parallelism; got != 3 {
		t.Errorf("parallelism = %d, want 3", got)
	}
	var fc filterConfig
	if errs := p.Node("f").Decode(&fc); errs != nil {
		t.Fatal(errs)
	}
	e := fc.Expr
	if e.Src != `user == "alice" && x == "${lit}"` {
		t.Fatalf("Src = %q", e.Src)
	}
	// expr starts at column 11 of line 10:
	//   user == "${WEIR_T_USER}" && x == "$${lit}"
	for off, col := range map[int]int{
		0:  11, // u
		9:  20, // a of alice: the $ of the reference
		13: 20, // e of alice
		14: 34, // closing quote after the reference
		25: 46, // $ of the literal ${, written $${
		26: 47, // {
		27: 48, // l
		24: 44, // opening quote
		31: 52, // closing quote
		32: 53, // end
	} {
		if got := e.PosAt(off); got != (Pos{"env.yaml", 10, col}) {
			t.Errorf("PosAt(%d) = %v, want column %d", off, got, col)
		}
	}
	errs := p.Node("g").Decode(&fc)
	if len(errs) != 1 || errs[0].Pos != (Pos{"env.yaml", 14, 33}) || errs[0].Msg != "environment variable WEIR_T_NOPE is not set" {
		t.Errorf("errs = %v", errs)
	}
}
