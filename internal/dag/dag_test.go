package dag_test

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/jsondoc"
	"github.com/weir-dev/weir/internal/runtime"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata")

// build parses src as a pipeline file named test.yaml and builds its graph.
// Component types are not checked here (that is the app's job), so tests use
// the real type names only for readability.
func build(t *testing.T, src string) (*dag.Graph, error) {
	t.Helper()
	p, err := config.Parse("test.yaml", []byte(src))
	if err != nil {
		t.Fatalf("config.Parse: %v", err)
	}
	return dag.Build(p)
}

func mustBuild(t *testing.T, src string) *dag.Graph {
	t.Helper()
	g, err := build(t, src)
	if err != nil {
		t.Fatalf("dag.Build: %v", err)
	}
	return g
}

// stageNames returns the names of g's stages ("a+b+c" for a fused chain),
// sorted, so that tests state the grouping without depending on the order
// in which independent stages are listed.
func stageNames(g *dag.Graph) []string {
	var out []string
	for _, s := range g.Stages {
		out = append(out, s.Name())
	}
	slices.Sort(out)
	return out
}

// checkInvariants checks what every built graph promises: nodes in
// topological order, stages in topological order with sequential IDs, each
// node in exactly the stage that lists it, fused chains linked by single
// forward edges of equal parallelism, and edges registered at both ends.
func checkInvariants(t *testing.T, g *dag.Graph) {
	t.Helper()
	pos := map[*dag.Node]int{}
	for i, n := range g.Nodes {
		pos[n] = i
		if g.Node(n.Name) != n {
			t.Errorf("Node(%q) does not return the node", n.Name)
		}
	}
	for _, n := range g.Nodes {
		for _, e := range n.In {
			if e.To != n {
				t.Errorf("edge %s→%s is in the In list of %s", e.From.Name, e.To.Name, n.Name)
			}
			if pos[e.From] >= pos[n] {
				t.Errorf("node %s comes before its upstream %s", n.Name, e.From.Name)
			}
			if !slices.Contains(e.From.Out, e) {
				t.Errorf("edge %s→%s is missing from the Out list of %s", e.From.Name, n.Name, e.From.Name)
			}
		}
	}
	seen := map[*dag.Node]bool{}
	for i, s := range g.Stages {
		if s.ID != i {
			t.Errorf("stage %s has ID %d at index %d", s.Name(), s.ID, i)
		}
		if len(s.Nodes) == 0 {
			t.Fatalf("stage %d has no nodes", i)
		}
		if s.Head() != s.Nodes[0] || s.Tail() != s.Nodes[len(s.Nodes)-1] {
			t.Errorf("stage %s: Head/Tail disagree with Nodes", s.Name())
		}
		for j, n := range s.Nodes {
			if seen[n] {
				t.Errorf("node %s is in two stages", n.Name)
			}
			seen[n] = true
			if n.Stage != s {
				t.Errorf("node %s: Stage is %v, want %s", n.Name, n.Stage, s.Name())
			}
			if n.Parallelism != s.Parallelism {
				t.Errorf("node %s has parallelism %d in a stage of %d", n.Name, n.Parallelism, s.Parallelism)
			}
			if j > 0 {
				prev := s.Nodes[j-1]
				if n.Kind != dag.Processor || prev.Kind != dag.Processor {
					t.Errorf("stage %s fuses a non-processor", s.Name())
				}
				if len(n.In) != 1 || n.In[0].From != prev || n.In[0].Kind != dag.Forward || len(prev.Out) != 1 {
					t.Errorf("stage %s: %s→%s is not a single forward edge", s.Name(), prev.Name, n.Name)
				}
			}
		}
		if i > 0 && pos[s.Head()] < pos[g.Stages[i-1].Head()] {
			t.Errorf("stage %s is listed after %s but its head comes first in topological order", s.Name(), g.Stages[i-1].Name())
		}
	}
	if len(seen) != len(g.Nodes) {
		t.Errorf("stages hold %d nodes, the graph has %d", len(seen), len(g.Nodes))
	}
}

