package runtime_test

import (
	"context"
	"errors"
	"fmt"
	goruntime "runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/jsondoc"
	"github.com/weir-dev/weir/internal/runtime"
)

// --- test components ---

// seqInput emits {"id":N,"k":"kX"} for N in [instance, count) stepping by
// parallelism, as fast as it may. It counts what it emitted and what was
// acknowledged.
type seqInput struct {
	env     runtime.Env
	count   int64 // 0 = until stopped
	keys    int
	emitted *atomic.Int64
	acked   *atomic.Int64
	bad     func(id int64) bool // ids emitted as malformed JSON
}

func (s *seqInput) Run(ctx context.Context, out runtime.Outlet) error {
	id := int64(s.env.Instance)
	for {
		if ctx.Err() != nil {
			return nil
		}
		b := event.GetBatch()
		var buf []byte
		for len(b.Events) < s.env.BatchSize && (s.count == 0 || id < s.count) {
			start := len(buf)
			if s.bad != nil && s.bad(id) {
				buf = fmt.Appendf(buf, `{"id":%d,"k":`, id)
			} else {
				buf = fmt.Appendf(buf, `{"id":%d,"k":"k%d"}`, id, id%int64(s.keys))
			}
			b.Append(event.Event{Value: buf[start:len(buf):len(buf)], Offset: id})
			id += int64(s.env.Parallelism)
		}
		if len(b.Events) == 0 {
			b.Release()
			return nil
		}
		n := len(b.Events)
		b.Unchecked = s.env.DeferValidation
		ack := event.NewAck(n, func() { s.acked.Add(int64(n)) })
		for i := range b.Events {
			b.Events[i].Ack = ack
		}
		if err := out.Emit(ctx, b); err != nil {
			return err
		}
		s.emitted.Add(int64(n))
	}
}

// collector records every value written, per output instance, in order.
type collector struct {
	mu       sync.Mutex
	values   []string
	byInst   map[int][]string
	delay    time.Duration // per Write, to make the output slow
	failOn   func(v string) bool
	inst     int
	buffered []string
}

func (c *collector) Write(_ context.Context, evs []event.Event) error {
	if c.delay > 0 {
		time.Sleep(c.delay)
	}
	for i := range evs {
		v := string(evs[i].Value)
		if c.failOn != nil && c.failOn(v) {
			return errors.New("injected write failure")
		}
		c.buffered = append(c.buffered, v)
	}
	return nil
}

func (c *collector) Flush(context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.values = append(c.values, c.buffered...)
	if c.byInst == nil {
		c.byInst = map[int][]string{}
	}
	c.byInst[c.inst] = append(c.byInst[c.inst], c.buffered...)
	c.buffered = c.buffered[:0]
	return nil
}

func (c *collector) Close(ctx context.Context) error { return c.Flush(ctx) }

type sink struct {
	mu   sync.Mutex
	outs []*collector
	cfg  collector
}

func (s *sink) new(env runtime.Env) *collector {
	s.mu.Lock()
	defer s.mu.Unlock()
	c := &collector{delay: s.cfg.delay, failOn: s.cfg.failOn, inst: env.Instance}
	s.outs = append(s.outs, c)
	return c
}

func (s *sink) all() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var v []string
	for _, c := range s.outs {
		c.mu.Lock()
		v = append(v, c.values...)
		c.mu.Unlock()
	}
	return v
}

type procFunc func(r *runtime.Record) (bool, error)

func (f procFunc) Process(r *runtime.Record) (bool, error) { return f(r) }

// factory builds components by node name.
type factory struct {
	inputs  map[string]func(env runtime.Env) runtime.Input
	procs   map[string]func(env runtime.Env) runtime.Processor
	outputs map[string]*sink
}

func (f *factory) NewInput(n *dag.Node, env runtime.Env) (runtime.Input, error) {
	return f.inputs[n.Name](env), nil
}

func (f *factory) NewProcessor(n *dag.Node, env runtime.Env) (runtime.Processor, error) {
	return f.procs[n.Name](env), nil
}

func (f *factory) NewOutput(n *dag.Node, env runtime.Env) (runtime.Output, error) {
	return f.outputs[n.Name].new(env), nil
}

