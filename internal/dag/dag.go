package dag

import (
	"fmt"
	"sort"
	"time"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/expr"
)

// Kind says what role a node plays.
type Kind int

// The node kinds.
const (
	Input Kind = iota
	Processor
	Output
)

func (k Kind) String() string {
	switch k {
	case Input:
		return "input"
	case Processor:
		return "processor"
	default:
		return "output"
	}
}

// EdgeKind is how events are distributed over the instances of the
// downstream node.
type EdgeKind int

// The edge kinds.
const (
	// Forward sends the events of upstream instance i to downstream
	// instance i. Both sides have the same parallelism.
	Forward EdgeKind = iota
	// RoundRobin spreads whole batches over the downstream instances.
	RoundRobin
	// KeyHash sends every event with the same key to the same downstream
	// instance, in order. The key comes from an expression.
	KeyHash
	// Broadcast sends every event to every downstream instance.
	Broadcast
)

var edgeNames = map[string]EdgeKind{"forward": Forward, "round_robin": RoundRobin, "key_hash": KeyHash, "broadcast": Broadcast}

func (k EdgeKind) String() string {
	for n, v := range edgeNames {
		if v == k {
			return n
		}
	}
	return "unknown"
}

// Policy is what happens to an event whose processing failed.
type Policy int

// The error policies.
const (
	// Drop counts the event and acknowledges it.
	Drop Policy = iota
	// DeadLetter sends the event, with the error attached, to an output.
	DeadLetter
	// Fail stops the pipeline.
	Fail
)

func (p Policy) String() string {
	switch p {
	case Drop:
		return "drop"
	case DeadLetter:
		return "dead_letter"
	default:
		return "fail"
	}
}

// Graph is a validated pipeline.
type Graph struct {
	Name string
	// Nodes in topological order (every node after all of its upstreams).
	Nodes []*Node
	// Stages are the units of execution, in topological order.
	Stages []*Stage
	byName map[string]*Node
}

// Node is one vertex of the graph.
type Node struct {
	Name        string
	Kind        Kind
	Type        string
	Parallelism int
	// In and Out are the incoming and outgoing edges, in config order.
	In, Out []*Edge
	OnError Policy
	// DeadLetter is the output that receives failed events when OnError is
	// DeadLetter.
	DeadLetter *Node
	// DeadLetterFrom lists the nodes that dead-letter into this output.
	DeadLetterFrom []*Node
	// Config is the node's configuration, for decoding its component.
	Config *config.Node
	// Stage is the stage this node runs in.
	Stage *Stage
	// EventTime is set on inputs that configure event_time.
	EventTime *EventTime
}

// EventTime is an input's compiled event_time: where event times come from
// and how far its watermarks trail them.
type EventTime struct {
	// Expr computes the event time; nil keeps the time the input set.
	Expr *expr.Program
	// Unit is the length of one unit of a numeric Expr result.
	Unit              time.Duration
	MaxOutOfOrderness time.Duration
	IdleTimeout       time.Duration
}

var timeUnits = map[string]time.Duration{"ns": time.Nanosecond, "us": time.Microsecond, "ms": time.Millisecond, "s": time.Second}

// Edge connects two nodes.
type Edge struct {
	From, To *Node
	Kind     EdgeKind
	// Key computes the partitioning key of a KeyHash edge; nil otherwise.
	Key *expr.Program
}

// Stage is a group of nodes run by the same goroutine per instance: a single
// input, a single output, or a fused chain of stateless processors.
type Stage struct {
	ID          int
	Nodes       []*Node
	Parallelism int
}

// Head is the first node of the stage, Tail the last.
func (s *Stage) Head() *Node { return s.Nodes[0] }

// Tail is the last node of the stage.
func (s *Stage) Tail() *Node { return s.Nodes[len(s.Nodes)-1] }

// Name names the stage after its nodes.
func (s *Stage) Name() string {
	n := s.Nodes[0].Name
	for _, x := range s.Nodes[1:] {
		n += "+" + x.Name
	}
	return n
}

// Node returns the node named name, or nil.
func (g *Graph) Node(name string) *Node { return g.byName[name] }

// Fusable reports whether a processor type may be fused into a chain. Every
// processor weir has today is stateless; stateful operators will say no.
var Fusable = func(n *Node) bool { return n.Kind == Processor }

