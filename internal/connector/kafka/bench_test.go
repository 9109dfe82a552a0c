package kafka_test

import (
	"context"
	"fmt"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/internal/connector/kafka"
	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/state"
	"github.com/weir-dev/weir/internal/testkit"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// seedTopic starts a broker with topics in and out and writes n records
// to in, half of them with even true.
func seedTopic(b *testing.B, n int) []string {
	b.Helper()
	brokers := cluster(b, "in", "out")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("in"))
	if err != nil {
		b.Fatal(err)
	}
	defer cl.Close()
	for i := 0; i < n; i += 10_000 {
		recs := make([]*kgo.Record, 0, 10_000)
		for j := i; j < i+10_000; j++ {
			recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, `{"id":%d,"even":%t,"user":"u_%d","page":"/products/%d"}`, j, j%2 == 0, j%977, j%5000)})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}
	return brokers
}

// BenchmarkKafkaToKafka: kafka → filter → kafka against the in-process
// kfake broker (which runs in this process and takes its share of the
// CPU: the per-core figure includes the broker's work). Reports events/s
// and events per CPU second of the whole process.
func BenchmarkKafkaToKafka(b *testing.B) {
	const n = 200_000
	for range b.N {
		brokers := seedTopic(b, n)
		in := kafka.DefaultInputConfig()
		in.Brokers, in.Topics, in.Group = brokers, []string{"in"}, "bench"
		out := kafka.DefaultOutputConfig()
		out.Brokers, out.Topic = brokers, "out"
		pl, err := runtime.New(testkit.Graph(b, pipelineYAML), factory{in: in, out: out}, runtime.Options{})
		if err != nil {
			b.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		t0, c0 := time.Now(), cpuTime()
		go func() { done <- pl.Run(ctx) }()
		for pl.Node("out").Out.Load() < n/2 {
			time.Sleep(time.Millisecond)
		}
		wall, cpu := time.Since(t0), cpuTime()-c0
		cancel()
		if err := <-done; err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(n)/wall.Seconds(), "events/s")
		b.ReportMetric(float64(n)/cpu.Seconds(), "events/cpu-s")
	}
}

// BenchmarkKafkaGuarantees: the same kafka → filter → kafka pipeline with
// guarantee at_least_once (no state store) and exactly_once (a Pebble
// state store, a checkpoint and a transaction per output instance every
// second), each on its own fresh broker, in the same run; the order
// alternates between iterations. A run lasts from the start until Run has
// returned after a graceful stop, which is requested once every record is
// written: with exactly_once that includes the final checkpoint, which
// commits the last transactions, so every record is visible to
// read_committed consumers when the clock stops. Reports events/s of each
// and the ratio, and the same per CPU second of the whole process (the
// broker included).
func BenchmarkKafkaGuarantees(b *testing.B) {
	const n = 1_000_000
	compare(b, n, "alo", "eos", func(exactly bool) (time.Duration, time.Duration) { return guaranteeRun(b, n, exactly) })
}

// compare runs the variants a (run(false)) and b (run(true)) of n events
// b.N times each, alternating which goes first, and reports the events/s
// of each, per wall and per CPU second, and the ratios b/a.
func compare(b *testing.B, n int, a, bn string, run func(second bool) (wall, cpu time.Duration)) {
	var wall, cpu [2]time.Duration
	for i := range b.N {
		for k := range 2 {
			j := (i + k) % 2
			w, c := run(j == 1)
			wall[j] += w
			cpu[j] += c
		}
	}
	rate := func(d time.Duration) float64 { return float64(n*b.N) / d.Seconds() }
	b.ReportMetric(rate(wall[0]), a+"-events/s")
	b.ReportMetric(rate(wall[1]), bn+"-events/s")
	b.ReportMetric(rate(wall[1])/rate(wall[0]), bn+"/"+a)
	b.ReportMetric(rate(cpu[0]), a+"-events/cpu-s")
	b.ReportMetric(rate(cpu[1]), bn+"-events/cpu-s")
	b.ReportMetric(rate(cpu[1])/rate(cpu[0]), bn+"/"+a+"-cpu")
}

func guaranteeRun(b *testing.B, n int, exactly bool) (wall, cpu time.Duration) {
	b.Helper()
	brokers := seedTopic(b, n)
	in := kafka.DefaultInputConfig()
	in.Brokers, in.Topics, in.Group = brokers, []string{"in"}, "bench"
	out := kafka.DefaultOutputConfig()
	out.Brokers, out.Topic = brokers, "out"
	opts := runtime.Options{}
	if exactly {
		out.Guarantee = kafka.ExactlyOnce
		st, err := state.Open(filepath.Join(b.TempDir(), "state"), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer st.Close()
		opts.Store, opts.CheckpointInterval = testkit.StateStore(st), time.Second
	}
	pl, err := runtime.New(testkit.Graph(b, pipelineYAML), factory{in: in, out: out}, opts)
	if err != nil {
		b.Fatal(err)
	}
	return runUntil(b, pl, "out", n/2)
}

// runUntil runs pl until node has emitted n events, then stops it
// gracefully and returns the wall and CPU time from start to stop.
func runUntil(b *testing.B, pl *runtime.Pipeline, node string, n int) (wall, cpu time.Duration) {
	b.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	t0, c0 := time.Now(), cpuTime()
	go func() { done <- pl.Run(ctx) }()
	for pl.Node(node).Out.Load() < uint64(n) {
		time.Sleep(time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		b.Fatal(err)
	}
	return time.Since(t0), cpuTime() - c0
}
