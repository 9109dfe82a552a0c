package processor

import (
	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/expr"
	"github.com/weir-dev/weir/internal/runtime"
)

// FilterConfig is the spec of the filter processor.
type FilterConfig struct {
	Expr *config.Expr `yaml:"expr" required:"true" doc:"Boolean expression; events for which it is false (or null/missing) are dropped and counted as filtered."`
}

// Filter is a compiled filter.
type Filter struct {
	prog *expr.Program
}

// CompileFilter checks cfg and compiles its expression. field is the dotted
// config path of the node, for errors.
func CompileFilter(cfg FilterConfig, field string) (*Filter, config.Errors) {
	var errs config.Errors
	if cfg.Expr == nil {
		return nil, errs // reported by the decoder as a missing required field
	}
	prog, err := expr.Compile(cfg.Expr.Src)
	if err == nil {
		err = expr.CheckBool(prog)
	}
	if err != nil {
		errs.Add(cfg.Expr.ErrorAt(field+".expr", err))
		return nil, errs
	}
	return &Filter{prog: prog}, nil
}

// New returns the processor for one instance.
func (f *Filter) New() runtime.Processor { return filterProc{f.prog} }

type filterProc struct{ prog *expr.Program }

func (p filterProc) Process(r *runtime.Record) (bool, error) {
	return p.prog.EvalBool(r)
}
