package kafka_test

import (
	"context"
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/connector/kafka"
	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/runtime"
)

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkKafkaToKafka: kafka → filter → kafka against the in-process
// kfake broker (which runs in this process and takes its share of the
// CPU: the per-core figure includes the broker's work). Reports events/s
// and events per CPU second of the whole process.
func BenchmarkKafkaToKafka(b *testing.B) {
	const n = 200_000
	for range b.N {
		brokers := cluster(b, "in", "out")
		cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("in"))
		if err != nil {
			b.Fatal(err)
		}
		for i := 0; i < n; i += 10_000 {
			recs := make([]*kgo.Record, 0, 10_000)
			for j := i; j < i+10_000; j++ {
				recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, `{"id":%d,"even":%t,"user":"u_%d","page":"/products/%d"}`, j, j%2 == 0, j%977, j%5000)})
			}
			if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
				b.Fatal(err)
			}
		}
		cl.Close()
		in := kafka.DefaultInputConfig()
		in.Brokers, in.Topics, in.Group = brokers, []string{"in"}, "bench"
		out := kafka.DefaultOutputConfig()
		out.Brokers, out.Topic = brokers, "out"
		p, err := config.Parse("k.yaml", []byte(pipelineYAML))
		if err != nil {
			b.Fatal(err)
		}
		g, err := dag.Build(p)
		if err != nil {
			b.Fatal(err)
		}
		pl, err := runtime.New(g, factory{in: in, out: out}, runtime.Options{})
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