func TestFusionPlan(t *testing.T) {
	for _, tc := range []struct {
		name   string
		src    string
		stages []string
	}{
		{
			name: "chain of equal parallelism fuses",
			src: `
name: t
inputs:
  in: {type: generate}
processors:
  p1: {type: map, from: in}
  p2: {type: filter, from: p1}
  p3: {type: map, from: p2}
outputs:
  out: {type: discard, from: p3}
`,
			stages: []string{"in", "out", "p1+p2+p3"},
		},
		{
			name: "chain of parallelism 3 fuses",
			src: `
name: t
inputs:
  in: {type: generate, parallelism: 3}
processors:
  p1: {type: map, from: in, parallelism: 3}
  p2: {type: filter, from: p1, parallelism: 3}
  p3: {type: map, from: p2, parallelism: 3}
outputs:
  out: {type: discard, from: p3, parallelism: 3}
`,
			stages: []string{"in", "out", "p1+p2+p3"},
		},
		{
			name: "fan-out ends the chain at the node that fans out",
			src: `
name: t
inputs:
  in: {type: generate}
processors:
  p1: {type: map, from: in}
  p2: {type: map, from: p1}
  a: {type: filter, from: p2}
  a2: {type: map, from: a}
  b: {type: filter, from: p2}
outputs:
  oa: {type: discard, from: a2}
  ob: {type: discard, from: b}
`,
			stages: []string{"a+a2", "b", "in", "oa", "ob", "p1+p2"},
		},
		{
			name: "different parallelism starts a new stage",
			src: `
name: t
inputs:
  in: {type: generate}
processors:
  p1: {type: map, from: in}
  p2: {type: map, from: p1, parallelism: 2}
  p3: {type: map, from: p2, parallelism: 2}
outputs:
  out: {type: discard, from: p3}
`,
			stages: []string{"in", "out", "p1", "p2+p3"},
		},
		{
			name: "key_by edge starts a new stage",
			src: `
name: t
inputs:
  in: {type: generate}
processors:
  p1: {type: map, from: in}
  p2: {type: map, from: p1, key_by: user_id}
  p3: {type: map, from: p2}
outputs:
  out: {type: discard, from: p3}
`,
			stages: []string{"in", "out", "p1", "p2+p3"},
		},
		{
			name: "round_robin edge of equal parallelism starts a new stage",
			src: `
name: t
inputs:
  in: {type: generate}
processors:
  p1: {type: map, from: in}
  p2: {type: map, from: p1, edge: round_robin}
  p3: {type: map, from: p2}
outputs:
  out: {type: discard, from: p3}
`,
			stages: []string{"in", "out", "p1", "p2+p3"},
		},
		{
			name: "broadcast edge starts a new stage",
			src: `
name: t
inputs:
  in: {type: generate, parallelism: 2}
processors:
  p1: {type: map, from: in, parallelism: 2}
  p2: {type: map, from: p1, parallelism: 2, edge: broadcast}
outputs:
  out: {type: discard, from: p2, parallelism: 2}
`,
			stages: []string{"in", "out", "p1", "p2"},
		},
		{
			name: "explicit forward edge fuses",
			src: `
name: t
inputs:
  in: {type: generate}
processors:
  p1: {type: map, from: in}
  p2: {type: map, from: p1, edge: forward}
outputs:
  out: {type: discard, from: p2}
`,
			stages: []string{"in", "out", "p1+p2"},
		},
		{
			name: "node with two inputs starts a new stage",
			src: `
name: t
inputs:
  in: {type: generate}
processors:
  p1: {type: map, from: in}
  side: {type: map, from: in}
  join: {type: map, from: [p1, side]}
  after: {type: filter, from: join}
outputs:
  out: {type: discard, from: after}
`,
			stages: []string{"in", "join+after", "out", "p1", "side"},
		},
		{
			name: "the same upstream named twice is two inputs",
			src: `
name: t
inputs:
  in: {type: generate}
processors:
  p1: {type: map, from: in}
  p2: {type: map, from: [p1, p1]}
outputs:
  out: {type: discard, from: p2}
`,
			stages: []string{"in", "out", "p1", "p2"},
		},
		{
			name: "inputs and outputs are never fused",
			src: `
name: t
inputs:
  in: {type: generate}
outputs:
  out: {type: discard, from: in}
`,
			stages: []string{"in", "out"},
		},
		{
			name: "a dead-letter route does not break a chain",
			src: `
name: t
inputs:
  in: {type: generate}
processors:
  p1: {type: map, from: in, on_error: dead_letter, dead_letter: dlq}
  p2: {type: map, from: p1, on_error: dead_letter, dead_letter: dlq}
outputs:
  out: {type: discard, from: p2}
  dlq: {type: discard}
`,
			stages: []string{"dlq", "in", "out", "p1+p2"},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g := mustBuild(t, tc.src)
			checkInvariants(t, g)
			if got := stageNames(g); !slices.Equal(got, tc.stages) {
				t.Errorf("stages = %q, want %q", got, tc.stages)
			}
		})
	}
}

