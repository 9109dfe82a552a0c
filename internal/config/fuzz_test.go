package config

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

// FuzzParse checks that Parse, and decoding every node's component fields,
// never panics, and that every error it reports has a position.
func FuzzParse(f *testing.F) {
	files, _ := filepath.Glob("testdata/*/*.yaml")
	for _, file := range files {
		data, err := os.ReadFile(file)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(data)
	}
	f.Add([]byte("a: &x [*x]\n"))
	f.Add([]byte("name: m\ninputs:\n  a: &a {type: generate, <<: *a}\noutputs: {o: {type: stdout, from: a}}\n"))
	f.Add([]byte("name: m\ninputs:\n  a: {type: generate, expr: \"${X:-\\u00e9}\\\n  y\"}\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		p, err := Parse("fuzz.yaml", data)
		var errs Errors
		if p == nil {
			if err == nil {
				t.Fatal("nil pipeline and nil error")
			}
		} else {
			for _, n := range p.Nodes {
				if mk := testComponents[n.Type]; mk != nil {
					errs = append(errs, n.Decode(mk())...)
				}
				if n.KeyBy != nil {
					for i := -1; i <= len(n.KeyBy.Src)+1; i++ {
						n.KeyBy.PosAt(i)
					}
				}
			}
		}
		var e *Error
		if errors.As(err, &errs) || errors.As(err, &e) {
			if e != nil {
				errs = append(errs, e)
			}
		} else if err != nil {
			t.Fatalf("error of type %T: %v", err, err)
		}
		for _, e := range errs {
			if !e.Pos.IsValid() || e.Pos.Col < 1 || e.Msg == "" {
				t.Errorf("error without a position or message: %#v", e)
			}
		}
	})
}
