package config

import (
	"errors"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestQuickstart(t *testing.T) {
	p, err := loadAll("testdata/valid/quickstart.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const file = "testdata/valid/quickstart.yaml"
	if p.File != file || p.Name != "quickstart" || p.Status != "auto" ||
		p.Control.Address != "127.0.0.1:9464" || p.Logging != (Logging{Level: "info", Format: "text"}) {
		t.Errorf("top level: %+v", p)
	}
	if p.Runtime != DefaultRuntime() {
		t.Errorf("runtime = %+v, want %+v", p.Runtime, DefaultRuntime())
	}
	var names []string
	for _, n := range p.Nodes {
		names = append(names, n.Kind.String()+":"+n.Name)
	}
	want := []string{"input:web", "processor:not_views", "processor:by_user", "output:console", "output:dlq"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("nodes = %v, want %v", names, want)
	}

	web := p.Node("web")
	if web.Type != "generate" || web.Pos != (Pos{file, 15, 3}) || web.OnError != OnErrorDeadLetter ||
		web.DeadLetter != "dlq" || web.DeadLetterPos != (Pos{file, 19, 18}) || web.Parallelism != 1 || web.From != nil {
		t.Errorf("web = %+v", web)
	}
	var gen generateConfig
	if errs := web.Decode(&gen); errs != nil {
		t.Fatal(errs)
	}
	if gen.Rate != 1000 {
		t.Errorf("rate = %d", gen.Rate)
	}

	nv := p.Node("not_views")
	if nv.Edge != EdgeForward || nv.KeyBy != nil || !reflect.DeepEqual(nv.From, []string{"web"}) ||
		!reflect.DeepEqual(nv.FromPos, []Pos{{file, 24, 11}}) || nv.OnError != OnErrorDrop {
		t.Errorf("not_views = %+v", nv)
	}
	var fc filterConfig
	if errs := nv.Decode(&fc); errs != nil {
		t.Fatal(errs)
	}
	if fc.Expr.Src != `type != "view"` || fc.Expr.Pos != (Pos{file, 26, 11}) || fc.Expr.Quoted {
		t.Errorf("expr = %+v", fc.Expr)
	}
	if got := fc.Expr.PosAt(8); got != (Pos{file, 26, 19}) {
		t.Errorf("PosAt(8) = %v", got)
	}

	bu := p.Node("by_user")
	if bu.Edge != EdgeKeyHash || bu.KeyBy == nil || bu.KeyBy.Src != "user_id" || bu.Parallelism != 2 ||
		!reflect.DeepEqual(bu.FromPos, []Pos{{file, 29, 12}}) {
		t.Errorf("by_user = %+v", bu)
	}
	if err := bu.Decode(&fc); err != nil {
		t.Fatal(err)
	}
	const src = `user_id != "" && note == 'it''s'`
	if fc.Expr.Src != src || !fc.Expr.Quoted {
		t.Fatalf("expr = %q", fc.Expr.Src)
	}
	// The file has 'user_id != "" && note == ''it''''s''' starting at column 11.
	for off, col := range map[int]int{0: 12, 24: 36, 25: 37, 26: 39, 27: 40, 28: 41, 29: 43, 30: 45, 31: 46, len(src): 48} {
		if got := fc.Expr.PosAt(off); got != (Pos{file, 32, col}) {
			t.Errorf("PosAt(%d) = %v, want column %d", off, got, col)
		}
	}

	console := p.Node("console")
	if !reflect.DeepEqual(console.From, []string{"by_user", "not_views"}) ||
		!reflect.DeepEqual(console.FromPos, []Pos{{file, 37, 9}, {file, 38, 9}}) {
		t.Errorf("console = %+v", console)
	}
	var fileCfg fileConfig
	if err := p.Node("dlq").Decode(&fileCfg); err != nil {
		t.Fatal(err)
	}
	if fileCfg.Path != "/tmp/dlq.jsonl" || fileCfg.MaxSize != 64*MiB {
		t.Errorf("dlq = %+v", fileCfg)
	}
	if p.Node("nope") != nil {
		t.Error("Node(nope) != nil")
	}
}

func TestParseDefaults(t *testing.T) {
	p, err := Parse("min.yaml", []byte("name: m\ninputs: {a: {type: generate}}\noutputs: {b: {type: stdout, from: a}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if p.Runtime != DefaultRuntime() || p.Control.Address != "127.0.0.1:9464" || p.Status != "auto" ||
		p.Logging.Level != "info" || p.Logging.Format != "text" {
		t.Errorf("defaults not applied: %+v", p)
	}
	b := p.Node("b")
	if b.Parallelism != 1 || b.OnError != OnErrorDrop || b.Edge != "" {
		t.Errorf("node defaults not applied: %+v", b)
	}
}

// TestDefaultTags keeps the default tags, which only document, in step with
// the defaults the code sets.
func TestDefaultTags(t *testing.T) {
	spec, node := defaultSpec(), defaultNode()
	values := map[string]string{
		"control.address":                 spec.Control.Address,
		"logging.level":                   spec.Logging.Level,
		"logging.format":                  spec.Logging.Format,
		"status":                          spec.Status,
		"runtime.batch_size":              "256",
		"runtime.linger":                  spec.Runtime.Linger.String(),
		"runtime.queue_events":            "8192",
		"runtime.queue_bytes":             spec.Runtime.QueueBytes.String(),
		"runtime.shutdown_timeout":        spec.Runtime.ShutdownTimeout.String(),
		"state.checkpoint_interval":       spec.State.CheckpointInterval.String(),
		"state.block_cache":               spec.State.BlockCache.String(),
		"runtime.gc_percent":              "300",
		"runtime.extra_procs":             strconv.Itoa(spec.Runtime.ExtraProcs),
		"runtime.memory_limit":            strconv.FormatInt(int64(spec.Runtime.MemoryLimit), 10),
		"parallelism":                     "1",
		"on_error":                        node.OnError,
		"event_time.unit":                 node.EventTime.Unit,
		"event_time.max_out_of_orderness": node.EventTime.MaxOutOfOrderness.String(),
		"event_time.idle_timeout":         node.EventTime.IdleTimeout.String(),
	}
	if spec.Runtime.BatchSize != 256 || spec.Runtime.QueueEvents != 8192 || node.Parallelism != 1 {
		t.Fatal("defaults changed: update this test")
	}
	docs := append(PipelineFields(), NodeFields()...)
	seen := 0
	for _, f := range docs {
		want, ok := values[f.Name]
		if !ok {
			if f.Default != "" {
				t.Errorf("%s: default tag %q not checked", f.Name, f.Default)
			}
			continue
		}
		seen++
		if f.Default != want {
			t.Errorf("%s: default tag %q, code sets %q", f.Name, f.Default, want)
		}
	}
	if seen != len(values) {
		t.Errorf("checked %d defaults, want %d", seen, len(values))
	}
}

func TestParseMergeAndAlias(t *testing.T) {
	const doc = `name: m
inputs:
  a: &gen
    type: generate
    rate: 5
  b:
    <<: *gen
    rate: 7
outputs:
  o:
    type: stdout
    from: [a, b]
`
	p, err := Parse("m.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	b := p.Node("b")
	if b.Type != "generate" {
		t.Fatalf("b.Type = %q", b.Type)
	}
	var g generateConfig
	if errs := b.Decode(&g); errs != nil {
		t.Fatal(errs)
	}
	if g.Rate != 7 {
		t.Errorf("rate = %d, want the explicit 7 over the merged 5", g.Rate)
	}
}

func TestParseAliasCycle(t *testing.T) {
	const doc = "name: m\ninputs:\n  a: &x {type: generate, tags: [*x]}\noutputs:\n  o: {type: stdout, from: a}\n"
	p, err := Parse("c.yaml", []byte(doc))
	if err != nil {
		t.Fatal(err)
	}
	var c struct {
		Tags []any `yaml:"tags"`
	}
	errs := p.Node("a").Decode(&c)
	if len(errs) == 0 || !strings.Contains(errs.Error(), "refers to a value that contains it") {
		t.Errorf("errs = %v", errs)
	}
}

func TestParseErrorTypes(t *testing.T) {
	_, err := Parse("x.yaml", []byte("a: b: c\n"))
	var e *Error
	if !errors.As(err, &e) || e.Pos != (Pos{"x.yaml", 1, 5}) {
		t.Errorf("syntax error = %#v", err)
	}
	p, err := Parse("x.yaml", []byte("name: x\ninputs: {}\noutputs: {}\nbogus: 1\n"))
	var errs Errors
	if !errors.As(err, &errs) || len(errs) != 3 || p == nil {
		t.Errorf("err = %v, pipeline %v", err, p)
	}
	if !errors.As(err, &e) {
		t.Error("errors.As does not find an *Error in Errors")
	}
}

func TestDecodeGeneric(t *testing.T) {
	type inner struct {
		A int `yaml:"a" required:"true"`
	}
	type embedded struct {
		E string `yaml:"e"`
	}
	type cfg struct {
		embedded `yaml:",inline"`
		S        string            `yaml:"s"`
		B        bool              `yaml:"b"`
		I8       int8              `yaml:"i8"`
		U        uint              `yaml:"u"`
		F        float32           `yaml:"f"`
		D        time.Duration     `yaml:"d"`
		Size     ByteSize          `yaml:"size"`
		P        *inner            `yaml:"p"`
		Absent   *inner            `yaml:"absent"`
		L        []int             `yaml:"l"`
		One      []string          `yaml:"one,scalar_or_list"`
		M        map[string]string `yaml:"m"`
		Any      any               `yaml:"any"`
		Null     string            `yaml:"null"`
		HexInt   int               `yaml:"hex"`
	}
	const doc = `e: embedded
s: 42
b: true
i8: -128
u: 7
f: 0.5
d: 1h30m
size: 10KB
p: {a: 1}
l: [1, 2, 3]
one: x
m: {k: v}
any: {x: [1, 2.5, true, null, s]}
null: ~
hex: 0x10
`
	root, serr := parseYAML("g.yaml", []byte(doc))
	if serr != nil {
		t.Fatal(serr)
	}
	c := cfg{Null: "keep"}
	if errs := Decode("g.yaml", root, "", &c); errs != nil {
		t.Fatal(errs)
	}
	want := cfg{
		embedded: embedded{E: "embedded"}, S: "42", B: true, I8: -128, U: 7, F: 0.5,
		D: 90 * time.Minute, Size: 10 * KB, P: &inner{A: 1}, L: []int{1, 2, 3}, One: []string{"x"},
		M: map[string]string{"k": "v"}, Any: map[string]any{"x": []any{int64(1), 2.5, true, nil, "s"}},
		Null: "keep", HexInt: 16,
	}
	if !reflect.DeepEqual(c, want) {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
}

func TestDecodeErrors(t *testing.T) {
	type cfg struct {
		I8   int8          `yaml:"i8"`
		U    uint          `yaml:"u"`
		B    bool          `yaml:"b"`
		D    time.Duration `yaml:"d"`
		L    []string      `yaml:"l"`
		Req  string        `yaml:"req" required:"true"`
		Enum string        `yaml:"enum" enum:"alpha|beta"`
		Tag  string        `yaml:"tag"`
	}
	const doc = "i8: 128\nu: -1\nb: yes\nd: 5\nl: x\nenum: alhpa\ntag: !deleted\n"
	root, serr := parseYAML("e.yaml", []byte(doc))
	if serr != nil {
		t.Fatal(serr)
	}
	var c cfg
	errs := Decode("e.yaml", root, "x", &c)
	want := []string{
		`e.yaml:1:5: x.i8: 128 is out of range (expected an integer from -128 to 127)`,
		`e.yaml:2:4: x.u: -1 is out of range (expected an integer from 0 to 18446744073709551615)`,
		`e.yaml:3:4: x.b: got string "yes" (expected true or false)`,
		`e.yaml:4:4: x.d: got integer 5 without a unit (expected a duration such as 500ms, 10s or 1h30m)`,
		`e.yaml:5:4: x.l: got string "x" (expected a list of string)`,
		`e.yaml:6:7: x.enum: invalid value "alhpa" (expected one of alpha, beta)`,
		`e.yaml:7:6: x.tag: got a value tagged !deleted (expected a string)`,
		`e.yaml:1:1: x.req: required field is missing (expected a string)`,
	}
	if len(errs) != len(want) {
		t.Fatalf("got %d errors, want %d:\n%v", len(errs), len(want), errs)
	}
	got := map[string]bool{}
	for _, e := range errs {
		got[strings.SplitN(e.Error(), "\n", 2)[0]] = true
	}
	for _, w := range want {
		if !got[w] {
			t.Errorf("missing %q in\n%v", w, errs)
		}
	}
}

type badConfig struct {
	C chan int `yaml:"c"`
}

func TestUnsupportedTypePanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("no panic for a chan field")
		}
	}()
	Decode("f", nil, "", &badConfig{})
}

func TestCommonFieldCollisionPanics(t *testing.T) {
	p, err := Parse("m.yaml", []byte("name: m\ninputs: {a: {type: x}}\noutputs: {o: {type: y, from: a}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		if recover() == nil {
			t.Error("no panic for a component field named type")
		}
	}()
	var c struct {
		Type string `yaml:"type"`
	}
	p.Node("a").Decode(&c)
}

func TestNodeNewError(t *testing.T) {
	p, err := Parse("n.yaml", []byte("name: m\ninputs:\n  a:\n    type: file\n    path: /nope\noutputs: {o: {type: y, from: a}}\n"))
	if err != nil {
		t.Fatal(err)
	}
	e := p.Node("a").NewError("path", "file /nope does not exist", "a readable file", "check the path")
	if got := e.Error(); got != "n.yaml:5:11: inputs.a.path: file /nope does not exist (expected a readable file)\n  hint: check the path" {
		t.Errorf("got %q", got)
	}
	if got := p.Node("a").FieldPos("missing"); got != (Pos{"n.yaml", 4, 5}) {
		t.Errorf("FieldPos(missing) = %v", got)
	}
}

func TestErrorFormat(t *testing.T) {
	e := &Error{Pos: Pos{"q.yaml", 12, 5}, Field: "processors.enrich.expr", Msg: "bad", Expected: "good", Hint: "fix it"}
	if got, want := e.Error(), "q.yaml:12:5: processors.enrich.expr: bad (expected good)\n  hint: fix it"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	e = &Error{Msg: "bad"}
	if got := e.Error(); got != "bad" {
		t.Errorf("got %q", got)
	}
	var errs Errors
	if errs.Err() != nil {
		t.Error("empty Errors.Err() != nil")
	}
	errs.Add(&Error{Pos: Pos{"a", 2, 1}, Msg: "second"})
	errs.Add(nil)
	errs.Add(&Error{Pos: Pos{"a", 1, 9}, Msg: "first"})
	if got := errs.Err().Error(); got != "a:1:9: first\na:2:1: second" {
		t.Errorf("got %q", got)
	}
}

func TestClosest(t *testing.T) {
	cands := []string{"parallelism", "type", "from", "on_error"}
	for in, want := range map[string]string{"paralelism": "parallelism", "tpye": "type", "parallel": "parallelism", "frmo": "from", "onerror": "on_error", "Type": "type"} {
		if got, ok := Closest(in, cands); !ok || got != want {
			t.Errorf("Closest(%q) = %q, %v; want %q", in, got, ok, want)
		}
	}
	for _, in := range []string{"xyzzy", "a", "to"} {
		if got, ok := Closest(in, cands); ok {
			t.Errorf("Closest(%q) = %q, want none", in, got)
		}
	}
}