// Build validates the pipeline's graph and returns it. All problems are
// reported at once as config.Errors.
func Build(p *config.Pipeline) (*Graph, error) {
	var errs config.Errors
	g := &Graph{Name: p.Name, byName: make(map[string]*Node, len(p.Nodes))}
	var all []*Node
	for _, cn := range p.Nodes {
		n := &Node{Name: cn.Name, Type: cn.Type, Parallelism: max(cn.Parallelism, 1), Config: cn}
		switch cn.Kind {
		case config.InputNode:
			n.Kind = Input
		case config.ProcessorNode:
			n.Kind = Processor
		default:
			n.Kind = Output
		}
		switch cn.OnError {
		case "dead_letter":
			n.OnError = DeadLetter
		case "fail":
			n.OnError = Fail
		default:
			n.OnError = Drop
		}
		if et := cn.EventTime; et != nil {
			n.EventTime = &EventTime{Unit: timeUnits[et.Unit], MaxOutOfOrderness: et.MaxOutOfOrderness, IdleTimeout: et.IdleTimeout}
			if n.EventTime.Unit == 0 {
				n.EventTime.Unit = time.Millisecond
			}
			if et.Expr != nil {
				prog, err := expr.Compile(et.Expr.Src)
				if err != nil {
					errs.Add(et.Expr.ErrorAt(fieldOf(cn, "event_time.expr"), err))
				}
				n.EventTime.Expr = prog
			}
		}
		g.byName[n.Name] = n
		all = append(all, n)
	}
	names := make([]string, 0, len(all))
	for _, n := range all {
		names = append(names, n.Name)
	}

	for _, n := range all {
		cn := n.Config
		for i, from := range cn.From {
			pos := cn.Pos
			if i < len(cn.FromPos) {
				pos = cn.FromPos[i]
			}
			up := g.byName[from]
			switch {
			case up == nil:
				errs.Add(&config.Error{Pos: pos, Field: fieldOf(cn, "from"), Msg: fmt.Sprintf("no node named %q", from),
					Expected: "the name of an input or processor", Hint: suggest(from, names)})
				continue
			case up == n:
				errs.Add(&config.Error{Pos: pos, Field: fieldOf(cn, "from"), Msg: "a node cannot read from itself"})
				continue
			case up.Kind == Output:
				errs.Add(&config.Error{Pos: pos, Field: fieldOf(cn, "from"), Msg: fmt.Sprintf("%q is an output; outputs have no downstream", from),
					Expected: "the name of an input or processor"})
				continue
			}
			e := &Edge{From: up, To: n}
			if err := resolveEdge(e, cn); err != nil {
				errs.Add(err)
				continue
			}
			up.Out = append(up.Out, e)
			n.In = append(n.In, e)
		}
		if n.OnError == DeadLetter {
			dl := g.byName[cn.DeadLetter]
			switch {
			case dl == nil:
				errs.Add(&config.Error{Pos: cn.DeadLetterPos, Field: fieldOf(cn, "dead_letter"), Msg: fmt.Sprintf("no output named %q", cn.DeadLetter),
					Expected: "the name of an output", Hint: suggest(cn.DeadLetter, outputNames(all))})
			case dl.Kind != Output:
				errs.Add(&config.Error{Pos: cn.DeadLetterPos, Field: fieldOf(cn, "dead_letter"), Msg: fmt.Sprintf("%q is a %s", cn.DeadLetter, dl.Kind),
					Expected: "the name of an output"})
			case dl == n:
				errs.Add(&config.Error{Pos: cn.DeadLetterPos, Field: fieldOf(cn, "dead_letter"), Msg: "an output cannot be its own dead-letter output"})
			default:
				n.DeadLetter = dl
				dl.DeadLetterFrom = append(dl.DeadLetterFrom, n)
			}
		}
	}
	for _, n := range all {
		if n.Kind == Output && len(n.In) == 0 && len(n.DeadLetterFrom) == 0 && len(n.Config.From) == 0 {
			errs.Add(&config.Error{Pos: n.Config.Pos, Field: fieldOf(n.Config, "from"), Msg: "output receives nothing",
				Expected: "a from list, or use as some node's dead_letter"})
		}
	}
	if len(errs) > 0 {
		return nil, errs
	}
	order, cyc := topoSort(all)
	if cyc != nil {
		errs.Add(&config.Error{Pos: cyc.Config.Pos, Field: cyc.Config.Kind.String() + "s." + cyc.Name, Msg: "the graph has a cycle through this node",
			Hint: "weir pipelines are acyclic: remove one of the from references in the loop"})
		return nil, errs
	}
	g.Nodes = order
	g.plan()
	return g, nil
}

