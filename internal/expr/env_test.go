package expr

import (
	"bytes"
	"encoding/json"
	"strconv"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/jsondoc"
)

// mapEnv is an Env over an event decoded with encoding/json. Objects and
// arrays are handed out as re-encoded JSON text, like jsondoc does with raw
// input.
type mapEnv struct {
	root    any
	key     []byte
	meta    map[string]string
	time    int64
	scratch []byte
	// fieldErr, when set, is returned by every Field call.
	fieldErr error
	calls    int
}

func newMapEnv(t testing.TB, doc string) *mapEnv {
	t.Helper()
	env := &mapEnv{}
	if doc == "" {
		return env
	}
	d := json.NewDecoder(bytes.NewReader([]byte(doc)))
	d.UseNumber()
	if err := d.Decode(&env.root); err != nil {
		t.Fatalf("bad test event %s: %v", doc, err)
	}
	return env
}

func (e *mapEnv) Field(path []jsondoc.Seg) (jsondoc.Value, error) {
	e.calls++
	if e.fieldErr != nil {
		return jsondoc.Value{}, e.fieldErr
	}
	cur := e.root
	if cur == nil {
		return jsondoc.Value{}, nil
	}
	for _, s := range path {
		switch c := cur.(type) {
		case map[string]any:
			if s.IsIndex() {
				return jsondoc.Value{}, nil
			}
			v, ok := c[s.Key]
			if !ok {
				return jsondoc.Value{}, nil
			}
			cur = v
		case []any:
			if !s.IsIndex() || s.Index >= len(c) {
				return jsondoc.Value{}, nil
			}
			cur = c[s.Index]
		default:
			return jsondoc.Value{}, nil
		}
	}
	return toValue(cur), nil
}

func toValue(x any) jsondoc.Value {
	switch v := x.(type) {
	case nil:
		return jsondoc.NullValue()
	case bool:
		return jsondoc.BoolValue(v)
	case json.Number:
		if i, err := strconv.ParseInt(string(v), 10, 64); err == nil {
			return jsondoc.IntValue(i)
		}
		f, _ := strconv.ParseFloat(string(v), 64)
		return jsondoc.FloatValue(f)
	case string:
		return jsondoc.StringValue([]byte(v))
	case map[string]any:
		b, _ := json.Marshal(v)
		return jsondoc.RawValue(jsondoc.Object, b)
	case []any:
		b, _ := json.Marshal(v)
		return jsondoc.RawValue(jsondoc.Array, b)
	}
	panic("unexpected JSON value")
}

func (e *mapEnv) Key() []byte { return e.key }

func (e *mapEnv) Meta(name string) ([]byte, bool) {
	v, ok := e.meta[name]
	return []byte(v), ok
}

func (e *mapEnv) Time() int64      { return e.time }
func (e *mapEnv) Scratch() *[]byte { return &e.scratch }

// sliceEnv is a cheap Env for benchmarks: Field is a linear scan of a few
// precomputed paths.
type sliceEnv struct {
	paths   [][]jsondoc.Seg
	vals    []jsondoc.Value
	scratch []byte
}

func (e *sliceEnv) Field(path []jsondoc.Seg) (jsondoc.Value, error) {
	for i, p := range e.paths {
		if samePath(p, path) {
			return e.vals[i], nil
		}
	}
	return jsondoc.Value{}, nil
}

func (e *sliceEnv) Key() []byte                { return nil }
func (e *sliceEnv) Meta(string) ([]byte, bool) { return nil, false }
func (e *sliceEnv) Time() int64                { return 0 }
func (e *sliceEnv) Scratch() *[]byte           { return &e.scratch }

// render shows a value in test tables: JSON text, or "missing".
func render(v jsondoc.Value) string {
	if v.Kind == jsondoc.Missing {
		return "missing"
	}
	return string(jsondoc.AppendValue(nil, v))
}

func nowNanos() int64 { return time.Now().UnixNano() }