// Fusable is the hook through which stateful operators will opt out of
// fusion; a processor it rejects gets a stage of its own.
func TestFusableHook(t *testing.T) {
	old := dag.Fusable
	t.Cleanup(func() { dag.Fusable = old })
	dag.Fusable = func(n *dag.Node) bool { return n.Kind == dag.Processor && n.Type != "window" }
	g := mustBuild(t, `
name: t
inputs:
  in: {type: generate}
processors:
  p1: {type: map, from: in}
  w: {type: window, from: p1}
  p3: {type: map, from: w}
  p4: {type: map, from: p3}
outputs:
  out: {type: discard, from: p4}
`)
	checkInvariants(t, g)
	if got, want := stageNames(g), []string{"in", "out", "p1", "p3+p4", "w"}; !slices.Equal(got, want) {
		t.Errorf("stages = %q, want %q", got, want)
	}
}

func TestEdgeKinds(t *testing.T) {
	for _, tc := range []struct {
		name     string
		up, down string // parallelism of p1 and p2
		extra    string // more fields of p2
		want     dag.EdgeKind
		key      string
	}{
		{name: "equal parallelism defaults to forward", up: "1", down: "1", want: dag.Forward},
		{name: "equal parallelism >1 defaults to forward", up: "4", down: "4", want: dag.Forward},
		{name: "fan-in defaults to round_robin", up: "4", down: "1", want: dag.RoundRobin},
		{name: "fan-out defaults to round_robin", up: "1", down: "3", want: dag.RoundRobin},
		{name: "explicit round_robin", up: "2", down: "2", extra: "edge: round_robin", want: dag.RoundRobin},
		{name: "explicit broadcast", up: "1", down: "3", extra: "edge: broadcast", want: dag.Broadcast},
		{name: "explicit forward", up: "2", down: "2", extra: "edge: forward", want: dag.Forward},
		{name: "key_by implies key_hash", up: "1", down: "4", extra: "key_by: user.id", want: dag.KeyHash, key: "user.id"},
		{name: "key_by with edge key_hash", up: "2", down: "2", extra: "{edge: key_hash, key_by: 'lower(k)'}", want: dag.KeyHash, key: "lower(k)"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			extra := ""
			if tc.extra != "" {
				if strings.HasPrefix(tc.extra, "{") {
					extra = "\n    " + strings.ReplaceAll(strings.Trim(tc.extra, "{}"), ", ", "\n    ")
				} else {
					extra = "\n    " + tc.extra
				}
			}
			g := mustBuild(t, `
name: t
inputs:
  in: {type: generate, parallelism: `+tc.up+`}
processors:
  p1: {type: map, from: in, parallelism: `+tc.up+`}
  p2:
    type: map
    from: p1
    parallelism: `+tc.down+extra+`
outputs:
  out: {type: discard, from: p2, parallelism: `+tc.down+`}
`)
			checkInvariants(t, g)
			p2 := g.Node("p2")
			if len(p2.In) != 1 {
				t.Fatalf("p2 has %d incoming edges, want 1", len(p2.In))
			}
			e := p2.In[0]
			if e.From != g.Node("p1") || e.To != p2 {
				t.Errorf("edge is %s→%s, want p1→p2", e.From.Name, e.To.Name)
			}
			if e.Kind != tc.want {
				t.Errorf("edge kind = %s, want %s", e.Kind, tc.want)
			}
			switch {
			case tc.key == "" && e.Key != nil:
				t.Errorf("edge has a key program %q, want none", e.Key.Source())
			case tc.key != "" && e.Key == nil:
				t.Errorf("edge has no key program, want %q", tc.key)
			case tc.key != "" && e.Key.Source() != tc.key:
				t.Errorf("key program source = %q, want %q", e.Key.Source(), tc.key)
			}
		})
	}
}

