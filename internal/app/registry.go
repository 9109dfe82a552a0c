package app

import (
	"errors"
	"fmt"
	"os"
	"slices"
	"sort"
	"strings"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/connector/discard"
	"github.com/weir-dev/weir/internal/connector/file"
	"github.com/weir-dev/weir/internal/connector/generate"
	"github.com/weir-dev/weir/internal/connector/httpin"
	"github.com/weir-dev/weir/internal/connector/kafka"
	"github.com/weir-dev/weir/internal/connector/logio"
	"github.com/weir-dev/weir/internal/connector/stdio"
	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/processor"
	"github.com/weir-dev/weir/internal/processor/dedup"
	"github.com/weir-dev/weir/internal/processor/join"
	"github.com/weir-dev/weir/internal/processor/window"
	"github.com/weir-dev/weir/internal/runtime"
)

// Component describes one component type: its YAML spec and how to build it.
type Component struct {
	Kind    dag.Kind
	Type    string
	Summary string
	// Config returns a pointer to the component's config struct holding its
	// defaults; the YAML is decoded over it.
	Config func() any
	// Build validates a decoded config and compiles it into a constructor
	// for instances.
	Build func(cfg any, n *config.Node) (Builder, config.Errors)
}

// Builder creates one instance of a component. Exactly one field is set.
type Builder struct {
	Input     func(env runtime.Env) (runtime.Input, error)
	Processor func(env runtime.Env) (runtime.Processor, error)
	Operator  func(env runtime.Env) (runtime.Operator, error)
	Output    func(env runtime.Env) (runtime.Output, error)
}

// operatorTypes are the processor types built as runtime operators: stages
// of their own, never fused.
var operatorTypes = map[string]bool{"window": true, "join": true}

func init() {
	dag.Fusable = func(n *dag.Node) bool { return n.Kind == dag.Processor && !operatorTypes[n.Type] }
}