// noLeaks fails the test if goroutines started during it are still running
// shortly after it ends: every goroutine the runtime starts has an owner
// that waits for it.
func noLeaks(t *testing.T) {
	t.Helper()
	before := goruntime.NumGoroutine()
	t.Cleanup(func() {
		deadline := time.Now().Add(2 * time.Second)
		for goruntime.NumGoroutine() > before && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		if n := goruntime.NumGoroutine(); n > before {
			buf := make([]byte, 1<<16)
			t.Errorf("%d goroutines leaked:\n%s", n-before, buf[:goruntime.Stack(buf, true)])
		}
	})
}

func graph(t testing.TB, yaml string) *dag.Graph {
	t.Helper()
	if tt, ok := t.(*testing.T); ok {
		noLeaks(tt)
	}
	p, err := config.Parse("test.yaml", []byte(yaml))
	if err != nil {
		t.Fatalf("parse: %v", err)
	}
	g, err := dag.Build(p)
	if err != nil {
		t.Fatalf("graph: %v", err)
	}
	return g
}

func field(t *testing.T, v, name string) string {
	t.Helper()
	var d jsondoc.Doc
	if err := d.Parse([]byte(v)); err != nil {
		t.Fatalf("output %q: %v", v, err)
	}
	x := d.Lookup([]jsondoc.Seg{jsondoc.Key(name)})
	switch x.Kind {
	case jsondoc.String:
		return string(x.S)
	case jsondoc.Int:
		return strconv.FormatInt(x.I, 10)
	}
	return string(jsondoc.AppendValue(nil, x))
}

func passThrough(runtime.Env) runtime.Processor {
	return procFunc(func(r *runtime.Record) (bool, error) { return true, nil })
}

// --- tests ---

// Every event with the same key goes to the same instance, and events of a
// key arrive in the order they were produced.
func TestKeyHashKeepsOrderPerKey(t *testing.T) {
	g := graph(t, `
name: t
inputs:
  src: {type: seq}
processors:
  by_key: {type: tag, from: src, parallelism: 4, key_by: k}
outputs:
  out: {type: collect, from: by_key}
`)
	var emitted, acked atomic.Int64
	var mu sync.Mutex
	seenBy := map[string]int{} // key -> processor instance
	out := &sink{}
	f := &factory{
		inputs: map[string]func(runtime.Env) runtime.Input{"src": func(env runtime.Env) runtime.Input {
			return &seqInput{env: env, count: 50000, keys: 97, emitted: &emitted, acked: &acked}
		}},
		procs: map[string]func(runtime.Env) runtime.Processor{"by_key": func(env runtime.Env) runtime.Processor {
			return procFunc(func(r *runtime.Record) (bool, error) {
				k := string(r.Event.Key)
				mu.Lock()
				defer mu.Unlock()
				if prev, ok := seenBy[k]; ok && prev != env.Instance {
					return false, fmt.Errorf("key %s seen by instances %d and %d", k, prev, env.Instance)
				}
				seenBy[k] = env.Instance
				return true, nil
			})
		}},
		outputs: map[string]*sink{"out": out},
	}
	p, err := runtime.New(g, f, runtime.Options{BatchSize: 64, QueueEvents: 256})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	vals := out.all()
	if len(vals) != 50000 {
		t.Fatalf("got %d events, want 50000", len(vals))
	}
	last := map[string]int{}
	for _, v := range vals {
		k := field(t, v, "k")
		id, _ := strconv.Atoi(field(t, v, "id"))
		if prev, ok := last[k]; ok && id <= prev {
			t.Fatalf("key %s: id %d after %d: order per key broken", k, id, prev)
		}
		last[k] = id
	}
	if len(seenBy) != 97 {
		t.Fatalf("saw %d keys, want 97", len(seenBy))
	}
	insts := map[int]bool{}
	for _, i := range seenBy {
		insts[i] = true
	}
	if len(insts) < 2 {
		t.Fatalf("all keys went to %d instance(s); key-hash should spread them", len(insts))
	}
	if acked.Load() != 50000 {
		t.Fatalf("acked %d, want 50000", acked.Load())
	}
}