func TestEdgeKindString(t *testing.T) {
	for k, want := range map[dag.EdgeKind]string{
		dag.Forward: "forward", dag.RoundRobin: "round_robin", dag.KeyHash: "key_hash", dag.Broadcast: "broadcast", dag.EdgeKind(99): "unknown",
	} {
		if got := k.String(); got != want {
			t.Errorf("EdgeKind(%d).String() = %q, want %q", int(k), got, want)
		}
	}
}

// The key program of a key_by edge is compiled and evaluates against an
// event: what the router hashes.
func TestKeyByEvaluates(t *testing.T) {
	g := mustBuild(t, `
name: t
inputs:
  in: {type: generate}
outputs:
  out:
    type: discard
    from: in
    parallelism: 2
    key_by: 'user.id ?? "anon"'
`)
	key := g.Node("out").In[0].Key
	for _, tc := range []struct{ value, want string }{
		{`{"user":{"id":"u_7"}}`, "u_7"},
		{`{"user":{}}`, "anon"},
	} {
		ev := event.Event{Value: []byte(tc.value)}
		var r runtime.Record
		r.Reset(&ev)
		v, err := key.Eval(&r)
		if err != nil {
			t.Fatalf("Eval on %s: %v", tc.value, err)
		}
		if v.Kind != jsondoc.String || string(v.S) != tc.want {
			t.Errorf("key of %s = %s %q, want %q", tc.value, v.Kind, v.S, tc.want)
		}
	}
}

func TestNodeProperties(t *testing.T) {
	g := mustBuild(t, `
name: props
inputs:
  in: {type: generate, parallelism: 2}
processors:
  p: {type: map, from: in, parallelism: 2, on_error: dead_letter, dead_letter: dlq}
  q: {type: filter, from: p, parallelism: 2, on_error: fail}
outputs:
  out: {type: discard, from: q}
  dlq: {type: discard}
`)
	checkInvariants(t, g)
	if g.Name != "props" {
		t.Errorf("Name = %q, want props", g.Name)
	}
	if g.Node("nope") != nil {
		t.Error(`Node("nope") is not nil`)
	}
	for _, tc := range []struct {
		name   string
		kind   dag.Kind
		typ    string
		par    int
		policy dag.Policy
		dl     string
	}{
		{"in", dag.Input, "generate", 2, dag.Drop, ""},
		{"p", dag.Processor, "map", 2, dag.DeadLetter, "dlq"},
		{"q", dag.Processor, "filter", 2, dag.Fail, ""},
		{"out", dag.Output, "discard", 1, dag.Drop, ""},
		{"dlq", dag.Output, "discard", 1, dag.Drop, ""},
	} {
		n := g.Node(tc.name)
		if n == nil {
			t.Fatalf("no node %q", tc.name)
		}
		if n.Kind != tc.kind || n.Type != tc.typ || n.Parallelism != tc.par || n.OnError != tc.policy {
			t.Errorf("%s: kind %s type %s ×%d on_error %s, want %s %s ×%d %s",
				tc.name, n.Kind, n.Type, n.Parallelism, n.OnError, tc.kind, tc.typ, tc.par, tc.policy)
		}
		if n.Config == nil || n.Config.Name != tc.name {
			t.Errorf("%s: Config does not point at the node's config", tc.name)
		}
		switch {
		case tc.dl == "" && n.DeadLetter != nil:
			t.Errorf("%s: DeadLetter = %s, want none", tc.name, n.DeadLetter.Name)
		case tc.dl != "" && (n.DeadLetter == nil || n.DeadLetter.Name != tc.dl):
			t.Errorf("%s: DeadLetter = %v, want %s", tc.name, n.DeadLetter, tc.dl)
		}
	}
	if dl := g.Node("dlq").DeadLetterFrom; len(dl) != 1 || dl[0] != g.Node("p") {
		t.Errorf("dlq.DeadLetterFrom = %v, want [p]", dl)
	}
	if in := g.Node("dlq").In; len(in) != 0 {
		t.Errorf("dlq has %d data edges, want 0", len(in))
	}
	for k, want := range map[dag.Kind]string{dag.Input: "input", dag.Processor: "processor", dag.Output: "output"} {
		if k.String() != want {
			t.Errorf("Kind(%d).String() = %q, want %q", int(k), k.String(), want)
		}
	}
	for p, want := range map[dag.Policy]string{dag.Drop: "drop", dag.DeadLetter: "dead_letter", dag.Fail: "fail"} {
		if p.String() != want {
			t.Errorf("Policy(%d).String() = %q, want %q", int(p), p.String(), want)
		}
	}
}