// Components lists every component weir knows, by kind and type.
func Components() []Component {
	return []Component{
		{Kind: dag.Input, Type: "generate", Summary: "deterministic synthetic events: web analytics or the Nexmark benchmark stream",
			Config: func() any { c := generate.DefaultConfig(); return &c },
			Build: func(cfg any, n *config.Node) (Builder, config.Errors) {
				c := *cfg.(*generate.Config)
				return Builder{Input: func(env runtime.Env) (runtime.Input, error) { return generate.New(c, env) }}, validate(c.Validate(), n)
			}},
		{Kind: dag.Input, Type: "file", Summary: "NDJSON lines from files, optionally gzip, optionally followed",
			Config: func() any { c := file.DefaultInputConfig(); return &c },
			Build: func(cfg any, n *config.Node) (Builder, config.Errors) {
				c := *cfg.(*file.InputConfig)
				errs := validate(c.Validate(), n)
				if n.Parallelism > 1 {
					errs.Add(&config.Error{Pos: fieldPos(n, "parallelism"), Field: field(n, "parallelism"), Msg: "the file input reads its files in order with one instance", Expected: "1"})
				}
				return Builder{Input: func(env runtime.Env) (runtime.Input, error) { return file.NewInput(c, env) }}, errs
			}},
		{Kind: dag.Input, Type: "stdin", Summary: "lines from standard input",
			Config: func() any { c := stdio.DefaultStdinConfig(); return &c },
			Build: func(cfg any, n *config.Node) (Builder, config.Errors) {
				c := *cfg.(*stdio.StdinConfig)
				errs := validate(c.Validate(), n)
				if n.Parallelism > 1 {
					errs.Add(&config.Error{Pos: fieldPos(n, "parallelism"), Field: field(n, "parallelism"), Msg: "there is one standard input", Expected: "1"})
				}
				return Builder{Input: func(env runtime.Env) (runtime.Input, error) { return stdio.NewStdin(c, env, os.Stdin) }}, errs
			}},
		{Kind: dag.Input, Type: "log", Summary: "records of weir's embedded durable log, replayed from committed or checkpointed positions",
			Config: func() any { c := logio.DefaultInputConfig(); return &c },
			Build: func(cfg any, n *config.Node) (Builder, config.Errors) {
				c := *cfg.(*logio.InputConfig)
				return Builder{Input: func(env runtime.Env) (runtime.Input, error) { return logio.NewInput(c, env) }}, validate(c.Validate(), n)
			}},
		{Kind: dag.Input, Type: "kafka", Summary: "records of Kafka topics, as a consumer-group member; offsets committed once written",
			Config: func() any { c := kafka.DefaultInputConfig(); return &c },
			Build: func(cfg any, n *config.Node) (Builder, config.Errors) {
				c := *cfg.(*kafka.InputConfig)
				newInput := kafka.NewInputs(c)
				return Builder{Input: func(env runtime.Env) (runtime.Input, error) { return newInput(env) }}, validate(c.Validate(), n)
			}},
		{Kind: dag.Input, Type: "http", Summary: "event collector: SDK events over HTTP, durable in a local log (or a Kafka topic) before they are acknowledged",
			Config: func() any { c := httpin.DefaultConfig(); return &c },
			Build: func(cfg any, n *config.Node) (Builder, config.Errors) {
				c := *cfg.(*httpin.Config)
				node := httpin.NewNode(c)
				return Builder{Input: func(env runtime.Env) (runtime.Input, error) { return node.NewInput(env) }}, validate(c.Validate(), n)
			}},
		{Kind: dag.Processor, Type: "filter", Summary: "keep the events for which an expression is true",
			Config: func() any { return &processor.FilterConfig{} },
			Build: func(cfg any, n *config.Node) (Builder, config.Errors) {
				f, errs := processor.CompileFilter(*cfg.(*processor.FilterConfig), field(n, ""))
				if f == nil {
					return Builder{}, errs
				}
				return Builder{Processor: func(runtime.Env) (runtime.Processor, error) { return f.New(), nil }}, errs
			}},
		{Kind: dag.Processor, Type: "map", Summary: "set, rename and delete fields; compute new ones",
			Config: func() any { return &processor.MapConfig{} },
			Build: func(cfg any, n *config.Node) (Builder, config.Errors) {
				m, errs := processor.CompileMap(*cfg.(*processor.MapConfig), field(n, ""), func(k string) config.Pos { return fieldPos(n, k) })
				return Builder{Processor: func(runtime.Env) (runtime.Processor, error) { return m.New(), nil }}, errs
			}},
		{Kind: dag.Processor, Type: "dedup", Summary: "drop events whose id was seen within a ttl, per tenant",
			Config: func() any { c := dedup.DefaultConfig(); return &c },
			Build: func(cfg any, n *config.Node) (Builder, config.Errors) {
				d, errs := dedup.Compile(*cfg.(*dedup.Config), field(n, ""), func(k string) config.Pos { return fieldPos(n, k) })
				if d == nil {
					return Builder{}, errs
				}
				return Builder{Processor: d.New}, errs
			}},
		{Kind: dag.Processor, Type: "window", Summary: "keyed tumbling, sliding and session windows with aggregates, over event or processing time",
			Config: func() any { c := window.DefaultConfig(); return &c },
			Build: func(cfg any, n *config.Node) (Builder, config.Errors) {
				w, errs := window.Compile(*cfg.(*window.Config), field(n, ""), func(k string) config.Pos { return fieldPos(n, k) })
				if n.Parallelism > 1 && n.KeyBy == nil {
					errs.Add(&config.Error{Pos: fieldPos(n, "parallelism"), Field: field(n, "parallelism"), Msg: "a window without key_by aggregates all events in one instance",
						Expected: "parallelism 1, or a key_by", Hint: "add key_by: <expression> to split the windows by key over the instances"})
				}
				if w == nil || len(errs) > 0 {
					return Builder{}, errs
				}
				keyed := n.KeyBy != nil
				return Builder{Operator: func(env runtime.Env) (runtime.Operator, error) { return w.New(env, keyed) }}, nil
			}},
		{Kind: dag.Processor, Type: "join", Summary: "pair the events of two sides by key: in tumbling windows, within a time interval, or unbounded",
			Config: func() any { c := join.DefaultConfig(); return &c },
			Build: func(cfg any, n *config.Node) (Builder, config.Errors) {
				j, errs := join.Compile(*cfg.(*join.Config), field(n, ""), func(k string) config.Pos { return fieldPos(n, k) })
				if n.Parallelism > 1 && n.KeyBy == nil {
					errs.Add(&config.Error{Pos: fieldPos(n, "parallelism"), Field: field(n, "parallelism"), Msg: "a join without key_by pairs all events in one instance",
						Expected: "parallelism 1, or a key_by", Hint: "add key_by: <expression> giving the join key of both sides"})
				}
				if j == nil || len(errs) > 0 {
					return Builder{}, errs
				}
				keyed := n.KeyBy != nil
				return Builder{Operator: func(env runtime.Env) (runtime.Operator, error) { return j.New(env, keyed) }}, nil
			}},
		{Kind: dag.Output, Type: "kafka", Summary: "records to a Kafka topic; acknowledged once the brokers (all in-sync replicas) have them",
			Config: func() any { c := kafka.DefaultOutputConfig(); return &c },
			Build: func(cfg any, n *config.Node) (Builder, config.Errors) {
				c := *cfg.(*kafka.OutputConfig)
				errs := validate(c.Validate(), n)
				sp, cerrs := kafka.CompileOutput(c, field(n, ""))
				errs = append(errs, cerrs...)
				if sp == nil {
					return Builder{}, errs
				}
				return Builder{Output: func(env runtime.Env) (runtime.Output, error) { return sp.New(env) }}, errs
			}},
		{Kind: dag.Output, Type: "stdout", Summary: "NDJSON to standard output",
			Config: func() any { c := stdio.DefaultStdoutConfig(); return &c },
			Build: func(cfg any, n *config.Node) (Builder, config.Errors) {
				c := *cfg.(*stdio.StdoutConfig)
				return Builder{Output: func(env runtime.Env) (runtime.Output, error) { return stdio.NewStdout(c, env, os.Stdout) }}, validate(c.Validate(), n)
			}},
		{Kind: dag.Output, Type: "file", Summary: "NDJSON files with rotation by size and time and atomic rename",
			Config: func() any { c := file.DefaultOutputConfig(); return &c },
			Build: func(cfg any, n *config.Node) (Builder, config.Errors) {
				c := *cfg.(*file.OutputConfig)
				return Builder{Output: func(env runtime.Env) (runtime.Output, error) { return file.NewOutput(c, env) }}, validate(c.Validate(), n)
			}},
		{Kind: dag.Output, Type: "log", Summary: "append to weir's embedded durable log; acknowledged once durable",
			Config: func() any { c := logio.DefaultOutputConfig(); return &c },
			Build: func(cfg any, n *config.Node) (Builder, config.Errors) {
				c := *cfg.(*logio.OutputConfig)
				return Builder{Output: func(env runtime.Env) (runtime.Output, error) { return logio.NewOutput(c, env) }}, validate(c.Validate(), n)
			}},
		{Kind: dag.Output, Type: "discard", Summary: "count events and throw them away",
			Config: func() any { c := discard.DefaultConfig(); return &c },
			Build: func(cfg any, n *config.Node) (Builder, config.Errors) {
				c := *cfg.(*discard.Config)
				return Builder{Output: func(env runtime.Env) (runtime.Output, error) { return discard.New(c, env) }}, validate(c.Validate(), n)
			}},
	}
}

