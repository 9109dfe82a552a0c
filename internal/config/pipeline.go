package config

import (
	"fmt"
	"net"
	"reflect"
	"strconv"
	"time"

	"go.yaml.in/yaml/v3"
)

// Pipeline is a parsed and checked pipeline file.
type Pipeline struct {
	File    string // the file name given to Load or Parse, used in positions
	Name    string
	Control Control
	Logging Logging
	Status  string // auto, on or off: the live status line on a terminal
	Runtime Runtime
	State   State
	// Nodes holds the inputs, then the processors, then the outputs, each
	// in file order.
	Nodes []*Node
}

// Node returns the node with the given name, or nil.
func (p *Pipeline) Node(name string) *Node {
	for _, n := range p.Nodes {
		if n.Name == name {
			return n
		}
	}
	return nil
}

// Control configures the HTTP control plane.
type Control struct {
	Address string `yaml:"address" default:"127.0.0.1:9464" doc:"host:port of the HTTP control plane (/metrics); empty turns it off"`
}

// Validate checks that Address is empty or a host:port.
func (c Control) Validate() error {
	if c.Address == "" {
		return nil
	}
	_, port, err := net.SplitHostPort(c.Address)
	if err == nil {
		if p, perr := strconv.ParseUint(port, 10, 16); perr != nil || (p == 0 && port != "0") {
			err = fmt.Errorf("bad port %q", port)
		}
	}
	if err != nil {
		return &FieldError{Field: "address", Msg: fmt.Sprintf("invalid address %q", c.Address),
			Expected: "host:port, such as 127.0.0.1:9464 or :9464",
			Hint:     `write address: "" to turn the control plane off`}
	}
	return nil
}

// Logging configures weir's own logs.
type Logging struct {
	Level  string `yaml:"level" enum:"debug|info|warn|error" default:"info" doc:"least severe level that is logged"`
	Format string `yaml:"format" enum:"text|json" default:"text" doc:"log line format"`
}

// Runtime holds the engine's batching, queueing and shutdown settings. The
// zero value is not usable: start from DefaultRuntime.
type Runtime struct {
	BatchSize       int           `yaml:"batch_size" default:"256" doc:"events per batch"`
	Linger          time.Duration `yaml:"linger" default:"20ms" doc:"longest time an input holds a partial batch"`
	QueueEvents     int           `yaml:"queue_events" default:"8192" doc:"bound of each queue between stages, in events"`
	QueueBytes      ByteSize      `yaml:"queue_bytes" default:"16MiB" doc:"bound of each queue between stages, in bytes"`
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout" default:"30s" doc:"how long a stop waits for events in flight"`
	GCPercent       int           `yaml:"gc_percent" default:"300" doc:"Go garbage collector target (GOGC): heap growth over the live heap, in percent, before a collection. weir's live heap is small and bounded (queues are bounded), so collecting less often buys throughput for little memory. The GOGC environment variable, when set, wins."`
	ExtraProcs      int           `yaml:"extra_procs" default:"1" doc:"Go processors (GOMAXPROCS) beyond the CPUs the process may use. A goroutine blocked in a disk system call (the log's fsync, a file output's write, the state store) keeps its processor until Go's monitor thread takes it back, which can be late; with one extra, every core keeps running pipeline work meanwhile (the collector benchmark gains about a fifth). 0 leaves Go's default, the CPUs. The GOMAXPROCS environment variable, when set, wins."`
	MemoryLimit     ByteSize      `yaml:"memory_limit" default:"0" doc:"soft limit on the process's memory: near it the garbage collector runs as often as needed to stay under it, whatever gc_percent says. With state.dir, the state store's block cache and memtables (allocated outside the Go heap) come off it and Go gets the rest (its GOMEMLIMIT). Set it to what the process may use (say 80% of a container's limit); 0 means no limit. The GOMEMLIMIT environment variable, when set, wins (and is Go's alone)."`
}