// wantErr is one expected config error: where, which field, and fragments
// of the message and the hint.
type wantErr struct {
	pos   string // file:line:col
	field string
	msg   string
	hint  string
}

func checkErrors(t *testing.T, err error, want []wantErr) {
	t.Helper()
	if err == nil {
		t.Fatalf("Build succeeded, want %d error(s)", len(want))
	}
	var errs config.Errors
	if !errors.As(err, &errs) {
		t.Fatalf("Build error is %T (%v), want config.Errors", err, err)
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), err)
	}
	for i, w := range want {
		e := errs[i]
		if e.Pos.String() != w.pos || e.Field != w.field || !strings.Contains(e.Msg, w.msg) || !strings.Contains(e.Hint, w.hint) {
			t.Errorf("error %d:\n got  %s | field %q | msg %q | hint %q\n want %s | field %q | msg ~%q | hint ~%q",
				i, e.Pos, e.Field, e.Msg, e.Hint, w.pos, w.field, w.msg, w.hint)
		}
	}
}

func TestBuildErrors(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  string
		want []wantErr
	}{
		{
			name: "unknown from with suggestion",
			src: `name: t
inputs:
  in: {type: generate}
processors:
  parse: {type: map, from: in}
outputs:
  out: {type: discard, from: pasre}
`,
			want: []wantErr{{"test.yaml:7:30", "outputs.out.from", `no node named "pasre"`, `did you mean "parse"?`}},
		},
		{
			name: "unknown from in a list, placed at the list item",
			src: `name: t
inputs:
  in: {type: generate}
outputs:
  out:
    type: discard
    from:
      - in
      - zzzzzz
`,
			want: []wantErr{{"test.yaml:9:9", "outputs.out.from", `no node named "zzzzzz"`, ""}},
		},
		{
			name: "self-reference",
			src: `name: t
inputs:
  in: {type: generate}
processors:
  p: {type: map, from: [in, p]}
outputs:
  out: {type: discard, from: p}
`,
			want: []wantErr{{"test.yaml:5:29", "processors.p.from", "cannot read from itself", ""}},
		},
		{
			name: "reading from an output",
			src: `name: t
inputs:
  in: {type: generate}
processors:
  p: {type: map, from: sink}
outputs:
  sink: {type: discard, from: in}
  out: {type: discard, from: p}
`,
			want: []wantErr{{"test.yaml:5:24", "processors.p.from", `"sink" is an output`, ""}},
		},
		{
			name: "dead_letter naming a processor",
			src: `name: t
inputs:
  in: {type: generate}
processors:
  p: {type: map, from: in}
  q: {type: map, from: p, on_error: dead_letter, dead_letter: p}
outputs:
  out: {type: discard, from: q}
`,
			want: []wantErr{{"test.yaml:6:63", "processors.q.dead_letter", `"p" is a processor`, ""}},
		},
		{
			name: "dead_letter naming a missing output",
			src: `name: t
inputs:
  in: {type: generate}
processors:
  p:
    type: map
    from: in
    on_error: dead_letter
    dead_letter: dlqq
outputs:
  out: {type: discard, from: p}
  dlq: {type: discard}
`,
			want: []wantErr{
				{"test.yaml:9:18", "processors.p.dead_letter", `no output named "dlqq"`, `did you mean "dlq"?`},
				// dlq receives nothing, since the route to it did not resolve.
				{"test.yaml:12:3", "outputs.dlq.from", "output receives nothing", ""},
			},
		},
		{
			name: "output that is its own dead letter",
			src: `name: t
inputs:
  in: {type: generate}
outputs:
  out: {type: discard, from: in, on_error: dead_letter, dead_letter: out}
`,
			want: []wantErr{{"test.yaml:5:70", "outputs.out.dead_letter", "its own dead-letter output", ""}},
		},
		{
			name: "output receiving nothing",
			src: `name: t
inputs:
  in: {type: generate}
outputs:
  out: {type: discard, from: in}
  orphan: {type: discard}
`,
			want: []wantErr{{"test.yaml:6:3", "outputs.orphan.from", "output receives nothing", ""}},
		},
		{
			name: "cycle",
			src: `name: t
inputs:
  in: {type: generate}
processors:
  a: {type: map, from: [in, b]}
  b: {type: map, from: a}
outputs:
  out: {type: discard, from: b}
`,
			want: []wantErr{{"test.yaml:5:3", "processors.a", "cycle through this node", "remove one of the from references"}},
		},
		{
			name: "cycle not fed by any input",
			src: `name: t
inputs:
  in: {type: generate}
processors:
  a: {type: map, from: b}
  b: {type: map, from: a}
outputs:
  out: {type: discard, from: in}
`,
			want: []wantErr{{"test.yaml:5:3", "processors.a", "cycle through this node", ""}},
		},
		{
			name: "forward with unequal parallelism",
			src: `name: t
inputs:
  in: {type: generate}
processors:
  p:
    type: map
    from: in
    parallelism: 2
    edge: forward
outputs:
  out: {type: discard, from: p, parallelism: 2}
`,
			want: []wantErr{{"test.yaml:9:11", "processors.p.edge", `forward edge needs equal parallelism, but "in" has 1 and "p" has 2`, "round_robin"}},
		},
		{
			name: "bad key_by, placed inside the expression",
			src: `name: t
inputs:
  in: {type: generate}
outputs:
  out:
    type: discard
    from: in
    key_by: user.id = 3
`,
			want: []wantErr{{"test.yaml:8:21", "outputs.out.key_by", "unexpected '='", "=="}},
		},
		{
			name: "bad key_by in a quoted scalar",
			src: `name: t
inputs:
  in: {type: generate}
outputs:
  out: {type: discard, from: in, key_by: "2 * \"a\""}
`,
			want: []wantErr{{"test.yaml:5:47", "outputs.out.key_by", "* wants numbers", ""}},
		},
		{
			name: "every problem at once, sorted by position",
			src: `name: t
inputs:
  in: {type: generate}
processors:
  p: {type: map, from: inn}
  q: {type: map, from: q}
outputs:
  out: {type: discard, from: p}
  idle: {type: discard}
`,
			want: []wantErr{
				{"test.yaml:5:24", "processors.p.from", `no node named "inn"`, `did you mean "in"?`},
				{"test.yaml:6:24", "processors.q.from", "cannot read from itself", ""},
				{"test.yaml:9:3", "outputs.idle.from", "output receives nothing", ""},
			},
		},
	} {
		t.Run(tc.name, func(t *testing.T) {
			g, err := build(t, tc.src)
			if g != nil {
				t.Errorf("Build returned a graph with its error")
			}
			checkErrors(t, err, tc.want)
		})
	}
}