func outputNames(all []*Node) []string {
	var out []string
	for _, n := range all {
		if n.Kind == Output {
			out = append(out, n.Name)
		}
	}
	return out
}

func fieldOf(cn *config.Node, f string) string {
	return cn.Kind.String() + "s." + cn.Name + "." + f
}

func resolveEdge(e *Edge, cn *config.Node) *config.Error {
	switch {
	case cn.KeyBy != nil:
		e.Kind = KeyHash
		prog, err := expr.Compile(cn.KeyBy.Src)
		if err != nil {
			return cn.KeyBy.ErrorAt(fieldOf(cn, "key_by"), err)
		}
		e.Key = prog
	case cn.Edge != "":
		e.Kind = edgeNames[cn.Edge]
	case e.From.Parallelism == e.To.Parallelism:
		e.Kind = Forward
	default:
		e.Kind = RoundRobin
	}
	if e.Kind == Forward && e.From.Parallelism != e.To.Parallelism {
		return &config.Error{Pos: cn.FieldPos("edge"), Field: fieldOf(cn, "edge"),
			Msg:      fmt.Sprintf("a forward edge needs equal parallelism, but %q has %d and %q has %d", e.From.Name, e.From.Parallelism, e.To.Name, e.To.Parallelism),
			Expected: "round_robin, key_hash or broadcast", Hint: "use edge: round_robin, or make the parallelism equal"}
	}
	return nil
}

func topoSort(all []*Node) ([]*Node, *Node) {
	indeg := make(map[*Node]int, len(all))
	for _, n := range all {
		indeg[n] = len(n.In)
	}
	var order, ready []*Node
	for _, n := range all {
		if indeg[n] == 0 {
			ready = append(ready, n)
		}
	}
	for len(ready) > 0 {
		n := ready[0]
		ready = ready[1:]
		order = append(order, n)
		for _, e := range n.Out {
			indeg[e.To]--
			if indeg[e.To] == 0 {
				ready = append(ready, e.To)
			}
		}
	}
	if len(order) != len(all) {
		// Nodes left over are on a cycle or downstream of one. Walking
		// upstream through left-over nodes must revisit a node: that one
		// is on the cycle.
		for _, n := range all {
			if indeg[n] == 0 {
				continue
			}
			seen := map[*Node]bool{}
			for !seen[n] {
				seen[n] = true
				for _, e := range n.In {
					if indeg[e.From] > 0 {
						n = e.From
						break
					}
				}
			}
			return nil, n
		}
	}
	return order, nil
}

// plan groups nodes into stages: each input and output is its own stage; a
// processor joins the stage of its single upstream when that upstream is a
// fusable processor with one outgoing edge, the edge is forward, and
// parallelism is equal.
func (g *Graph) plan() {
	for _, n := range g.Nodes {
		if n.Kind == Processor && Fusable(n) && len(n.In) == 1 {
			e := n.In[0]
			up := e.From
			if up.Kind == Processor && Fusable(up) && len(up.Out) == 1 && e.Kind == Forward &&
				up.Parallelism == n.Parallelism && up.Stage.Tail() == up {
				up.Stage.Nodes = append(up.Stage.Nodes, n)
				n.Stage = up.Stage
				continue
			}
		}
		s := &Stage{ID: len(g.Stages), Nodes: []*Node{n}, Parallelism: n.Parallelism}
		n.Stage = s
		g.Stages = append(g.Stages, s)
	}
	sort.SliceStable(g.Stages, func(i, j int) bool { return g.Stages[i].ID < g.Stages[j].ID })
}

func suggest(s string, candidates []string) string {
	if c, ok := config.Closest(s, candidates); ok {
		return fmt.Sprintf("did you mean %q?", c)
	}
	return ""
}