// Validate checks that every setting is positive.
func (r Runtime) Validate() error {
	def := DefaultRuntime()
	var errs Errors
	check := func(bad bool, field, got, what, dflt string) {
		if bad {
			errs.Add(&Error{Field: field, Msg: fmt.Sprintf("%s is %s", field, got),
				Expected: what + " greater than zero", Hint: "leave it out for the default, " + dflt})
		}
	}
	check(r.BatchSize <= 0, "batch_size", strconv.Itoa(r.BatchSize), "an integer", strconv.Itoa(def.BatchSize))
	check(r.Linger <= 0, "linger", r.Linger.String(), "a duration", def.Linger.String())
	check(r.QueueEvents <= 0, "queue_events", strconv.Itoa(r.QueueEvents), "an integer", strconv.Itoa(def.QueueEvents))
	check(r.QueueBytes <= 0, "queue_bytes", r.QueueBytes.String(), "a byte size", def.QueueBytes.String())
	check(r.ShutdownTimeout <= 0, "shutdown_timeout", r.ShutdownTimeout.String(), "a duration", def.ShutdownTimeout.String())
	check(r.GCPercent <= 0, "gc_percent", strconv.Itoa(r.GCPercent), "an integer", strconv.Itoa(def.GCPercent))
	if r.ExtraProcs < 0 || r.ExtraProcs > 64 {
		errs.Add(&Error{Field: "extra_procs", Msg: fmt.Sprintf("extra_procs is %d", r.ExtraProcs),
			Expected: "an integer from 0 to 64", Hint: "leave it out for the default, " + strconv.Itoa(def.ExtraProcs)})
	}
	if r.MemoryLimit < 0 {
		errs.Add(&Error{Field: "memory_limit", Msg: "memory_limit is negative", Expected: "a byte size such as 512MiB, or 0 for no limit"})
	}
	return errs.Err()
}

// NodeKind says which section of the file declares a node.
type NodeKind int

// Node kinds.
const (
	InputNode NodeKind = iota
	ProcessorNode
	OutputNode
)

// String returns "input", "processor" or "output".
func (k NodeKind) String() string {
	switch k {
	case InputNode:
		return "input"
	case ProcessorNode:
		return "processor"
	case OutputNode:
		return "output"
	}
	return "NodeKind(" + strconv.Itoa(int(k)) + ")"
}

// section is the top-level key that holds nodes of kind k.
func (k NodeKind) section() string { return k.String() + "s" }

func (k NodeKind) article() string {
	if k == ProcessorNode {
		return "a processor"
	}
	return "an " + k.String()
}

// Values of Node.Edge.
const (
	EdgeForward    = "forward"
	EdgeRoundRobin = "round_robin"
	EdgeKeyHash    = "key_hash"
	EdgeBroadcast  = "broadcast"
)

// Values of Node.OnError.
const (
	OnErrorDrop       = "drop"
	OnErrorDeadLetter = "dead_letter"
	OnErrorFail       = "fail"
)

// Node is one input, processor or output of a pipeline: the fields common to
// all nodes, checked, and the node's mapping (Spec) for the component to
// decode its own fields from with Decode.
type Node struct {
	Name string
	Kind NodeKind
	Type string // component type
	Pos  Pos    // of the node's name

	From    []string // upstream node names; empty for inputs
	FromPos []Pos    // position of each name in From

	Parallelism int    // at least 1
	Edge        string // one of the Edge constants, or "" to let the DAG choose; key_by implies EdgeKeyHash
	KeyBy       *Expr  // nil unless set

	OnError       string // one of the OnError constants
	DeadLetter    string // output name, set iff OnError is OnErrorDeadLetter
	DeadLetterPos Pos

	// EventTime says how an input's events get their event time and
	// watermarks; nil when the node does not set event_time (inputs only).
	EventTime *EventTime

	Spec *yaml.Node // the node's mapping, as written (aliases resolved)

	src *source
}

