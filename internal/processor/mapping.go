package processor

import (
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/expr"
	"github.com/weir-dev/weir/internal/jsondoc"
	"github.com/weir-dev/weir/internal/runtime"
)

// MapConfig is the spec of the map processor. Its steps run in a fixed
// order: set (in the order written; each expression sees the fields set
// before it), then rename (in the order written), then delete, then key.
type MapConfig struct {
	Set    config.Ordered[config.Expr] `yaml:"set" doc:"Fields to set, in order: a mapping from field path (a.b.c) to expression. An expression that yields a missing value deletes the field."`
	Rename config.Ordered[string]      `yaml:"rename" doc:"Fields to move, in order: a mapping from old path to new path. Absent fields are skipped."`
	Delete []string                    `yaml:"delete" doc:"Field paths to remove."`
	Key    *config.Expr                `yaml:"key" doc:"Expression whose value becomes the event key (strings as is, other values as JSON; missing or null clears it)."`
}

// Map is a compiled map processor.
type Map struct {
	sets    []compiledSet
	renames [][2][]jsondoc.Seg
	deletes [][]jsondoc.Seg
	key     *expr.Program
}

type compiledSet struct {
	path []jsondoc.Seg
	prog *expr.Program
}

// ParsePath splits a dotted field path ("user.address.city") into segments.
// A segment of digits selects an array element ("items.0.price").
func ParsePath(p string) ([]jsondoc.Seg, error) {
	if p == "" {
		return nil, fmt.Errorf("empty field path")
	}
	parts := strings.Split(p, ".")
	segs := make([]jsondoc.Seg, 0, len(parts))
	for _, s := range parts {
		if s == "" {
			return nil, fmt.Errorf("field path %q has an empty segment", p)
		}
		if i, err := strconv.Atoi(s); err == nil && i >= 0 && s[0] != '+' {
			segs = append(segs, jsondoc.Index(i))
			continue
		}
		segs = append(segs, jsondoc.Key(s))
	}
	return segs, nil
}

// CompileMap checks cfg and compiles its expressions.
func CompileMap(cfg MapConfig, field string, pos func(key string) config.Pos) (*Map, config.Errors) {
	var errs config.Errors
	m := &Map{}
	for _, a := range cfg.Set {
		path, err := ParsePath(a.Key)
		if err != nil {
			errs.Add(&config.Error{Pos: a.KeyPos, Field: field + ".set", Msg: err.Error(), Expected: "a field path like user.name"})
			continue
		}
		x := a.Value
		prog, err := expr.Compile(x.Src)
		if err != nil {
			errs.Add(x.ErrorAt(field+".set."+a.Key, err))
			continue
		}
		m.sets = append(m.sets, compiledSet{path: path, prog: prog})
	}
	for _, rn := range cfg.Rename {
		fp, err1 := ParsePath(rn.Key)
		tp, err2 := ParsePath(rn.Value)
		if err := errors.Join(err1, err2); err != nil {
			errs.Add(&config.Error{Pos: rn.KeyPos, Field: field + ".rename." + rn.Key, Msg: err.Error(), Expected: "field paths like user.name"})
			continue
		}
		m.renames = append(m.renames, [2][]jsondoc.Seg{fp, tp})
	}
	for _, d := range cfg.Delete {
		p, err := ParsePath(d)
		if err != nil {
			errs.Add(&config.Error{Pos: pos("delete"), Field: field + ".delete", Msg: err.Error(), Expected: "field paths like user.name"})
			continue
		}
		m.deletes = append(m.deletes, p)
	}
	if cfg.Key != nil {
		prog, err := expr.Compile(cfg.Key.Src)
		if err != nil {
			errs.Add(cfg.Key.ErrorAt(field+".key", err))
		}
		m.key = prog
	}
	if len(m.sets)+len(m.renames)+len(m.deletes) == 0 && cfg.Key == nil && len(errs) == 0 {
		errs.Add(&config.Error{Pos: pos(""), Field: field, Msg: "map does nothing", Expected: "at least one of set, rename, delete, key"})
	}
	return m, errs
}

// New returns the processor for one instance.
func (m *Map) New() runtime.Processor { return &mapProc{m: m} }

type mapProc struct {
	m *Map
}

func (p *mapProc) Process(r *runtime.Record) (bool, error) {
	d, err := r.Doc()
	if err != nil {
		return false, err
	}
	for _, s := range p.m.sets {
		v, err := s.prog.Eval(r)
		if err != nil {
			return false, err
		}
		if err := d.Set(s.path, v); err != nil {
			return false, err
		}
	}
	for _, rn := range p.m.renames {
		if _, err := d.Rename(rn[0], rn[1]); err != nil {
			return false, err
		}
	}
	for _, del := range p.m.deletes {
		d.Delete(del)
	}
	if p.m.key != nil {
		v, err := p.m.key.Eval(r)
		if err != nil {
			return false, err
		}
		switch v.Kind {
		case jsondoc.String:
			r.Event.Key = append([]byte(nil), v.S...)
		case jsondoc.Missing, jsondoc.Null:
			r.Event.Key = nil
		default:
			r.Event.Key = jsondoc.AppendValue(nil, v)
		}
	}
	return true, nil
}
