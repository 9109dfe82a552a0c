package expr

import (
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

func BenchmarkEval(b *testing.B) {
	for _, bc := range []struct{ name, src string }{
		{"NotEqual", `type != "view"`},
		{"Multiply", `price * 1.2`},
		{"LowerConcat", `lower(page) + "x"`},
		{"Path", `user_id`},
		{"InAndCompare", `type in ["click","purchase"] && price > 10`},
	} {
		b.Run(bc.name, func(b *testing.B) { benchEval(b, bc.src) })
	}
}

// BenchmarkField measures the fake Env's Field alone, to subtract from the
// numbers above.
func BenchmarkField(b *testing.B) {
	env := benchEnv()
	path := []jsondoc.Seg{jsondoc.Key("type")}
	b.ReportAllocs()
	for b.Loop() {
		benchSink, _ = env.Field(path)
	}
}
