package expr

import (
	"bytes"
	"testing"

	"github.com/weir-dev/weir/internal/jsondoc"
)

func benchEnv() *sliceEnv {
	return &sliceEnv{
		paths: [][]jsondoc.Seg{
			{jsondoc.Key("type")},
			{jsondoc.Key("price")},
			{jsondoc.Key("page")},
			{jsondoc.Key("user_id")},
		},
		vals: []jsondoc.Value{
			jsondoc.StringValue([]byte("click")),
			jsondoc.FloatValue(19.99),
			jsondoc.StringValue([]byte("/Products/Shoes")),
			jsondoc.StringValue([]byte("u-123456")),
		},
		scratch: make([]byte, 0, 1024),
	}
}

var benchSink jsondoc.Value

func benchEval(b *testing.B, src string) {
	p := MustCompile(src)
	env := benchEnv()
	b.ReportAllocs()
	for b.Loop() {
		env.scratch = env.scratch[:0]
		v, err := p.Eval(env)
		if err != nil {
			b.Fatal(err)
		}
		benchSink = v
	}
}

var benchExprs = []struct{ name, src string }{
	{"NotEqual", `type != "view"`},
	{"Multiply", `price * 1.2`},
	{"LowerConcat", `lower(page) + "x"`},
	{"Path", `user_id`},
	{"InAndCompare", `type in ["click","purchase"] && price > 10`},
}

// BenchmarkEval measures Program.Eval. BenchmarkFieldsOnly makes the same
// Env.Field calls and nothing else: subtract it to get the evaluator's own
// cost.
func BenchmarkEval(b *testing.B) {
	for _, bc := range benchExprs {
		b.Run(bc.name, func(b *testing.B) { benchEval(b, bc.src) })
	}
}

func BenchmarkEvalBool(b *testing.B) {
	for _, src := range []string{`type != "view"`, `type in ["click","purchase"] && price > 10`} {
		p := MustCompile(src)
		env := benchEnv()
		b.Run(src, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, err := p.EvalBool(env); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkFieldsOnly(b *testing.B) {
	for _, bc := range benchExprs {
		b.Run(bc.name, func(b *testing.B) {
			var env Env = benchEnv()
			fields := MustCompile(bc.src).Fields()
			b.ReportAllocs()
			for b.Loop() {
				for _, f := range fields {
					benchSink, _ = env.Field(f)
				}
			}
		})
	}
}

// BenchmarkEvalJSON measures the evaluator's work on raw Object and Array
// values: computed members and indexes, len, in, structural equality and
// encoding.
func BenchmarkEvalJSON(b *testing.B) {
	doc := []byte(`{"event_id":"5f0c6a1e","user":{"id":"u_10432","geo":{"country":"DE","city":"Berlin"},"tags":["a","b"]},"items":[{"sku":"p42","qty":2},{"sku":"p7","qty":1}],"ts":1763900000123}`)
	for _, src := range []string{
		`coalesce(obj).b.c`, `coalesce(obj)["e\"k"][1]`, `coalesce(strs)[1]`,
		`coalesce(doc).items[1].qty`, `coalesce(doc).ts`, `len(doc)`, `len(strs)`,
		`"bc" in strs`, `"ts" in doc`, `strs == ["a", "bc", 3]`, `doc == coalesce(doc2)`,
		`[s, i, f]`, `string(f)`, `string([s, uni])`,
	} {
		p := MustCompile(src)
		env := newAllocEnv()
		env.paths = append(env.paths, []jsondoc.Seg{jsondoc.Key("doc")}, []jsondoc.Seg{jsondoc.Key("doc2")})
		env.vals = append(env.vals, jsondoc.RawValue(jsondoc.Object, doc),
			jsondoc.RawValue(jsondoc.Object, bytes.ReplaceAll(doc, []byte(":"), []byte(": "))))
		b.Run(src, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				env.scratch = env.scratch[:0]
				v, err := p.Eval(env)
				if err != nil {
					b.Fatal(err)
				}
				benchSink = v
			}
		})
	}
}
