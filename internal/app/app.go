package app

import (
	"os"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/runtime"
)

// Loaded is a pipeline that passed every load-time check: YAML, graph,
// component configs and expressions. Running it can still fail (a file that
// cannot be opened, a port in use), but not because of the config.
type Loaded struct {
	Config   *config.Pipeline
	Graph    *dag.Graph
	builders map[*dag.Node]Builder
}

// Load reads, parses and checks the pipeline in path. Config problems are
// returned as config.Errors (or a *config.Error), all at once.
func Load(path string) (*Loaded, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return LoadBytes(path, data)
}

// LoadBytes is Load on a file already in memory; file names it in errors.
func LoadBytes(file string, data []byte) (*Loaded, error) {
	p, err := config.Parse(file, data)
	if err != nil {
		return nil, err
	}
	g, err := dag.Build(p)
	if err != nil {
		return nil, err
	}
	l := &Loaded{Config: p, Graph: g, builders: make(map[*dag.Node]Builder, len(g.Nodes))}
	var errs config.Errors
	for _, n := range g.Nodes {
		c, names := lookup(n.Kind, n.Type)
		if c.Build == nil {
			errs.Add(unknownType(n, names))
			continue
		}
		cfg := c.Config()
		if derrs := n.Config.Decode(cfg); len(derrs) > 0 {
			for _, e := range derrs {
				errs.Add(e)
			}
			continue
		}
		b, berrs := c.Build(cfg, n)
		for _, e := range berrs {
			errs.Add(e)
		}
		l.builders[n] = b
	}
	if err := errs.Err(); err != nil {
		return nil, err
	}
	return l, nil
}

// Factory returns the runtime.Factory that builds this pipeline's
// components.
func (l *Loaded) Factory() runtime.Factory { return factory{l} }

type factory struct{ l *Loaded }

func (f factory) NewInput(n *dag.Node, env runtime.Env) (runtime.Input, error) {
	return f.l.builders[n].Input(env)
}

func (f factory) NewProcessor(n *dag.Node, env runtime.Env) (runtime.Processor, error) {
	return f.l.builders[n].Processor(env)
}

func (f factory) NewOutput(n *dag.Node, env runtime.Env) (runtime.Output, error) {
	return f.l.builders[n].Output(env)
}

// RuntimeOptions maps the config's runtime section to runtime options.
func (l *Loaded) RuntimeOptions() runtime.Options {
	r := l.Config.Runtime
	return runtime.Options{
		BatchSize:       r.BatchSize,
		Linger:          r.Linger,
		QueueEvents:     r.QueueEvents,
		QueueBytes:      int(r.QueueBytes),
		ShutdownTimeout: r.ShutdownTimeout,
	}
}
