package testkit

import (
	"testing"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/dag"
)

// Graph parses a pipeline's YAML and builds its graph, failing t on an
// error.
func Graph(t testing.TB, yaml string) *dag.Graph {
	t.Helper()
	p, err := config.Parse("p.yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	g, err := dag.Build(p)
	if err != nil {
		t.Fatal(err)
	}
	return g
}
