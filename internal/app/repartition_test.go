package app

import (
	"fmt"
	"slices"
	"testing"
)

// TestRepartitionRewrite: a window after a kafka input whose key_by is not
// the record key reads through a repartition topic; one keyed by key(),
// or after another input, is left as written.
func TestRepartitionRewrite(t *testing.T) {
	const tmpl = `
name: rp
state: {dir: /nonexistent}
inputs:
  in: %s
processors:
  counts:
    type: window
    from: in
    key_by: %s
    window: tumbling
    size: 10s
    aggregates: {n: count()}
outputs:
  out:
    type: kafka
    from: counts
    brokers: [localhost:9092]
    topic: counts
    guarantee: exactly_once
`
	const kafkaIn = `{type: kafka, brokers: ["localhost:9092"], topics: [events], group: g1}`
	names := func(t *testing.T, in, keyBy string) []string {
		t.Helper()
		l, err := LoadBytes("rp.yaml", fmt.Appendf(nil, tmpl, in, keyBy))
		if err != nil {
			t.Fatal(err)
		}
		var ns []string
		for _, n := range l.Graph.Nodes {
			ns = append(ns, n.Name)
		}
		slices.Sort(ns)
		return ns
	}
	if got, want := names(t, kafkaIn, "user"), []string{"counts", "counts.repartition", "counts.repartitioned", "in", "out"}; !slices.Equal(got, want) {
		t.Errorf("key_by user after kafka: nodes %v, want %v", got, want)
	}
	l, err := LoadBytes("rp.yaml", fmt.Appendf(nil, tmpl, kafkaIn, "user"))
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range l.Graph.Nodes {
		switch n.Name {
		case "counts":
			if len(n.In) != 1 || n.In[0].From.Name != "counts.repartitioned" || n.Config.KeyBy.Src != "key()" {
				t.Errorf("counts reads %v keyed by %q, want counts.repartitioned by key()", n.In[0].From.Name, n.Config.KeyBy.Src)
			}
		case "counts.repartition":
			if len(n.In) != 1 || n.In[0].From.Name != "in" {
				t.Errorf("the repartition output reads %v, want in", n.In)
			}
		}
	}
	if got, want := names(t, kafkaIn, "key()"), []string{"counts", "in", "out"}; !slices.Equal(got, want) {
		t.Errorf("key_by key() after kafka: nodes %v, want %v", got, want)
	}
	if got, want := names(t, `{type: generate, count: 10}`, "user"), []string{"counts", "in", "out"}; !slices.Equal(got, want) {
		t.Errorf("key_by user after generate: nodes %v, want %v", got, want)
	}
}
