package runtime_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
)

// cpuTime is the CPU time (user + system) the process has used.
func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// fixedInput emits n events of the given value as fast as it can, one Ack
// per batch: the cheapest possible source, so benchmarks see the runtime.
type fixedInput struct {
	env   runtime.Env
	n     int
	value func(i int) []byte
}

func (f *fixedInput) Run(ctx context.Context, out runtime.Outlet) error {
	for i := 0; i < f.n; {
		b := event.GetBatch()
		for len(b.Events) < f.env.BatchSize && i < f.n {
			b.Append(event.Event{Value: f.value(i), Offset: int64(i)})
			i++
		}
		ack := event.NewAck(len(b.Events), nil)
		for j := range b.Events {
			b.Events[j].Ack = ack
		}
		if err := out.Emit(ctx, b); err != nil {
			return err
		}
	}
	return nil
}

type nullOutput struct{}

func (nullOutput) Write(context.Context, []event.Event) error { return nil }
func (nullOutput) Flush(context.Context) error                { return nil }
func (nullOutput) Close(context.Context) error                { return nil }

type anyFactory struct {
	n     int
	value func(i int) []byte
	proc  func() runtime.Processor
}

func (f *anyFactory) NewInput(_ *dag.Node, env runtime.Env) (runtime.Input, error) {
	return &fixedInput{env: env, n: f.n / env.Parallelism, value: f.value}, nil
}

func (f *anyFactory) NewProcessor(*dag.Node, runtime.Env) (runtime.Processor, error) {
	return f.proc(), nil
}

func (f *anyFactory) NewOutput(*dag.Node, runtime.Env) (runtime.Output, error) {
	return nullOutput{}, nil
}

func runBench(b *testing.B, yaml string, value func(i int) []byte, proc func() runtime.Processor) {
	g := graph(b, yaml)
	f := &anyFactory{n: b.N, value: value, proc: proc}
	p, err := runtime.New(g, f, runtime.Options{BatchSize: 256, Linger: 20 * time.Millisecond})
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	cpu0 := cpuTime()
	if err := p.Run(context.Background()); err != nil {
		b.Fatal(err)
	}
	cpu := cpuTime() - cpu0
	b.StopTimer()
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/event")
	b.ReportMetric(float64(cpu.Nanoseconds())/float64(b.N), "cpu-ns/event")
}

// BenchmarkFusedChain measures the runtime's own cost per event for a
// chain of three fused processors that do nothing: queue hops, batching,
// acknowledgement, counters. One op is one event.
func BenchmarkFusedChain(b *testing.B) {
	val := []byte(`{"id":1,"k":"a"}`)
	runBench(b, `
name: bench
inputs:
  src: {type: fixed}
processors:
  p1: {type: pass, from: src}
  p2: {type: pass, from: p1}
  p3: {type: pass, from: p2}
outputs:
  out: {type: sink, from: p3}
`, func(int) []byte { return val }, func() runtime.Processor { return passThrough(runtime.Env{}) })
}

// BenchmarkKeyHashExchange measures a key-hash exchange between two stages
// (parallelism 1 → 2): key evaluation on the JSON value, hashing, splitting
// the batch, two queues. One op is one event.
func BenchmarkKeyHashExchange(b *testing.B) {
	vals := make([][]byte, 1024)
	for i := range vals {
		vals[i] = fmt.Appendf(nil, `{"id":%d,"user":"u_%d"}`, i, i%97)
	}
	runBench(b, `
name: bench
inputs:
  src: {type: fixed}
processors:
  p1: {type: pass, from: src, parallelism: 2, key_by: user}
outputs:
  out: {type: sink, from: p1, parallelism: 2}
`, func(i int) []byte { return vals[i%len(vals)] }, func() runtime.Processor { return passThrough(runtime.Env{}) })
}