// A slow output makes the input wait: no queue ever holds more than its
// bound plus one batch, and the input stage records backpressure.
func TestSlowOutputBoundsQueues(t *testing.T) {
	g := graph(t, `
name: t
inputs:
  src: {type: seq}
processors:
  pass: {type: pass, from: src}
outputs:
  out: {type: collect, from: pass}
`)
	var emitted, acked atomic.Int64
	out := &sink{cfg: collector{delay: 2 * time.Millisecond}}
	f := &factory{
		inputs: map[string]func(runtime.Env) runtime.Input{"src": func(env runtime.Env) runtime.Input {
			return &seqInput{env: env, keys: 10, emitted: &emitted, acked: &acked}
		}},
		procs:   map[string]func(runtime.Env) runtime.Processor{"pass": passThrough},
		outputs: map[string]*sink{"out": out},
	}
	const batch, bound = 32, 256
	p, err := runtime.New(g, f, runtime.Options{BatchSize: batch, QueueEvents: bound, QueueBytes: 1 << 30})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for len(out.all()) < 5000 {
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	for _, s := range p.Stages() {
		if hw := s.QueueHighWater(); hw > bound+batch {
			t.Errorf("stage %s: queue reached %d events, bound is %d (+%d for one batch)", s.Name, hw, bound, batch)
		}
	}
	if bp := p.Stages()[0].Backpressure.Load(); bp == 0 {
		t.Errorf("input stage recorded no backpressure against a slow output")
	}
	// Everything read is in flight at most bound*stages: the input is
	// bounded by the output, not racing ahead.
	if got, wrote := emitted.Load(), int64(len(out.all())); got != wrote {
		t.Errorf("emitted %d, written %d after drain", got, wrote)
	}
}

// A graceful stop loses nothing: every event the input emitted is written
// exactly once and acknowledged.
func TestGracefulStopLosesNothing(t *testing.T) {
	g := graph(t, `
name: t
inputs:
  src: {type: seq, parallelism: 2}
processors:
  a: {type: pass, from: src, parallelism: 3, edge: round_robin}
  b: {type: pass, from: a, parallelism: 3}
outputs:
  out: {type: collect, from: b, parallelism: 2}
`)
	var emitted, acked atomic.Int64
	out := &sink{}
	f := &factory{
		inputs: map[string]func(runtime.Env) runtime.Input{"src": func(env runtime.Env) runtime.Input {
			return &seqInput{env: env, keys: 10, emitted: &emitted, acked: &acked}
		}},
		procs:   map[string]func(runtime.Env) runtime.Processor{"a": passThrough, "b": passThrough},
		outputs: map[string]*sink{"out": out},
	}
	p, err := runtime.New(g, f, runtime.Options{BatchSize: 100, QueueEvents: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(g.Stages); n != 3 {
		t.Fatalf("a and b should fuse: got %d stages, want 3", n)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	for len(out.all()) < 20000 {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	vals := out.all()
	seen := make(map[string]int, len(vals))
	for _, v := range vals {
		seen[field(t, v, "id")]++
	}
	for id, n := range seen {
		if n != 1 {
			t.Fatalf("id %s written %d times", id, n)
		}
	}
	if int64(len(vals)) != emitted.Load() {
		t.Fatalf("emitted %d events, wrote %d", emitted.Load(), len(vals))
	}
	if acked.Load() != emitted.Load() {
		t.Fatalf("acked %d of %d emitted", acked.Load(), emitted.Load())
	}
}

func errEvery(n int) func(runtime.Env) runtime.Processor {
	return func(runtime.Env) runtime.Processor {
		return procFunc(func(r *runtime.Record) (bool, error) {
			d, err := r.Doc()
			if err != nil {
				return false, err
			}
			if d.Lookup([]jsondoc.Seg{jsondoc.Key("id")}).I%int64(n) == 0 {
				return false, errors.New("id divisible by " + strconv.Itoa(n))
			}
			return true, nil
		})
	}
}

func TestErrorPolicies(t *testing.T) {
	for _, tc := range []struct {
		policy            string
		wantOut, wantDead int
		wantErr           bool
	}{
		{policy: "drop", wantOut: 900},
		{policy: "dead_letter", wantOut: 900, wantDead: 100},
		{policy: "fail", wantErr: true},
	} {
		t.Run(tc.policy, func(t *testing.T) {
			extra, dlqOut := "", ""
			if tc.policy == "dead_letter" {
				extra, dlqOut = ", dead_letter: dlq", "\n  dlq: {type: collect, parallelism: 2}"
			}
			g := graph(t, `
name: t
inputs:
  src: {type: seq}
processors:
  check: {type: check, from: src, on_error: `+tc.policy+extra+`}
outputs:
  out: {type: collect, from: check}`+dlqOut+`
`)
			var emitted, acked atomic.Int64
			out, dlq := &sink{}, &sink{}
			f := &factory{
				inputs: map[string]func(runtime.Env) runtime.Input{"src": func(env runtime.Env) runtime.Input {
					return &seqInput{env: env, count: 1000, keys: 10, emitted: &emitted, acked: &acked}
				}},
				procs:   map[string]func(runtime.Env) runtime.Processor{"check": errEvery(10)},
				outputs: map[string]*sink{"out": out, "dlq": dlq},
			}
			p, err := runtime.New(g, f, runtime.Options{BatchSize: 50})
			if err != nil {
				t.Fatal(err)
			}
			err = p.Run(context.Background())
			if tc.wantErr {
				if !errors.Is(err, runtime.ErrFailed) || !strings.Contains(err.Error(), "check") {
					t.Fatalf("Run = %v, want ErrFailed naming the node", err)
				}
				if acked.Load() == emitted.Load() {
					t.Fatalf("a failed pipeline acknowledged everything (%d)", acked.Load())
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := len(out.all()); got != tc.wantOut {
				t.Errorf("out has %d events, want %d", got, tc.wantOut)
			}
			dead := dlq.all()
			if len(dead) != tc.wantDead {
				t.Errorf("dead letters: %d, want %d", len(dead), tc.wantDead)
			}
			for _, d := range dead {
				if field(t, d, "node") != "check" || !strings.Contains(field(t, d, "error"), "divisible by 10") {
					t.Fatalf("dead letter lacks node or error: %s", d)
				}
				var doc jsondoc.Doc
				_ = doc.Parse([]byte(d))
				if id := doc.Lookup([]jsondoc.Seg{jsondoc.Key("value"), jsondoc.Key("id")}); id.I%10 != 0 {
					t.Fatalf("dead letter carries the wrong original: %s", d)
				}
			}
			ns := p.Node("check")
			if ns.Errors.Load() != 100 {
				t.Errorf("errors counted: %d, want 100", ns.Errors.Load())
			}
			if acked.Load() != 1000 {
				t.Errorf("acked %d, want 1000", acked.Load())
			}
		})
	}
}

// Records an input cannot read follow the input's policy; the dead letter
// names the record's position.
func TestInputRejectDeadLetter(t *testing.T) {
	g := graph(t, `
name: t
inputs:
  src: {type: seq, on_error: dead_letter, dead_letter: dlq}
processors:
  parse: {type: parse, from: src, on_error: dead_letter, dead_letter: dlq}
outputs:
  out: {type: collect, from: parse}
  dlq: {type: collect}
`)
	var emitted, acked atomic.Int64
	out, dlq := &sink{}, &sink{}
	f := &factory{
		inputs: map[string]func(runtime.Env) runtime.Input{"src": func(env runtime.Env) runtime.Input {
			return &seqInput{env: env, count: 300, keys: 3, emitted: &emitted, acked: &acked, bad: func(id int64) bool { return id%100 == 7 }}
		}},
		procs: map[string]func(runtime.Env) runtime.Processor{"parse": func(runtime.Env) runtime.Processor {
			return procFunc(func(r *runtime.Record) (bool, error) { _, err := r.Doc(); return err == nil, err })
		}},
		outputs: map[string]*sink{"out": out, "dlq": dlq},
	}
	p, err := runtime.New(g, f, runtime.Options{BatchSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(out.all()) != 297 {
		t.Fatalf("out: %d, want 297", len(out.all()))
	}
	dead := dlq.all()
	if len(dead) != 3 {
		t.Fatalf("dead letters: %v", dead)
	}
	for _, d := range dead {
		off := field(t, d, "offset")
		if !strings.HasSuffix(off, "7") || !strings.Contains(field(t, d, "value"), `{"id":`+off) {
			t.Fatalf("dead letter does not carry the malformed record and its position: %s", d)
		}
		// The input left the JSON check to the chain (it only feeds
		// processors), so its policy and name apply, not the processor's.
		if field(t, d, "node") != "src" || !strings.Contains(field(t, d, "error"), "offset "+off+": invalid JSON") {
			t.Fatalf("malformed record not attributed to the input: %s", d)
		}
	}
	if n := p.Node("src").Errors.Load(); n != 3 {
		t.Fatalf("input errors: %d, want 3", n)
	}
	if n := p.Node("parse").Errors.Load(); n != 0 {
		t.Fatalf("processor errors: %d, want 0 (the input owns malformed records)", n)
	}
	if acked.Load() != 300 {
		t.Fatalf("acked %d, want 300", acked.Load())
	}
}

// Broadcast delivers every event to every instance; round-robin to one.
func TestBroadcastAndRoundRobin(t *testing.T) {
	g := graph(t, `
name: t
inputs:
  src: {type: seq}
outputs:
  all: {type: collect, from: src, parallelism: 3, edge: broadcast}
  one: {type: collect, from: src, parallelism: 3, edge: round_robin}
`)
	var emitted, acked atomic.Int64
	all, one := &sink{}, &sink{}
	f := &factory{
		inputs: map[string]func(runtime.Env) runtime.Input{"src": func(env runtime.Env) runtime.Input {
			return &seqInput{env: env, count: 3000, keys: 3, emitted: &emitted, acked: &acked}
		}},
		outputs: map[string]*sink{"all": all, "one": one},
	}
	p, err := runtime.New(g, f, runtime.Options{BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if n := len(all.all()); n != 9000 {
		t.Errorf("broadcast wrote %d, want 3×3000", n)
	}
	for _, c := range all.outs {
		if len(c.values) != 3000 {
			t.Errorf("broadcast instance %d got %d, want 3000", c.inst, len(c.values))
		}
	}
	if n := len(one.all()); n != 3000 {
		t.Errorf("round robin wrote %d, want 3000", n)
	}
	for _, c := range one.outs {
		if len(c.values) == 0 {
			t.Errorf("round robin left instance %d idle", c.inst)
		}
	}
	if acked.Load() != 3000 {
		t.Errorf("acked %d, want 3000", acked.Load())
	}
}

// A Record of an event marked checked reads its value without validating
// it (the input vouched for it); an unmarked one is validated first. The
// value here breaks the mark's promise on purpose, to tell the two apart.
func TestRecordOfCheckedEvent(t *testing.T) {
	typ := []jsondoc.Seg{jsondoc.Key("type")}
	bad := []byte(`{"type":"click","x":tru}`)

	var r runtime.Record
	ev := event.Event{Value: bad}
	r.Reset(&ev)
	if _, err := r.Field(typ); err == nil {
		t.Fatal("an unmarked malformed event parsed")
	}

	ev = event.Event{Value: bad}
	ev.MarkChecked()
	r.Reset(&ev)
	v, err := r.Field(typ)
	if err != nil || string(v.S) != "click" {
		t.Fatalf("Field(type) of a checked event = %+v, %v; want click", v, err)
	}

	good := event.Event{Value: []byte(`{"type":"click","n":1}`)}
	good.MarkChecked()
	r.Reset(&good)
	d, err := r.Doc()
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Set(typ, jsondoc.StringValue([]byte("view"))); err != nil {
		t.Fatal(err)
	}
	if !r.Modified() || string(d.AppendJSON(nil)) != `{"type":"view","n":1}` {
		t.Fatalf("after Set: modified %v, %s", r.Modified(), d.AppendJSON(nil))
	}
}
