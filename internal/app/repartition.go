package app

import (
	"fmt"
	"slices"
	"strings"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/connector/kafka"
	"github.com/weir-dev/weir/internal/runtime"
)

// Repartition topics. When weir processes share the partitions of a Kafka
// topic (a consumer group), a stateful operator (window, join) must see
// every event of a key in one process. Its key_by decides the key; unless
// it is key(), the record key the topic was partitioned by, the events of
// one key arrive in every process. So the pipeline is rewritten, before
// its graph is built, to send them through a topic partitioned by that
// key, as Kafka Streams does:
//
//	upstream → X (key_by: E)
//
// becomes
//
//	upstream → X.repartition (kafka output: topic <group>-X-repartition,
//	                          key E, the guarantee of the pipeline's kafka
//	                          outputs downstream of X)
//	X.repartitioned (kafka input of that topic, group <group>-X,
//	                 partitions as many as the input topic's)
//	         → X (key_by: key())
//
// X's state then follows the partitions of the repartition topic (its
// changelog: internal/runtime/changelog.go). It applies when X's events
// all come from one kafka input.

// repartitionSuffixes name the derived nodes after the operator's name
// (a dot cannot appear in a name written in the file).
const (
	repartitionOut = ".repartition"
	repartitionIn  = ".repartitioned"
)

// repartition rewrites p as above; cfgs are the decoded configs by node.
func repartition(p *config.Pipeline, cfgs map[string]any, builders map[string]Builder) config.Errors {
	byName := map[string]*config.Node{}
	for _, n := range p.Nodes {
		byName[n.Name] = n
	}
	var errs config.Errors
	var ins, outs []*config.Node
	for _, x := range p.Nodes {
		if x.Kind != config.ProcessorNode || !operatorTypes[x.Type] || x.KeyBy == nil || isRecordKey(x.KeyBy.Src) {
			continue
		}
		srcs := upstreamInputs(byName, x)
		if len(srcs) != 1 || srcs[0].Type != "kafka" {
			continue
		}
		src := srcs[0]
		icfg, ok := cfgs[src.Name].(*kafka.InputConfig)
		if !ok {
			continue
		}
		topic := fmt.Sprintf("%s-%s-repartition", icfg.Group, x.Name)
		ocfg := kafka.DefaultOutputConfig()
		ocfg.Brokers, ocfg.Topic, ocfg.ClientID = icfg.Brokers, topic, icfg.ClientID
		key := *x.KeyBy
		ocfg.Key = &key
		ocfg.Guarantee = downstreamGuarantee(p, cfgs, x)
		sp, cerrs := kafka.CompileOutput(ocfg, field(x, "key_by"))
		errs = append(errs, cerrs...)
		if sp == nil {
			continue
		}
		out := &config.Node{Name: x.Name + repartitionOut, Kind: config.OutputNode, Type: "kafka", Pos: x.KeyBy.Pos,
			From: x.From, FromPos: x.FromPos, Parallelism: 1, OnError: x.OnError, DeadLetter: x.DeadLetter, DeadLetterPos: x.DeadLetterPos}
		rcfg := *icfg
		rcfg.Topics = []string{topic}
		rcfg.Group = icfg.Group + "-" + x.Name
		rcfg.Start, rcfg.StartTime = "earliest", ""
		rcfg.PartitionsOf = icfg.Topics[0]
		if rcfg.InstanceID != "" {
			rcfg.InstanceID += "-" + x.Name
		}
		in := &config.Node{Name: x.Name + repartitionIn, Kind: config.InputNode, Type: "kafka", Pos: x.KeyBy.Pos,
			Parallelism: src.Parallelism, OnError: config.OnErrorDrop, EventTime: src.EventTime}
		builders[out.Name] = Builder{Output: func(env runtime.Env) (runtime.Output, error) { return sp.New(env) }}
		newInput := kafka.NewInputs(rcfg)
		builders[in.Name] = Builder{Input: func(env runtime.Env) (runtime.Input, error) { return newInput(env) }}
		x.From, x.FromPos = []string{in.Name}, []config.Pos{x.KeyBy.Pos}
		x.KeyBy = &config.Expr{Src: "key()", Pos: x.KeyBy.Pos}
		ins, outs = append(ins, in), append(outs, out)
	}
	if len(ins) > 0 {
		// Inputs first, outputs last, as Parse orders them.
		first := slices.IndexFunc(p.Nodes, func(n *config.Node) bool { return n.Kind != config.InputNode })
		if first < 0 {
			first = len(p.Nodes)
		}
		p.Nodes = slices.Insert(p.Nodes, first, ins...)
		p.Nodes = append(p.Nodes, outs...)
	}
	return errs
}

// isRecordKey reports whether a key_by expression is the event's key.
func isRecordKey(src string) bool {
	return strings.ReplaceAll(src, " ", "") == "key()"
}

// upstreamInputs returns the inputs x's events come from.
func upstreamInputs(byName map[string]*config.Node, x *config.Node) []*config.Node {
	var out []*config.Node
	seen := map[string]bool{}
	var walk func(n *config.Node)
	walk = func(n *config.Node) {
		if n == nil || seen[n.Name] {
			return
		}
		seen[n.Name] = true
		if n.Kind == config.InputNode {
			out = append(out, n)
			return
		}
		for _, f := range n.From {
			walk(byName[f])
		}
	}
	walk(x)
	return out
}

// downstreamGuarantee is exactly_once when a kafka output downstream of x
// writes exactly once (the repartition topic must then too), else
// at_least_once.
func downstreamGuarantee(p *config.Pipeline, cfgs map[string]any, x *config.Node) string {
	below := map[string]bool{x.Name: true}
	for changed := true; changed; {
		changed = false
		for _, n := range p.Nodes {
			if below[n.Name] {
				continue
			}
			for _, f := range n.From {
				if below[f] {
					below[n.Name], changed = true, true
					break
				}
			}
		}
	}
	for _, n := range p.Nodes {
		if c, ok := cfgs[n.Name].(*kafka.OutputConfig); ok && below[n.Name] && c.Guarantee == kafka.ExactlyOnce {
			return kafka.ExactlyOnce
		}
	}
	return kafka.AtLeastOnce
}
