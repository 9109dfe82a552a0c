package config

import (
	"reflect"

	"go.yaml.in/yaml/v3"
)

// Entry is one key and value of an Ordered mapping.
type Entry[T any] struct {
	Key string
	// KeyPos is where the key is written.
	KeyPos Pos
	Value  T
}

// Ordered is a YAML mapping decoded in the order it is written, for settings
// whose order matters (the steps of a map processor). Values decode like any
// other field: an Ordered[Expr] gets exact positions for every expression.
type Ordered[T any] []Entry[T]

// DocType implements DocTyper.
func (Ordered[T]) DocType() string { return "mapping" }

func (Ordered[T]) orderedMapping() {}

type orderedMapping interface{ orderedMapping() }

var orderedType = reflect.TypeFor[orderedMapping]()

// ordered decodes a mapping into an Ordered[T] held in v.
func (d *decoder) ordered(n *yaml.Node, sv *scalarValue, path string, v reflect.Value) {
	if n.Kind != yaml.MappingNode {
		d.add(n, path, "got "+gotText(n, sv), "a mapping", "write one key: value per line under "+path)
		return
	}
	et := v.Type().Elem()
	out := reflect.MakeSlice(v.Type(), 0, len(n.Content)/2)
	for _, p := range d.pairs(n, path, true) {
		e := reflect.New(et).Elem()
		e.FieldByName("Key").SetString(p.key.Value)
		e.FieldByName("KeyPos").Set(reflect.ValueOf(nodePos(d.file, p.key)))
		d.value(p.val, join(path, p.key.Value), e.FieldByName("Value"), nil)
		out = reflect.Append(out, e)
	}
	v.Set(out)
}
