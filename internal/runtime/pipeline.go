package runtime

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/event"
)

// Factory creates the components of a graph's nodes. The app layer
// implements it from its registry of connectors and processors; the runtime
// never imports a concrete component.
type Factory interface {
	NewInput(n *dag.Node, env Env) (Input, error)
	NewProcessor(n *dag.Node, env Env) (Processor, error)
	NewOutput(n *dag.Node, env Env) (Output, error)
}

// Options tune the runtime. Zero values take the defaults noted.
type Options struct {
	BatchSize       int           // target events per batch; default 256
	Linger          time.Duration // max wait for a partial batch, and idle flush interval of outputs; default 20ms
	QueueEvents     int           // bound of each stage instance's input queue, events; default 8192
	QueueBytes      int           // and bytes; default 16 MiB
	ShutdownTimeout time.Duration // how long a graceful stop may drain; default 30s
	Logger          *slog.Logger
	Registerer      prometheus.Registerer // where metrics go; nil for none

	// Store, when set, turns checkpoints on: every CheckpointInterval
	// (default 10s) and once at a graceful stop, the state of every Stateful
	// component goes into Store in one atomic write.
	Store              StateStore
	CheckpointInterval time.Duration
}

func (o *Options) setDefaults() {
	if o.BatchSize <= 0 {
		o.BatchSize = 256
	}
	if o.Linger <= 0 {
		o.Linger = 20 * time.Millisecond
	}
	if o.QueueEvents <= 0 {
		o.QueueEvents = 8192
	}
	if o.QueueBytes <= 0 {
		o.QueueBytes = 16 << 20
	}
	if o.ShutdownTimeout <= 0 {
		o.ShutdownTimeout = 30 * time.Second
	}
	if o.CheckpointInterval <= 0 {
		o.CheckpointInterval = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// opKind marks operator stages while the pipeline is built.
const opKind dag.Kind = -1

// ErrShutdownTimeout is the cause when a graceful stop did not drain in time.
var ErrShutdownTimeout = errors.New("shutdown timed out before in-flight events were written; they were not acknowledged and will be replayed by replayable inputs")

// Pipeline is a graph instantiated and ready to run. Build it with New, run
// it once with Run.
type Pipeline struct {
	g      *dag.Graph
	opts   Options
	log    *slog.Logger
	nodes  []*NodeStats
	stages []*StageStats
	insts  []*instance
	m      *metrics

	// Checkpoints (nil ckpt: off). outputsLeft counts output instances
	// that have not yet written everything; the last one to drain takes the
	// final checkpoint — every event read is then written — and closes
	// finalDone, which every output waits for before it closes.
	ckpt        *coordinator
	changelog   *Changelog
	outputsLeft atomic.Int32
	finalDone   chan struct{}

	running atomic.Bool // between the start of the stages and their end

	fates fates // event fate (fate.go)
}

// New instantiates every node of g (Parallelism instances each) through f
// and wires the queues between stages.
func New(g *dag.Graph, f Factory, opts Options) (*Pipeline, error) {
	opts.setDefaults()
	p := &Pipeline{g: g, opts: opts, log: opts.Logger.With(slog.String("pipeline", g.Name))}
	if opts.Store != nil {
		p.ckpt = newCoordinator(opts.Store, opts.CheckpointInterval, p.log, opts.Registerer)
		p.changelog = newChangelog(p.ckpt, p.log, opts.Registerer)
		p.finalDone = make(chan struct{})
	}
	nodeStats := make(map[*dag.Node]*NodeStats, len(g.Nodes))
	nodeIndex := make(map[*dag.Node]int, len(g.Nodes))
	for i, n := range g.Nodes {
		nodeIndex[n] = i
		ns := &NodeStats{Name: n.Name, Kind: n.Kind, Type: n.Type}
		nodeStats[n] = ns
		p.nodes = append(p.nodes, ns)
	}
	// One queue per instance of every stage that is not an input.
	queues := make(map[*dag.Stage][]*Queue)
	stageStats := make(map[*dag.Stage]*StageStats)
	for _, s := range g.Stages {
		ss := &StageStats{Name: s.Name(), parallelism: s.Parallelism,
			Busy: newLiveTime(s.Parallelism), Backpressure: newLiveTime(s.Parallelism)}
		stageStats[s] = ss
		p.stages = append(p.stages, ss)
		if s.Head().Kind == dag.Input {
			continue
		}
		qs := make([]*Queue, s.Parallelism)
		for i := range qs {
			qs[i] = NewQueue(opts.QueueEvents, opts.QueueBytes, 0)
		}
		queues[s] = qs
		ss.queues = qs
	}
	// Operators, and the stages that lead to them, get watermarks.
	opf, _ := f.(OperatorFactory)
	isOp := func(s *dag.Stage) bool {
		return opf != nil && s.Head().Kind == dag.Processor && len(s.Nodes) == 1 && opf.IsOperator(s.Head())
	}
	needsWM := map[*dag.Stage]bool{}
	for i := len(g.Stages) - 1; i >= 0; i-- { // stages are in topological order
		s := g.Stages[i]
		need := isOp(s)
		for _, e := range s.Tail().Out {
			need = need || needsWM[e.To.Stage]
		}
		needsWM[s] = need
	}
	wmSenders := map[*Queue]int32{}
	dlqRouter := func(inst *instance, n *dag.Node) *router {
		if n.DeadLetter == nil {
			return nil
		}
		qs := queues[n.DeadLetter.Stage]
		inst.addTargets(qs...)
		return &router{kind: dag.RoundRobin, queues: qs, rr: inst.idx, bp: &inst.stats.Backpressure, slot: inst.idx}
	}
	handler := func(inst *instance, n *dag.Node) *errHandler {
		return &errHandler{node: n, stats: nodeStats[n], logger: p.log, dlq: dlqRouter(inst, n), limit: opts.BatchSize, fates: &p.fates}
	}
	// The inputs upstream of each node.
	sources := map[*dag.Node][]string{}
	for _, n := range g.Nodes {
		if n.Kind == dag.Input {
			sources[n] = []string{n.Name}
			continue
		}
		for _, e := range n.In {
			for _, src := range sources[e.From] {
				if !slices.Contains(sources[n], src) {
					sources[n] = append(sources[n], src)
				}
			}
		}
	}
	for _, s := range g.Stages {
		for i := 0; i < s.Parallelism; i++ {
			inst := &instance{p: p, stage: s, idx: i, stats: stageStats[s], wmOut: &wmOut{cur: event.NoWatermark}}
			if qs := queues[s]; qs != nil {
				inst.queue = qs[i]
			}
			for _, n := range s.Nodes {
				inst.nodes = append(inst.nodes, nodeStats[n])
				inst.handlers = append(inst.handlers, handler(inst, n))
			}
			tail := s.Tail()
			// The chain evaluates a key-hash key itself when it is the only
			// way out: the document is parsed and hot.
			chainKeys := tail.Kind == dag.Processor && !isOp(s) && len(tail.Out) == 1 && tail.Out[0].Kind == dag.KeyHash
			for _, e := range tail.Out {
				r := &router{kind: e.Kind, queues: queues[e.To.Stage], self: i, rr: i, bp: &inst.stats.Backpressure, slot: inst.idx}
				if e.Kind == dag.Forward {
					inst.addTargets(r.queues[i])
				} else {
					inst.addTargets(r.queues...)
				}
				if needsWM[e.To.Stage] {
					n := len(r.queues)
					w := &wmRoute{src: inst.wmOut, sender: make([]int32, n), sentWM: make([]int64, n), sentIdle: make([]bool, n), sent: make([]bool, n)}
					for qi, q := range r.queues {
						if e.Kind == dag.Forward && qi != i {
							continue
						}
						wmSenders[q]++
						w.sender[qi] = wmSenders[q]
					}
					r.wm = w
				}
				if e.Kind == dag.KeyHash {
					h := handler(inst, e.To)
					if chainKeys {
						inst.key, inst.keyErr = e.Key, h
					} else {
						r.key, r.keyErr = e.Key, h
					}
				}
				inst.routes = append(inst.routes, r)
			}
			// Malformed records of inputs that defer validation to this
			// chain are handled with the input's policy, here.
			if s.Head().Kind == dag.Processor {
				for _, e := range s.Head().In {
					if deferValidation(e.From) {
						if inst.origins == nil {
							inst.origins = map[int]*errHandler{}
						}
						inst.origins[nodeIndex[e.From]] = handler(inst, e.From)
					}
				}
			}
			inst.origin = nodeIndex[s.Head()]
			env := Env{Pipeline: g.Name, Instance: i, Parallelism: s.Parallelism, BatchSize: opts.BatchSize, Linger: opts.Linger, Registerer: opts.Registerer,
				DeferValidation: s.Head().Kind == dag.Input && deferValidation(s.Head()), Checkpointing: p.ckpt != nil, Changelog: p.changelog, Sources: sources[s.Head()]}
			var err error
			kind := s.Head().Kind
			if isOp(s) {
				kind = opKind
			}
			switch kind {
			case dag.Input:
				env.Node, env.Logger = s.Head().Name, p.log.With(slog.String("node", s.Head().Name))
				inst.input, err = f.NewInput(s.Head(), env)
				inst.outlet = &outlet{inst: inst}
				if err == nil && p.ckpt != nil {
					p.ckpt.add(s.Head().Name, inst.input, inst.outlet)
				}
			case dag.Output:
				env.Node, env.Logger = s.Head().Name, p.log.With(slog.String("node", s.Head().Name))
				inst.output, err = f.NewOutput(s.Head(), env)
				p.outputsLeft.Add(1)
				if err == nil && p.ckpt != nil {
					p.ckpt.add(s.Head().Name, inst.output, nil)
				}
			case opKind:
				env.Node, env.Logger = s.Head().Name, p.log.With(slog.String("node", s.Head().Name))
				var op Operator
				op, err = opf.NewOperator(s.Head(), env)
				if err == nil {
					inst.opst = &opState{op: op}
					if p.ckpt != nil {
						p.ckpt.add(s.Head().Name, op, nil)
						p.ckpt.addOperator(inst.opst)
						p.changelog.register(s.Head().Name, op, env.Sources)
					}
				}
			default:
				for _, n := range s.Nodes {
					env.Node, env.Logger = n.Name, p.log.With(slog.String("node", n.Name))
					var proc Processor
					proc, err = f.NewProcessor(n, env)
					if err != nil {
						break
					}
					inst.procs = append(inst.procs, proc)
					if a, ok := proc.(BatchAware); ok {
						inst.aware = append(inst.aware, a)
					}
					if p.ckpt != nil {
						p.ckpt.add(n.Name, proc, nil)
						p.changelog.register(n.Name, proc, env.Sources)
					}
				}
			}
			if err != nil {
				p.closeBuilt()
				return nil, fmt.Errorf("%s %q instance %d: %w", s.Head().Kind, env.Node, i, err)
			}
			p.insts = append(p.insts, inst)
		}
	}
	for _, inst := range p.insts {
		for _, q := range inst.targets {
			q.producers++
		}
		if inst.queue != nil && wmSenders[inst.queue] > 0 {
			inst.wmIn = newWMIn(int(wmSenders[inst.queue]))
		}
		if inst.input != nil {
			for _, r := range inst.routes {
				if r.wm != nil {
					inst.iwm = &inputWM{gen: newWMGen(inst.stage.Head().EventTime)}
					break
				}
			}
		}
	}
	for _, qs := range queues {
		for _, q := range qs {
			q.closed = q.producers == 0
		}
	}
	p.m = newMetrics(opts.Registerer, p)
	for _, inst := range p.insts {
		inst.batchSeconds = p.m.batchSeconds.WithLabelValues(inst.stats.Name)
	}
	return p, nil
}

// outputDrained is called by an output instance that has written and
// flushed everything it will ever receive. With checkpoints, the last one
// takes the final checkpoint; every one waits for it before closing, so that
// files are published by the checkpoint that covers them.
func (p *Pipeline) outputDrained(ctx context.Context) error {
	if p.ckpt == nil {
		return nil
	}
	if p.outputsLeft.Add(-1) == 0 {
		defer close(p.finalDone)
		if err := p.ckpt.checkpoint(ctx, true); err != nil {
			return fmt.Errorf("final %w", err)
		}
		return nil
	}
	select {
	case <-p.finalDone:
	case <-ctx.Done():
	}
	return nil
}

// deferValidation reports whether input n may leave the JSON check of its
// records to the stages after it: every edge out of it leads to a processor
// chain (which parses each event of an unchecked batch first), and none is a
// key-hash edge (whose key the input's own router would evaluate).
func deferValidation(n *dag.Node) bool {
	if n.Kind != dag.Input || len(n.Out) == 0 {
		return false
	}
	for _, e := range n.Out {
		if e.To.Kind != dag.Processor || e.Kind == dag.KeyHash {
			return false
		}
	}
	return true
}

// closeBuilt releases components created before a build error.
func (p *Pipeline) closeBuilt() {
	ctx, cancel := context.WithTimeout(context.Background(), p.opts.ShutdownTimeout)
	defer cancel()
	for _, inst := range p.insts {
		if inst.output != nil {
			_ = inst.output.Close(ctx)
		}
		if c, ok := inst.input.(InputCloser); ok {
			_ = c.Close(ctx)
		}
	}
}

// Graph returns the graph the pipeline runs.
func (p *Pipeline) Graph() *dag.Graph { return p.g }

// Nodes returns the live counters of every node, in topological order.
func (p *Pipeline) Nodes() []*NodeStats { return p.nodes }

// Node returns the live counters of the node named name, or nil.
func (p *Pipeline) Node(name string) *NodeStats {
	for _, n := range p.nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Stages returns the live counters of every stage.
func (p *Pipeline) Stages() []*StageStats { return p.stages }

// Running reports whether the stages run: from the start of the inputs
// (after any restore from a checkpoint) until Run has drained them.
func (p *Pipeline) Running() bool { return p.running.Load() }

// Run runs the pipeline until every input is exhausted and everything has
// drained (it returns nil), until a node fails (it returns that error), or
// until ctx is cancelled. Cancelling ctx is a graceful stop: inputs stop
// reading, events already read flow through, outputs flush, inputs commit
// their progress, and Run returns nil — unless the drain takes longer than
// ShutdownTimeout, when Run gives up and returns ErrShutdownTimeout.
func (p *Pipeline) Run(ctx context.Context) error {
	defer p.closeTaps()
	defer p.fates.close()
	runCtx, cancelRun := context.WithCancelCause(context.Background())
	defer cancelRun(nil)
	inputCtx, cancelInputs := context.WithCancel(runCtx)
	defer cancelInputs()

	now := time.Now()
	for _, s := range p.stages {
		s.started = now
	}

	var (
		wg       sync.WaitGroup
		errMu    sync.Mutex
		firstErr error
	)
	fail := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
			p.log.Error("pipeline failing", slog.Any("err", err))
		}
		errMu.Unlock()
		cancelRun(err)
	}
	stopped := make(chan struct{})
	go func() {
		select {
		case <-ctx.Done():
			p.log.Info("stopping: inputs stop reading, in-flight events drain")
			cancelInputs()
			t := time.NewTimer(p.opts.ShutdownTimeout)
			defer t.Stop()
			select {
			case <-t.C:
				fail(ErrShutdownTimeout)
			case <-stopped:
			}
		case <-stopped:
		}
	}()
	if p.ckpt != nil {
		if err := p.ckpt.restore(ctx); err != nil {
			return err
		}
		wg.Go(func() {
			ckptCtx, cancel := context.WithCancel(runCtx)
			defer cancel()
			go func() {
				select {
				case <-p.finalDone:
					cancel()
				case <-ckptCtx.Done():
				}
			}()
			p.ckpt.run(ckptCtx, fail)
		})
	}
	p.running.Store(true)
	for _, inst := range p.insts {
		wg.Go(func() {
			if err := inst.run(runCtx, inputCtx); err != nil {
				fail(err)
			}
		})
	}
	wg.Wait()
	p.running.Store(false)
	close(stopped)

	// Every emitted event is now acknowledged (or the pipeline failed):
	// inputs commit what was acknowledged and release their resources.
	closeCtx, cancel := context.WithTimeout(context.Background(), p.opts.ShutdownTimeout)
	defer cancel()
	for _, inst := range p.insts {
		if c, ok := inst.input.(InputCloser); ok {
			if err := c.Close(closeCtx); err != nil {
				fail(fmt.Errorf("input %q: close: %w", inst.stage.Head().Name, err))
			}
		}
	}
	errMu.Lock()
	defer errMu.Unlock()
	return firstErr
}
