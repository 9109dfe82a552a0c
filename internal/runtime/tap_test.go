package runtime_test

import (
	"context"
	"errors"
	goruntime "runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/expr"
	"github.com/weir-dev/weir/internal/jsondoc"
	"github.com/weir-dev/weir/internal/runtime"
)

// tapPipeline builds src (seqInput, count events, 0: until stopped) → the
// processors of procs, fused, each passing everything → out.
func tapPipeline(t *testing.T, count int64, yaml string, procs map[string]func(runtime.Env) runtime.Processor) (*runtime.Pipeline, *sink) {
	t.Helper()
	g := graph(t, yaml)
	var emitted, acked atomic.Int64
	out := &sink{}
	f := &factory{
		inputs: map[string]func(runtime.Env) runtime.Input{"src": func(env runtime.Env) runtime.Input {
			return &seqInput{env: env, count: count, keys: 10, emitted: &emitted, acked: &acked}
		}},
		procs:   procs,
		outputs: map[string]*sink{"out": out},
	}
	p, err := runtime.New(g, f, runtime.Options{BatchSize: 64, Linger: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return p, out
}

const srcToOut = `
name: t
inputs:
  src: {type: seq}
outputs:
  out: {type: sink, from: src}
`

// runAsync runs p until the returned stop is called (or p ends) and
// returns Run's error from stop.
func runAsync(t *testing.T, p *runtime.Pipeline) (stop func() error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- p.Run(ctx) }()
	var once sync.Once
	var err error
	stop = func() error {
		once.Do(func() {
			cancel()
			select {
			case err = <-done:
			case <-time.After(30 * time.Second):
				err = errors.New("the pipeline did not stop within 30s")
			}
		})
		return err
	}
	t.Cleanup(func() { _ = stop() })
	return stop
}

func next(t *testing.T, s *runtime.Subscription) runtime.TapEvent {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	te, err := s.Next(ctx)
	if err != nil {
		t.Fatalf("Next on tap of %s: %v", s.Node(), err)
	}
	return te
}

func idOf(t *testing.T, te runtime.TapEvent) int64 {
	t.Helper()
	var d jsondoc.Doc
	if err := d.Parse(te.Value); err != nil {
		t.Fatalf("tapped value %q: %v", te.Value, err)
	}
	v := d.Lookup([]jsondoc.Seg{jsondoc.Key("id")})
	if v.Kind != jsondoc.Int {
		t.Fatalf("tapped value %q has no int id", te.Value)
	}
	return v.I
}

// A subscriber reading as fast as it can gets at most its rate (plus the
// initial burst of a quarter second's worth), from a pipeline moving far
// more.
func TestTapRateCap(t *testing.T) {
	p, _ := tapPipeline(t, 0, srcToOut, nil)
	const rate = 40
	s, err := p.Tap("out", runtime.TapOptions{Rate: rate})
	if err != nil {
		t.Fatal(err)
	}
	stop := runAsync(t, p)
	start := time.Now()
	got := 0
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	for {
		if _, err := s.Next(ctx); err != nil {
			break
		}
		got++
	}
	elapsed := time.Since(start)
	if err := stop(); err != nil {
		t.Fatal(err)
	}
	moved := p.Node("out").In.Load()
	limit := int(rate*elapsed.Seconds()) + rate/4 + 2
	t.Logf("%d events moved, %d sampled in %v (limit %d)", moved, got, elapsed, limit)
	if got > limit {
		t.Errorf("tap delivered %d events in %v at rate %d/s; the cap allows %d", got, elapsed, rate, limit)
	}
	if got < rate/2 {
		t.Errorf("tap delivered only %d events in %v at rate %d/s", got, elapsed, rate)
	}
	if moved < uint64(10*got) {
		t.Errorf("the pipeline moved only %d events: the test needs a pipeline far faster than the tap", moved)
	}
	if st := s.Stats(); st.Dropped != 0 || st.Delivered != uint64(got) {
		t.Errorf("stats %+v, want no drops and %d delivered", st, got)
	}
}

// The filter runs on sampled events in Next: only matches come out, and
// events it fails on are counted, not returned.
func TestTapFilter(t *testing.T) {
	p, _ := tapPipeline(t, 0, srcToOut, nil)
	even, err := p.Tap("out", runtime.TapOptions{Rate: runtime.MaxTapRate, Filter: expr.MustCompile(`id % 3 == 0`)})
	if err != nil {
		t.Fatal(err)
	}
	broken, err := p.Tap("out", runtime.TapOptions{Filter: expr.MustCompile(`id / (id - id) > 1`)})
	if err != nil {
		t.Fatal(err)
	}
	runAsync(t, p)
	for range 30 {
		if id := idOf(t, next(t, even)); id%3 != 0 {
			t.Fatalf("filter id %% 3 == 0 let id %d through", id)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if te, err := broken.Next(ctx); err == nil {
		t.Fatalf("a filter failing on every event returned %q", te.Value)
	}
	if st := broken.Stats(); st.FilterErrors == 0 || st.Delivered != 0 {
		t.Errorf("failing filter stats %+v: want filter errors and nothing delivered", st)
	}
}

// A subscriber that never reads costs the pipeline nothing but drops: a
// finite pipeline runs to its end, the subscription holds its bound, and
// Next returns what it holds, then ErrTapClosed.
func TestTapNeverBlocks(t *testing.T) {
	const n = 100_000
	p, out := tapPipeline(t, n, srcToOut, nil)
	s, err := p.Tap("src", runtime.TapOptions{Rate: runtime.MaxTapRate, Buffer: 16})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := p.Run(ctx); err != nil {
		t.Fatal(err)
	}
	if got := len(out.all()); got != n {
		t.Fatalf("output got %d events, want %d", got, n)
	}
	if !s.Ended() {
		t.Error("Ended() = false after Run returned")
	}
	st := s.Stats()
	if s.Pending() != 16 || st.Dropped == 0 || st.Sampled != st.Dropped+16 {
		t.Errorf("pending %d, stats %+v: want the buffer full (16), the rest of the sampled dropped", s.Pending(), st)
	}
	for range 16 {
		next(t, s)
	}
	if _, err := s.Next(ctx); !errors.Is(err, runtime.ErrTapClosed) {
		t.Errorf("Next after the pipeline stopped and the queue emptied = %v, want ErrTapClosed", err)
	}
	if _, err := p.Tap("src", runtime.TapOptions{}); !errors.Is(err, runtime.ErrTapClosed) {
		t.Errorf("Tap after Run = %v, want ErrTapClosed", err)
	}
}

// A million events through a node with a stalled subscriber at the
// highest rate: the subscription never holds more than its bounds, and the
// heap does not grow with the events that went by.
func TestTapMemoryBounded(t *testing.T) {
	if testing.Short() {
		t.Skip("a million events")
	}
	const n = 1_000_000
	p2, _ := tapPipelineDiscard(t, n)
	var subs []*runtime.Subscription
	for _, node := range []string{"src", "a", "b", "out"} {
		s, err := p2.Tap(node, runtime.TapOptions{Rate: runtime.MaxTapRate, Buffer: 64})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	goruntime.GC()
	var before goruntime.MemStats
	goruntime.ReadMemStats(&before)

	done := make(chan error, 1)
	go func() { done <- p2.Run(context.Background()) }()
	maxPending, maxBytes := 0, int64(0)
	watch := time.NewTicker(time.Millisecond)
	defer watch.Stop()
loop:
	for {
		select {
		case err := <-done:
			if err != nil {
				t.Fatal(err)
			}
			break loop
		case <-watch.C:
			for _, s := range subs {
				maxPending = max(maxPending, s.Pending())
				maxBytes = max(maxBytes, s.QueuedBytes())
			}
		}
	}
	goruntime.GC()
	var after goruntime.MemStats
	goruntime.ReadMemStats(&after)
	growth := int64(after.HeapAlloc) - int64(before.HeapAlloc)
	var sampled, dropped uint64
	for _, s := range subs {
		st := s.Stats()
		sampled += st.Sampled
		dropped += st.Dropped
		if s.Pending() > s.Cap() {
			t.Errorf("tap of %s holds %d events, bound %d", s.Node(), s.Pending(), s.Cap())
		}
	}
	t.Logf("%d events; 4 stalled taps sampled %d, dropped %d; max pending %d, max queued %d bytes; heap growth %d bytes",
		n, sampled, dropped, maxPending, maxBytes, growth)
	if maxPending > 64 || maxBytes > runtime.TapQueueBytes {
		t.Errorf("a subscription held %d events and %d bytes, bounds 64 and %d", maxPending, maxBytes, runtime.TapQueueBytes)
	}
	if dropped == 0 {
		t.Error("the stalled taps dropped nothing: the test did not fill them")
	}
	// Four full subscriptions of ~100-byte events are well under 4 MiB;
	// the million events that went by are ~50 MiB.
	if growth > 8<<20 {
		t.Errorf("heap grew by %d bytes while a million events passed stalled taps", growth)
	}
	for _, s := range subs {
		s.Close()
	}
}

// tapPipelineDiscard is src → a → b → out with an output that keeps
// nothing.
func tapPipelineDiscard(t *testing.T, count int64) (*runtime.Pipeline, *atomic.Int64) {
	t.Helper()
	g := graph(t, `
name: t
inputs:
  src: {type: seq}
processors:
  a: {type: pass, from: src}
  b: {type: pass, from: a}
outputs:
  out: {type: nothing, from: b}
`)
	var emitted, acked atomic.Int64
	f := &nullOutFactory{factory: factory{
		inputs: map[string]func(runtime.Env) runtime.Input{"src": func(env runtime.Env) runtime.Input {
			return &seqInput{env: env, count: count, keys: 10, emitted: &emitted, acked: &acked}
		}},
		procs: map[string]func(runtime.Env) runtime.Processor{"a": passThrough, "b": passThrough},
	}}
	p, err := runtime.New(g, f, runtime.Options{BatchSize: 256})
	if err != nil {
		t.Fatal(err)
	}
	return p, &acked
}

type nullOutFactory struct{ factory }

func (f *nullOutFactory) NewOutput(*dag.Node, runtime.Env) (runtime.Output, error) {
	return nullOutput{}, nil
}

// Every kind of node can be tapped: an input's batches, each processor of
// a fused chain (an inner one with its change already visible), an
// output's writes.
func TestTapEveryNodeOfAChain(t *testing.T) {
	mark := func(name string) func(runtime.Env) runtime.Processor {
		return func(runtime.Env) runtime.Processor {
			return procFunc(func(r *runtime.Record) (bool, error) {
				d, err := r.Doc()
				if err != nil {
					return false, err
				}
				return true, d.Set([]jsondoc.Seg{jsondoc.Key(name)}, jsondoc.BoolValue(true))
			})
		}
	}
	p, _ := tapPipeline(t, 0, `
name: t
inputs:
  src: {type: seq}
processors:
  m1: {type: mark, from: src}
  m2: {type: mark, from: m1}
outputs:
  out: {type: sink, from: m2}
`, map[string]func(runtime.Env) runtime.Processor{"m1": mark("m1"), "m2": mark("m2")})
	if stages := len(p.Stages()); stages != 3 {
		t.Fatalf("%d stages, want m1 and m2 fused (3)", stages)
	}
	want := map[string][]string{ // fields present, then absent
		"src": {"", "m1"},
		"m1":  {"m1", "m2"},
		"m2":  {"m2", ""},
		"out": {"m2", ""},
	}
	subs := map[string]*runtime.Subscription{}
	for node := range want {
		s, err := p.Tap(node, runtime.TapOptions{Rate: runtime.MaxTapRate})
		if err != nil {
			t.Fatal(err)
		}
		subs[node] = s
	}
	runAsync(t, p)
	for node, fields := range want {
		for range 5 {
			te := next(t, subs[node])
			v := string(te.Value)
			if te.Node != node || te.Seen == 0 || te.Offset < 0 {
				t.Errorf("tap of %s: event %+v", node, te)
			}
			if fields[0] != "" && !strings.Contains(v, `"`+fields[0]+`":true`) {
				t.Errorf("tap of %s: %s lacks %s", node, v, fields[0])
			}
			if fields[1] != "" && strings.Contains(v, `"`+fields[1]+`"`) {
				t.Errorf("tap of %s: %s already has %s", node, v, fields[1])
			}
			idOf(t, te)
		}
	}
}

// echoOp is an operator that emits a copy of every event it absorbs.
type echoOp struct{}

func (echoOp) Process(_ context.Context, evs []event.Event, out *runtime.Collector) error {
	for i := range evs {
		out.Emit(event.Event{Value: append([]byte(nil), evs[i].Value...), Key: []byte("k"), Time: 42, Offset: evs[i].Offset})
	}
	return nil
}

func (echoOp) Advance(context.Context, int64, int64, *runtime.Collector) error { return nil }

type opFactory struct{ factory }

func (f *opFactory) IsOperator(n *dag.Node) bool { return n.Name == "op" }

func (f *opFactory) NewOperator(*dag.Node, runtime.Env) (runtime.Operator, error) {
	return echoOp{}, nil
}

// An operator's tap shows its results.
func TestTapOperator(t *testing.T) {
	g := graph(t, `
name: t
inputs:
  src: {type: seq}
processors:
  op: {type: echo, from: src}
outputs:
  out: {type: sink, from: op}
`)
	var emitted, acked atomic.Int64
	f := &opFactory{factory{
		inputs: map[string]func(runtime.Env) runtime.Input{"src": func(env runtime.Env) runtime.Input {
			return &seqInput{env: env, keys: 10, emitted: &emitted, acked: &acked}
		}},
		outputs: map[string]*sink{"out": {}},
	}}
	p, err := runtime.New(g, f, runtime.Options{BatchSize: 64, Linger: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Tap("op", runtime.TapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	runAsync(t, p)
	for range 5 {
		te := next(t, s)
		if string(te.Key) != "k" || te.Time != 42 {
			t.Errorf("operator tap event key %q time %d, want the operator's result (k, 42)", te.Key, te.Time)
		}
		idOf(t, te)
	}
}

// A paused subscription samples nothing; resumed, it samples again. A
// closed one samples nothing and Next says so.
func TestTapPauseResumeClose(t *testing.T) {
	p, _ := tapPipeline(t, 0, srcToOut, nil)
	s, err := p.Tap("src", runtime.TapOptions{Rate: runtime.MaxTapRate})
	if err != nil {
		t.Fatal(err)
	}
	runAsync(t, p)
	next(t, s)
	s.Pause()
	if !s.Paused() {
		t.Fatal("Paused() = false after Pause")
	}
	time.Sleep(20 * time.Millisecond) // batches in the middle of sampling finish
	for s.Pending() > 0 {
		next(t, s)
	}
	sampled := s.Stats().Sampled
	time.Sleep(100 * time.Millisecond)
	if st := s.Stats(); st.Sampled != sampled || s.Pending() != 0 {
		t.Errorf("paused: sampled went from %d to %d, %d pending", sampled, st.Sampled, s.Pending())
	}
	s.Resume()
	next(t, s)

	if s.Ended() {
		t.Fatal("Ended() before Close")
	}
	s.Close()
	s.Close()
	if !s.Ended() {
		t.Fatal("Ended() = false after Close")
	}
	for s.Pending() > 0 {
		next(t, s)
	}
	if _, err := s.Next(context.Background()); !errors.Is(err, runtime.ErrTapClosed) {
		t.Errorf("Next after Close = %v, want ErrTapClosed", err)
	}
	time.Sleep(20 * time.Millisecond) // batches in the middle of sampling finish
	sampled = s.Stats().Sampled
	time.Sleep(100 * time.Millisecond)
	if got := s.Stats().Sampled; got != sampled {
		t.Errorf("closed subscription still sampled: %d → %d", sampled, got)
	}
}

// Large values are cut, and the copy shares nothing with the pipeline.
func TestTapTruncatesLargeValues(t *testing.T) {
	g := graph(t, srcToOut)
	big := []byte(`{"id":1,"pad":"` + strings.Repeat("x", 2*runtime.TapValueLimit) + `"}`)
	f := &anyFactory{n: 64, value: func(int) []byte { return big }, proc: nil}
	p, err := runtime.New(g, f, runtime.Options{BatchSize: 16})
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Tap("src", runtime.TapOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	te := next(t, s)
	if !te.Truncated || len(te.Value) != runtime.TapValueLimit || !strings.HasPrefix(string(te.Value), `{"id":1,"pad":"xxx`) {
		t.Errorf("tapped %d bytes (truncated %v), want the first %d", len(te.Value), te.Truncated, runtime.TapValueLimit)
	}
	te.Value[0] = '!'
	if big[0] != '{' {
		t.Error("the tapped value aliases the event's bytes")
	}
}

// The bytes a subscription holds are bounded too, whatever its Buffer.
func TestTapBytesBound(t *testing.T) {
	g := graph(t, srcToOut)
	val := []byte(`{"id":1,"pad":"` + strings.Repeat("x", 60<<10) + `"}`)
	f := &anyFactory{n: 200, value: func(int) []byte { return val }}
	p, err := runtime.New(g, f, runtime.Options{BatchSize: 10})
	if err != nil {
		t.Fatal(err)
	}
	s, err := p.Tap("src", runtime.TapOptions{Rate: runtime.MaxTapRate, Buffer: runtime.MaxTapBuffer})
	if err != nil {
		t.Fatal(err)
	}
	if err := p.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	st := s.Stats()
	t.Logf("%d pending, %d bytes; %+v", s.Pending(), s.QueuedBytes(), st)
	if s.QueuedBytes() > runtime.TapQueueBytes || st.Dropped == 0 || s.Pending() >= 200 {
		t.Errorf("%d events of 60 KiB pending (%d bytes), stats %+v: want at most %d bytes held, the rest dropped", s.Pending(), s.QueuedBytes(), st, runtime.TapQueueBytes)
	}
}

func TestTapErrors(t *testing.T) {
	p, _ := tapPipeline(t, 10, srcToOut, nil)
	if _, err := p.Tap("nope", runtime.TapOptions{}); !errors.Is(err, runtime.ErrUnknownNode) || !strings.Contains(err.Error(), `"nope"`) {
		t.Errorf("Tap of an unknown node = %v", err)
	}
	for _, o := range []runtime.TapOptions{{Rate: runtime.MaxTapRate + 1}, {Rate: -1}, {Buffer: -1}, {Buffer: runtime.MaxTapBuffer + 1}} {
		if _, err := p.Tap("src", o); err == nil {
			t.Errorf("Tap with %+v succeeded", o)
		}
	}
	var subs []*runtime.Subscription
	for range runtime.MaxTapsPerNode {
		s, err := p.Tap("src", runtime.TapOptions{})
		if err != nil {
			t.Fatal(err)
		}
		subs = append(subs, s)
	}
	if _, err := p.Tap("src", runtime.TapOptions{}); !errors.Is(err, runtime.ErrTooManyTaps) {
		t.Errorf("tap %d = %v, want ErrTooManyTaps", runtime.MaxTapsPerNode+1, err)
	}
	subs[0].Close()
	s, err := p.Tap("src", runtime.TapOptions{})
	if err != nil {
		t.Fatalf("Tap after closing one: %v", err)
	}
	s.Close()
}

// Subscribers on several nodes, opened and closed while the pipeline runs
// with parallel instances, under -race.
func TestTapConcurrentSubscribers(t *testing.T) {
	g := graph(t, `
name: t
inputs:
  src: {type: seq, parallelism: 2}
processors:
  a: {type: pass, from: src, parallelism: 2}
outputs:
  out: {type: sink, from: a, parallelism: 2}
`)
	var emitted, acked atomic.Int64
	f := &factory{
		inputs: map[string]func(runtime.Env) runtime.Input{"src": func(env runtime.Env) runtime.Input {
			return &seqInput{env: env, keys: 10, emitted: &emitted, acked: &acked}
		}},
		procs:   map[string]func(runtime.Env) runtime.Processor{"a": passThrough},
		outputs: map[string]*sink{"out": {}},
	}
	p, err := runtime.New(g, f, runtime.Options{BatchSize: 64})
	if err != nil {
		t.Fatal(err)
	}
	stop := runAsync(t, p)
	var wg sync.WaitGroup
	for i := range 6 {
		wg.Go(func() {
			node := []string{"src", "a", "out"}[i%3]
			for range 5 {
				s, err := p.Tap(node, runtime.TapOptions{Rate: runtime.MaxTapRate, Buffer: 4})
				if err != nil {
					t.Error(err)
					return
				}
				for range 3 {
					next(t, s)
				}
				s.Close()
			}
		})
	}
	wg.Wait()
	if err := stop(); err != nil {
		t.Fatal(err)
	}
}

// BenchmarkTapOverhead is the throughput of src → p1+p2+p3 (fused) → out
// with no tap, with a tail open on the chain's last node at the highest
// rate (read as fast as it comes, as the control plane's tail does), and
// with one on every node, the inner chain nodes included. One op is one
// event; compare ns/event (throughput) and cpu-ns/event (the CPU the
// whole process spent per event, the tail readers included: steadier than
// wall time on a shared machine).
func BenchmarkTapOverhead(b *testing.B) {
	val := []byte(`{"id":1,"k":"a","user":{"name":"x","email":"x@example.com"},"price":12.5}`)
	yaml := `
name: bench
inputs:
  src: {type: fixed}
processors:
  p1: {type: pass, from: src}
  p2: {type: pass, from: p1}
  p3: {type: pass, from: p2}
outputs:
  out: {type: sink, from: p3}
`
	for _, bc := range []struct {
		name  string
		nodes []string
	}{
		{"none", nil},
		{"tail", []string{"p3"}},
		{"every-node", []string{"src", "p1", "p2", "p3", "out"}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			g := graph(b, yaml)
			f := &anyFactory{n: b.N, value: func(int) []byte { return val }, proc: func() runtime.Processor { return passThrough(runtime.Env{}) }}
			p, err := runtime.New(g, f, runtime.Options{BatchSize: 256, Linger: 20 * time.Millisecond})
			if err != nil {
				b.Fatal(err)
			}
			var readers sync.WaitGroup
			var read atomic.Int64
			for _, node := range bc.nodes {
				s, err := p.Tap(node, runtime.TapOptions{Rate: runtime.MaxTapRate})
				if err != nil {
					b.Fatal(err)
				}
				readers.Go(func() {
					for {
						if _, err := s.Next(context.Background()); err != nil {
							return
						}
						read.Add(1)
					}
				})
			}
			b.ReportAllocs()
			b.ResetTimer()
			cpu0 := cpuTime()
			if err := p.Run(context.Background()); err != nil {
				b.Fatal(err)
			}
			readers.Wait() // Run closed the taps
			cpu := cpuTime() - cpu0
			b.StopTimer()
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/event")
			b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/event")
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds()/1e6, "Mevents/s")
			if len(bc.nodes) > 0 {
				b.ReportMetric(float64(read.Load())/b.Elapsed().Seconds(), "tapped/s")
			}
		})
	}
}