func lookup(kind dag.Kind, typ string) (Component, []string) {
	var names []string
	for _, c := range Components() {
		if c.Kind != kind {
			continue
		}
		if c.Type == typ {
			return c, nil
		}
		names = append(names, c.Type)
	}
	sort.Strings(names)
	return Component{}, slices.Compact(names)
}

func field(n *config.Node, f string) string {
	if f == "" {
		return n.Path()
	}
	return n.Path() + "." + f
}

func fieldPos(n *config.Node, f string) config.Pos {
	if f == "" {
		return n.Pos
	}
	return n.FieldPos(f)
}

// validate turns the FieldErrors of a component's Validate into positioned
// config errors.
func validate(err error, n *config.Node) config.Errors {
	if err == nil {
		return nil
	}
	var errs config.Errors
	var list []error
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		list = j.Unwrap()
	} else {
		list = []error{err}
	}
	for _, e := range list {
		var fe *config.FieldError
		if errors.As(e, &fe) {
			errs.Add(&config.Error{Pos: fieldPos(n, fe.Field), Field: field(n, fe.Field), Msg: fe.Msg, Expected: fe.Expected, Hint: fe.Hint})
			continue
		}
		errs.Add(&config.Error{Pos: n.Pos, Field: field(n, ""), Msg: e.Error()})
	}
	return errs
}

func unknownType(n *config.Node, kind dag.Kind, names []string) *config.Error {
	return &config.Error{Pos: fieldPos(n, "type"), Field: field(n, "type"),
		Msg:      fmt.Sprintf("unknown %s type %q", kind, n.Type),
		Expected: "one of " + strings.Join(names, ", "), Hint: hintFor(n.Type, names)}
}

func hintFor(typ string, names []string) string {
	if c, ok := config.Closest(typ, names); ok {
		return fmt.Sprintf("did you mean %q?", c)
	}
	return ""
}

func kindOf(k config.NodeKind) dag.Kind {
	switch k {
	case config.InputNode:
		return dag.Input
	case config.ProcessorNode:
		return dag.Processor
	default:
		return dag.Output
	}
}
