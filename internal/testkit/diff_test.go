package testkit

import (
	"slices"
	"testing"
)

func TestDiffLines(t *testing.T) {
	missing, extra := DiffLines([]string{"a", "b", "b", "c"}, []string{"b", "c", "c", "d"})
	slices.Sort(missing)
	if !slices.Equal(missing, []string{"a", "b"}) || !slices.Equal(extra, []string{"c", "d"}) {
		t.Fatalf("missing %q extra %q, want [a b] and [c d]", missing, extra)
	}
	if m, e := DiffLines([]string{"x", "x"}, []string{"x", "x"}); m != nil || e != nil {
		t.Fatalf("equal multisets: missing %q extra %q", m, e)
	}
}