// A cycle is reported at a node on the cycle, not at a node that merely
// reads from it.
func TestCycleNamesANodeOnTheCycle(t *testing.T) {
	_, err := build(t, `name: t
inputs:
  in: {type: generate}
processors:
  c: {type: map, from: b}
  a: {type: map, from: [in, b]}
  b: {type: map, from: a}
outputs:
  out: {type: discard, from: c}
`)
	var errs config.Errors
	if !errors.As(err, &errs) || len(errs) != 1 {
		t.Fatalf("Build error = %v, want one config error", err)
	}
	if f := errs[0].Field; f != "processors.a" && f != "processors.b" {
		t.Errorf("cycle reported at %s (%s), want processors.a or processors.b", f, errs[0].Pos)
	}
}

const goldenPipeline = `
name: shop-events
inputs:
  web: {type: generate, parallelism: 2}
processors:
  clean: {type: map, from: web, parallelism: 2, on_error: dead_letter, dead_letter: dlq}
  purchases: {type: filter, from: clean, parallelism: 2}
  enrich: {type: map, from: purchases, parallelism: 2, on_error: fail}
  views: {type: filter, from: clean, parallelism: 2}
  per_user: {type: map, from: enrich, parallelism: 4, key_by: 'lower(user_id)'}
outputs:
  store: {type: file, from: per_user, parallelism: 4, on_error: dead_letter, dead_letter: dlq}
  view_log: {type: stdout, from: views}
  raw: {type: discard, from: web, edge: broadcast}
  dlq: {type: file}
`

