package dag

import (
	"fmt"
	"io"
	"strings"
)

// WriteText writes a human-readable description of the graph: its stages in
// execution order, the nodes in each, and every edge with its distribution.
func (g *Graph) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "pipeline %s: %d nodes in %d stages\n", g.Name, len(g.Nodes), len(g.Stages))
	for _, s := range g.Stages {
		label := "stage"
		if len(s.Nodes) > 1 {
			label = "fused stage"
		}
		fmt.Fprintf(&b, "\n%s %d  ×%d\n", label, s.ID, s.Parallelism)
		for _, n := range s.Nodes {
			fmt.Fprintf(&b, "  %-10s %s (%s)", n.Kind, n.Name, n.Type)
			if n.OnError != Drop || n.Kind != Output {
				fmt.Fprintf(&b, "  on_error=%s", n.OnError)
				if n.DeadLetter != nil {
					fmt.Fprintf(&b, "→%s", n.DeadLetter.Name)
				}
			}
			b.WriteByte('\n')
			for _, e := range n.Out {
				fmt.Fprintf(&b, "    └─ %s", e.Kind)
				if e.Key != nil {
					fmt.Fprintf(&b, "(%s)", e.Key.Source())
				}
				fmt.Fprintf(&b, " → %s\n", e.To.Name)
			}
		}
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteDOT writes the graph in Graphviz DOT. Fused stages are drawn as
// clusters; dead-letter routes are dashed.
func (g *Graph) WriteDOT(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "digraph %s {\n  rankdir=LR;\n  node [shape=box, style=rounded, fontname=\"Helvetica\"];\n", quote(g.Name))
	for _, s := range g.Stages {
		if len(s.Nodes) > 1 {
			fmt.Fprintf(&b, "  subgraph cluster_%d {\n    label=%s;\n    style=dashed;\n", s.ID, quote(fmt.Sprintf("fused stage %d ×%d", s.ID, s.Parallelism)))
			for _, n := range s.Nodes {
				fmt.Fprintf(&b, "    %s [label=%s];\n", quote(n.Name), quote(nodeLabel(n)))
			}
			b.WriteString("  }\n")
			continue
		}
		n := s.Nodes[0]
		shape := "box"
		switch n.Kind {
		case Input:
			shape = "invhouse"
		case Output:
			shape = "house"
		}
		fmt.Fprintf(&b, "  %s [label=%s, shape=%s];\n", quote(n.Name), quote(nodeLabel(n)), shape)
	}
	for _, n := range g.Nodes {
		for _, e := range n.Out {
			label := e.Kind.String()
			if e.Key != nil {
				label += "(" + e.Key.Source() + ")"
			}
			fmt.Fprintf(&b, "  %s -> %s [label=%s];\n", quote(e.From.Name), quote(e.To.Name), quote(label))
		}
		if n.DeadLetter != nil {
			fmt.Fprintf(&b, "  %s -> %s [style=dashed, label=\"dead letter\"];\n", quote(n.Name), quote(n.DeadLetter.Name))
		}
	}
	b.WriteString("}\n")
	_, err := io.WriteString(w, b.String())
	return err
}

func nodeLabel(n *Node) string {
	l := fmt.Sprintf("%s\n%s", n.Name, n.Type)
	if n.Parallelism > 1 {
		l += fmt.Sprintf(" ×%d", n.Parallelism)
	}
	return l
}

func quote(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\n`).Replace(s) + `"`
}
