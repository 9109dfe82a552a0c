package testkit

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
)

// Rec is one event of a Script: its source partition, key, event time in
// milliseconds and JSON value.
type Rec struct {
	Part  int32
	Key   string
	T     int64
	Value string
}

// Script is a stream in the order an input emits it: batches, each from one
// partition.
type Script [][]Rec

// ScriptInput is a runtime.Input that emits a Script, then finishes (or,
// with Then, calls Then until the pipeline stops).
type ScriptInput struct {
	S    Script
	Then func(ctx context.Context, out runtime.Outlet) error
}

// Run implements runtime.Input.
func (in *ScriptInput) Run(ctx context.Context, out runtime.Outlet) error {
	for _, batch := range in.S {
		if err := EmitRecs(ctx, out, batch); err != nil {
			return err
		}
	}
	if in.Then != nil {
		return in.Then(ctx, out)
	}
	return nil
}

// EmitRecs emits recs, all of one partition, as one batch.
func EmitRecs(ctx context.Context, out runtime.Outlet, recs []Rec) error {
	b := event.GetBatch()
	b.Partition = recs[0].Part
	for _, r := range recs {
		b.Append(event.Event{Key: []byte(r.Key), Value: []byte(r.Value), Time: r.T * 1e6, Offset: -1})
	}
	return out.Emit(ctx, b)
}

// OperatorRun is a pipeline input → one operator → capture, built from a
// YAML file whose input type is "script", whose operator node has the type
// the operator factory builds, and whose output type is "capture".
type OperatorRun struct {
	Input    runtime.Input
	Operator func(env runtime.Env) (runtime.Operator, error)
	OpType   string

	mu   sync.Mutex
	vals []string
}

// Results returns what the capture output has written so far.
func (r *OperatorRun) Results() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]string(nil), r.vals...)
}

// Run builds the pipeline of yaml and runs it until ctx ends or it
// finishes.
func (r *OperatorRun) Run(ctx context.Context, yaml string, opts runtime.Options) error {
	p, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		return err
	}
	g, err := dag.Build(p)
	if err != nil {
		return err
	}
	pl, err := runtime.New(g, opFactory{r}, opts)
	if err != nil {
		return err
	}
	return pl.Run(ctx)
}

// RunFor runs the pipeline to its end, failing after a minute.
func (r *OperatorRun) RunFor(yaml string, opts runtime.Options) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	return r.Run(ctx, yaml, opts)
}

type opFactory struct{ r *OperatorRun }

func (f opFactory) NewInput(*dag.Node, runtime.Env) (runtime.Input, error) { return f.r.Input, nil }
func (f opFactory) NewProcessor(n *dag.Node, _ runtime.Env) (runtime.Processor, error) {
	return nil, fmt.Errorf("no processor %q in an operator test", n.Name)
}
func (f opFactory) NewOutput(*dag.Node, runtime.Env) (runtime.Output, error) {
	return &capture{r: f.r}, nil
}
func (f opFactory) IsOperator(n *dag.Node) bool { return n.Type == f.r.OpType }
func (f opFactory) NewOperator(_ *dag.Node, env runtime.Env) (runtime.Operator, error) {
	return f.r.Operator(env)
}

type capture struct {
	r   *OperatorRun
	buf []string
}

func (c *capture) Write(_ context.Context, evs []event.Event) error {
	for i := range evs {
		c.buf = append(c.buf, string(evs[i].Value))
	}
	return nil
}

func (c *capture) Flush(context.Context) error {
	c.r.mu.Lock()
	defer c.r.mu.Unlock()
	c.r.vals = append(c.r.vals, c.buf...)
	c.buf = c.buf[:0]
	return nil
}

func (c *capture) Close(ctx context.Context) error { return c.Flush(ctx) }