func TestRenderGolden(t *testing.T) {
	g := mustBuild(t, goldenPipeline)
	checkInvariants(t, g)
	// The shape the golden files show, stated here too so that a golden
	// rewritten with -update cannot silently accept a wrong plan.
	if got, want := stageNames(g), []string{"clean", "dlq", "per_user", "purchases+enrich", "raw", "store", "view_log", "views", "web"}; !slices.Equal(got, want) {
		t.Fatalf("stages = %q, want %q", got, want)
	}
	for _, tc := range []struct {
		file  string
		write func(*dag.Graph, *bytes.Buffer) error
	}{
		{"graph.txt", func(g *dag.Graph, b *bytes.Buffer) error { return g.WriteText(b) }},
		{"graph.dot", func(g *dag.Graph, b *bytes.Buffer) error { return g.WriteDOT(b) }},
	} {
		t.Run(tc.file, func(t *testing.T) {
			var b bytes.Buffer
			if err := tc.write(g, &b); err != nil {
				t.Fatal(err)
			}
			path := filepath.Join("testdata", tc.file)
			if *update {
				if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(path)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if got := b.String(); got != string(want) {
				t.Errorf("%s differs from %s (run go test -update to accept):\n--- got\n%s\n--- want\n%s", tc.file, path, got, want)
			}
			// Rendering is deterministic.
			var again bytes.Buffer
			if err := tc.write(g, &again); err != nil || again.String() != b.String() {
				t.Errorf("second rendering differs from the first (err %v)", err)
			}
		})
	}
}

func TestWriteDOTQuotes(t *testing.T) {
	g := mustBuild(t, `
name: t
inputs:
  in: {type: generate}
outputs:
  out: {type: discard, from: in, key_by: 'this["a\"b"]'}
`)
	var b bytes.Buffer
	if err := g.WriteDOT(&b); err != nil {
		t.Fatal(err)
	}
	if want := `"in" -> "out" [label="key_hash(this[\"a\\\"b\"])"];`; !strings.Contains(b.String(), want) {
		t.Errorf("DOT does not escape the key expression; want a line containing\n%s\ngot:\n%s", want, b.String())
	}
}

type failWriter struct{}

func (failWriter) Write([]byte) (int, error) { return 0, errors.New("disk full") }

func TestWriteErrors(t *testing.T) {
	g := mustBuild(t, goldenPipeline)
	if err := g.WriteText(failWriter{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("WriteText to a failing writer = %v, want its error", err)
	}
	if err := g.WriteDOT(failWriter{}); err == nil || !strings.Contains(err.Error(), "disk full") {
		t.Errorf("WriteDOT to a failing writer = %v, want its error", err)
	}
}