// nodeCommon declares the fields every node has.
type nodeCommon struct {
	Type        string    `yaml:"type" required:"true" doc:"component type, such as generate, filter or stdout"`
	From        []string  `yaml:"from,scalar_or_list" doc:"upstream node name, or a list of them; processors and outputs only"`
	Parallelism int       `yaml:"parallelism" default:"1" doc:"number of instances of this node"`
	Edge        string    `yaml:"edge" enum:"forward|round_robin|key_hash|broadcast" doc:"how events from upstream reach the instances; chosen by the engine when absent"`
	KeyBy       *Expr     `yaml:"key_by" doc:"expression whose value picks the instance for each event; implies edge key_hash"`
	OnError     string    `yaml:"on_error" enum:"drop|dead_letter|fail" default:"drop" doc:"what happens to an event this node fails on"`
	DeadLetter  string    `yaml:"dead_letter" doc:"output that receives failed events; required when on_error is dead_letter"`
	EventTime   EventTime `yaml:"event_time" doc:"inputs only: where the event time of each event comes from and how watermarks follow it"`
}

// EventTime configures event time and watermarks for one input. The
// watermark of each input partition trails the highest event time seen in it
// by max_out_of_orderness; a window closes when the watermarks of every
// input partition feeding it have passed its end.
type EventTime struct {
	Expr              *Expr         `yaml:"expr" doc:"expression for the event time of each event: a number (in unit) or an RFC 3339 string; absent: the time the input gives each event (the record timestamp of a log, the ts of generated events, the receive time of HTTP events)"`
	Unit              string        `yaml:"unit" enum:"ms|s|us|ns" default:"ms" doc:"unit of a numeric event time"`
	MaxOutOfOrderness time.Duration `yaml:"max_out_of_orderness" default:"0s" doc:"how far behind the highest event time seen an event may still arrive without being late"`
	IdleTimeout       time.Duration `yaml:"idle_timeout" default:"0s" doc:"a partition without events for this long stops holding the watermark back (0: never)"`
}

// fileSpec declares the top level of a pipeline file.
type fileSpec struct {
	Name       string     `yaml:"name" required:"true" doc:"pipeline name: lower-case letters, digits, _ and -"`
	Control    Control    `yaml:"control" doc:"HTTP control plane"`
	Logging    Logging    `yaml:"logging" doc:"weir's own logs"`
	Status     string     `yaml:"status" enum:"auto|on|off" default:"auto" doc:"live status line: auto shows it on a terminal"`
	Runtime    Runtime    `yaml:"runtime" doc:"batching, queueing and shutdown"`
	State      State      `yaml:"state" doc:"embedded state store and checkpoints"`
	Inputs     *yaml.Node `yaml:"inputs" required:"true" doctype:"map of node" doc:"nodes that read events from outside the pipeline"`
	Processors *yaml.Node `yaml:"processors" doctype:"map of node" doc:"nodes that transform events"`
	Outputs    *yaml.Node `yaml:"outputs" required:"true" doctype:"map of node" doc:"nodes that write events out of the pipeline"`
}

// State configures the embedded state store and checkpoints.
type State struct {
	Dir                string        `yaml:"dir" default:"" doc:"directory of the embedded state store (Pebble); empty turns checkpoints off. With it, input positions, operator state (dedup) and output files are checkpointed together, and a restart resumes from the last checkpoint."`
	CheckpointInterval time.Duration `yaml:"checkpoint_interval" default:"10s" doc:"how often a checkpoint is taken (and once at a clean stop)"`
	BlockCache         ByteSize      `yaml:"block_cache" default:"64MiB" doc:"memory for the state store's block cache (recently read blocks of its tables): reads of state that operators keep beyond their own caches (window cache_bytes) hit it before the disk"`
}

// Validate checks the interval.
func (s State) Validate() error {
	if s.BlockCache < 0 {
		return &Error{Field: "block_cache", Msg: "block_cache is negative", Expected: "a byte size such as 64MiB", Hint: "leave it out for the default, 64MiB"}
	}
	if s.CheckpointInterval <= 0 {
		return &Error{Field: "checkpoint_interval", Msg: "checkpoint_interval is " + s.CheckpointInterval.String(), Expected: "a duration greater than zero", Hint: "leave it out for the default, 10s"}
	}
	return nil
}

