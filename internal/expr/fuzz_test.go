package expr

import (
	"errors"
	"testing"

	"github.com/weir-dev/weir/internal/jsondoc"
)

// FuzzCompile checks that Compile never panics and reports errors inside
// the source, and that whatever compiles evaluates without panicking.
func FuzzCompile(f *testing.F) {
	for _, tc := range compileErrorCases {
		f.Add(tc.src)
	}
	for _, src := range allocFreeExprs {
		f.Add(src)
	}
	for _, src := range []string{
		`type in ["click","purchase"] && price > 10`, `a ? b : c ? d : e`, `this["content-type"]`,
		`items[0].price * 1.2`, `-9223372036854775808`, `"\uD83D\uDE00"`, `x[y[z]].w`,
		`coalesce(a, b, "c")`, `a not in [1, 2]`, `[[[]]]`, `!!!a`, `substr(s, -1, 2)`,
	} {
		f.Add(src)
	}
	env := newMapEnv(f, testEvent)
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Compile(src)
		if err != nil {
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("Compile(%q) error %T %v, want *Error", src, err, err)
			}
			if ce.Pos < 0 || ce.Pos > len(src) || ce.Msg == "" {
				t.Fatalf("Compile(%q) error %+v: bad position or empty message", src, ce)
			}
			return
		}
		_ = p.Type()
		_ = p.Fields()
		_, _ = p.IsPath()
		_ = CheckBool(p)
		env.scratch = env.scratch[:0]
		v, err := p.Eval(env)
		var ee *EvalError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("Eval(%q) error %T %v, want *EvalError", src, err, err)
		}
		// EvalBool runs a separately compiled condition; it must agree.
		b, berr := p.EvalBool(env)
		switch {
		case err != nil:
			if berr == nil {
				t.Fatalf("%q: Eval fails with %v, EvalBool = %v", src, err, b)
			}
		case v.Kind == jsondoc.Bool:
			if berr != nil || b != v.B {
				t.Fatalf("%q: Eval = %v, EvalBool = %v, %v", src, v.B, b, berr)
			}
		case v.Kind == jsondoc.Missing || v.Kind == jsondoc.Null:
			if berr != nil || b {
				t.Fatalf("%q: Eval = %s, EvalBool = %v, %v", src, v.Kind, b, berr)
			}
		default:
			if berr == nil {
				t.Fatalf("%q: Eval = %s, EvalBool = %v without error", src, v.Kind, b)
			}
		}
	})
}
