package expr

import (
	"errors"
	"testing"
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
		_, err = p.Eval(env)
		var ee *EvalError
		if err != nil && !errors.As(err, &ee) {
			t.Fatalf("Eval(%q) error %T %v, want *EvalError", src, err, err)
		}
		_, _ = p.EvalBool(env)
	})
}
