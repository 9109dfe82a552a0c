package app

import (
	"errors"
	"log/slog"
	"os"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/state"
)

// Loaded is a pipeline that passed every load-time check: YAML, graph,
// component configs and expressions. Running it can still fail (a file that
// cannot be opened, a port in use), but not because of the config.
type Loaded struct {
	Config   *config.Pipeline
	Graph    *dag.Graph
	builders map[string]Builder
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
// It reports every problem it can find at once: the file's structure, the
// graph, and each component's settings and expressions.
func LoadBytes(file string, data []byte) (*Loaded, error) {
	p, err := config.Parse(file, data)
	if p == nil {
		return nil, err
	}
	var errs config.Errors
	collect(&errs, err)
	builders := make(map[string]Builder, len(p.Nodes))
	cfgs := make(map[string]any, len(p.Nodes))
	for _, n := range p.Nodes {
		if n.Type == "" {
			continue // reported by Parse
		}
		c, names := lookup(kindOf(n.Kind), n.Type)
		if c.Build == nil {
			errs.Add(unknownType(n, kindOf(n.Kind), names))
			continue
		}
		cfg := c.Config()
		if derrs := n.Decode(cfg); len(derrs) > 0 {
			collect(&errs, derrs)
			continue
		}
		b, berrs := c.Build(cfg, n)
		collect(&errs, berrs)
		builders[n.Name] = b
		cfgs[n.Name] = cfg
	}
	if len(errs) == 0 {
		collect(&errs, repartition(p, cfgs, builders))
	}
	g, err := dag.Build(p)
	collect(&errs, err)
	if err := errs.Err(); err != nil {
		return nil, dedupe(errs)
	}
	return &Loaded{Config: p, Graph: g, builders: builders}, nil
}

// collect adds the config errors in err to errs.
func collect(errs *config.Errors, err error) {
	if err == nil {
		return
	}
	var list config.Errors
	var one *config.Error
	switch {
	case errors.As(err, &list):
		for _, e := range list {
			errs.Add(e)
		}
	case errors.As(err, &one):
		errs.Add(one)
	default:
		errs.Add(&config.Error{Msg: err.Error()})
	}
}

// dedupe drops errors reported twice (by two checks of the same thing).
func dedupe(errs config.Errors) config.Errors {
	seen := make(map[string]bool, len(errs))
	var out config.Errors
	for _, e := range errs {
		if k := e.Error(); !seen[k] {
			seen[k] = true
			out.Add(e)
		}
	}
	return out
}

// Factory returns the runtime.Factory that builds this pipeline's
// components.
func (l *Loaded) Factory() runtime.Factory { return factory{l} }

type factory struct{ l *Loaded }

func (f factory) NewInput(n *dag.Node, env runtime.Env) (runtime.Input, error) {
	return f.l.builders[n.Name].Input(env)
}

func (f factory) NewProcessor(n *dag.Node, env runtime.Env) (runtime.Processor, error) {
	return f.l.builders[n.Name].Processor(env)
}

func (f factory) IsOperator(n *dag.Node) bool { return f.l.builders[n.Name].Operator != nil }

func (f factory) NewOperator(n *dag.Node, env runtime.Env) (runtime.Operator, error) {
	return f.l.builders[n.Name].Operator(env)
}

func (f factory) NewOutput(n *dag.Node, env runtime.Env) (runtime.Output, error) {
	return f.l.builders[n.Name].Output(env)
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

		CheckpointInterval: l.Config.State.CheckpointInterval,
	}
}

// OpenState opens the pipeline's state store when the config names one, and
// returns it as the runtime's StateStore (nil when checkpoints are off) with
// a function that closes it.
func (l *Loaded) OpenState(logger *slog.Logger) (runtime.StateStore, func() error, error) {
	if l.Config.State.Dir == "" {
		return nil, func() error { return nil }, nil
	}
	s, err := state.OpenOptions(l.Config.State.Dir, logger, state.Options{BlockCache: int64(l.Config.State.BlockCache)})
	if err != nil {
		return nil, nil, err
	}
	return stateStore{s}, s.Close, nil
}

// stateStore adapts *state.Store to runtime.StateStore.
type stateStore struct{ s *state.Store }

func (a stateStore) Reader(node string) runtime.StateReader { return a.s.Reader(node) }
func (a stateStore) Begin() runtime.StateTxn                { return stateTxn{a.s.Begin()} }
func (a stateStore) Last() (uint64, bool)                   { return a.s.Last() }

// List gives the control plane the persisted checkpoint history.
func (a stateStore) List() ([]state.Checkpoint, error) { return a.s.List() }

type stateTxn struct{ *state.Txn }

func (t stateTxn) Writer(node string) runtime.StateWriter { return t.Txn.Writer(node) }