// DefaultRuntime returns the runtime settings of a file that sets none.
func DefaultRuntime() Runtime {
	return Runtime{
		BatchSize:       256,
		Linger:          20 * time.Millisecond,
		QueueEvents:     8192,
		QueueBytes:      16 * MiB,
		ShutdownTimeout: 30 * time.Second,
		GCPercent:       300,
		ExtraProcs:      1,
	}
}

// defaultSpec and defaultNode, with DefaultRuntime, are where defaults are
// set: the decoder fills these and leaves absent (or null) keys alone. The
// default tags above document the same values; a test keeps them in step.
func defaultSpec() fileSpec {
	return fileSpec{
		Control: Control{Address: "127.0.0.1:9464"},
		Logging: Logging{Level: "info", Format: "text"},
		Status:  "auto",
		Runtime: DefaultRuntime(),
		State:   State{CheckpointInterval: 10 * time.Second, BlockCache: 64 * MiB},
	}
}

func defaultNode() nodeCommon {
	return nodeCommon{Parallelism: 1, OnError: OnErrorDrop, EventTime: EventTime{Unit: "ms"}}
}

// PipelineFields documents the top-level keys of a pipeline file.
func PipelineFields() []FieldDoc { return Describe(fileSpec{}) }

// NodeFields documents the keys every node has, besides its component's.
func NodeFields() []FieldDoc { return Describe(nodeCommon{}) }

// Path returns the node's dotted path in the file, such as "inputs.web".
func (n *Node) Path() string { return join(n.Kind.section(), n.Name) }

// Decode decodes the node's component-specific fields (every key of Spec
// but the common ones) into dst, a pointer to the component's config
// struct, and returns every problem found, including unknown keys (with the
// closest valid key among common and component fields). Fill dst with the
// component's defaults first: absent keys leave dst's fields alone. If dst
// implements Validator, its problems are part of the result.
//
// Decode panics if dst is not a pointer to a struct or declares a field
// with a common node key's name.
func (n *Node) Decode(dst any) Errors {
	v := reflect.ValueOf(dst)
	if v.Kind() != reflect.Pointer || v.IsNil() || v.Elem().Kind() != reflect.Struct {
		panic(fmt.Sprintf("config: Node.Decode needs a non-nil pointer to a struct, not %T", dst))
	}
	si := structInfoOf(v.Elem().Type())
	common := structInfoOf(reflect.TypeFor[nodeCommon]())
	for _, name := range si.names {
		if _, ok := common.byName[name]; ok {
			panic(fmt.Sprintf("config: %T declares %q, which is a common node field", dst, name))
		}
	}
	if n.Spec == nil {
		return nil
	}
	skip := map[string]bool{}
	var extra []string
	for _, name := range common.names {
		skip[name] = true
		if n.Kind != InputNode || (name != "from" && name != "edge" && name != "key_by") {
			extra = append(extra, name)
		}
	}
	d := newDecoder(n.Pos.File, n.src)
	d.top = &topOpts{skip: skip, extra: extra, quietDup: true}
	d.value(n.Spec, n.Path(), v.Elem(), nil)
	return d.result()
}

// FieldPos returns the position of the value of field (a dotted path
// relative to the node, such as "path" or "tls.ca_file"), or of the nearest
// enclosing mapping when it is absent. Components use it to place errors
// found after decoding.
func (n *Node) FieldPos(field string) Pos {
	if n.Spec == nil || field == "" {
		return n.Pos
	}
	d := newDecoder(n.Pos.File, n.src)
	return nodePos(n.Pos.File, d.lookupField(n.Spec, field))
}

// NewError returns an error about field (relative to the node, "" for the
// node itself) placed at the field's value.
func (n *Node) NewError(field, msg, expected, hint string) *Error {
	path := n.Path()
	if field != "" {
		path += "." + field
	}
	return &Error{Pos: n.FieldPos(field), Field: path, Msg: msg, Expected: expected, Hint: hint}
}
