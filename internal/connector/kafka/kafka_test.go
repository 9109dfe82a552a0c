package kafka_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/connector/kafka"
	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/processor"
	"github.com/weir-dev/weir/internal/runtime"
)

// cluster starts an in-process Kafka-protocol broker (franz-go's kfake)
// with the given topics of 4 partitions each.
func cluster(t *testing.T, topics ...string) []string {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(4, topics...))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c.ListenAddrs()
}

func produce(t *testing.T, brokers []string, topic string, from, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic(topic))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var recs []*kgo.Record
	for i := from; i < from+n; i++ {
		recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%13), Value: fmt.Appendf(nil, `{"id":%d,"even":%t}`, i, i%2 == 0)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
}

// consumeAll reads topic from the start until it has want records or the
// deadline passes; it returns the values.
func consumeAll(t *testing.T, brokers []string, topic string, want int) []string {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []string
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	for len(out) < want && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
	}
	return out
}

type factory struct {
	in  kafka.InputConfig
	out kafka.OutputConfig
}

func (f factory) NewInput(_ *dag.Node, env runtime.Env) (runtime.Input, error) {
	return kafka.NewInput(f.in, env)
}
func (f factory) NewProcessor(n *dag.Node, _ runtime.Env) (runtime.Processor, error) {
	var cfg processor.FilterConfig
	if errs := n.Config.Decode(&cfg); len(errs) > 0 {
		return nil, errs
	}
	flt, errs := processor.CompileFilter(cfg, n.Name)
	if len(errs) > 0 {
		return nil, errs
	}
	return flt.New(), nil
}
func (f factory) NewOutput(_ *dag.Node, env runtime.Env) (runtime.Output, error) {
	return kafka.NewOutput(f.out, env)
}

const pipelineYAML = `
name: k
control: {address: ""}
inputs:
  in: {type: kafka, parallelism: 2}
processors:
  evens: {type: filter, from: in, expr: even}
outputs:
  out: {type: kafka, from: evens}
`

// run runs kafka → filter → kafka until the output topic has want records
// more than before, then stops the pipeline gracefully.
func run(t *testing.T, f factory, brokers []string, wantTotal int) {
	t.Helper()
	p, err := config.Parse("k.yaml", []byte(pipelineYAML))
	if err != nil {
		t.Fatal(err)
	}
	g, err := dag.Build(p)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := runtime.New(g, f, runtime.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pl.Run(ctx) }()
	got := consumeAll(t, brokers, f.out.Topic, wantTotal)
	// A little longer, so that duplicates would show up.
	time.Sleep(200 * time.Millisecond)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if len(got) < wantTotal {
		t.Fatalf("output has %d records, want %d", len(got), wantTotal)
	}
}

// TestKafkaToKafka: records flow from a topic through a filter to another
// topic; a second run of the same group resumes after the committed
// offsets, so every record is in the output once.
func TestKafkaToKafka(t *testing.T) {
	brokers := cluster(t, "in", "out")
	produce(t, brokers, "in", 0, 2000)
	in := kafka.DefaultInputConfig()
	in.Brokers, in.Topics, in.Group = brokers, []string{"in"}, "weir-test"
	in.CommitInterval = 50 * time.Millisecond
	out := kafka.DefaultOutputConfig()
	out.Brokers, out.Topic = brokers, "out"
	f := factory{in: in, out: out}

	run(t, f, brokers, 1000)
	produce(t, brokers, "in", 2000, 1000)
	run(t, f, brokers, 1500)

	got := consumeAll(t, brokers, "out", 1500)
	seen := map[string]int{}
	for _, v := range got {
		seen[v]++
	}
	for i := 0; i < 3000; i += 2 {
		v := fmt.Sprintf(`{"id":%d,"even":true}`, i)
		if seen[v] != 1 {
			t.Fatalf("record %s is in the output %d times, want once (%d records in all)", v, seen[v], len(got))
		}
	}
	for v := range seen {
		if strings.Contains(v, `"even":false`) {
			t.Fatalf("odd record %s passed the filter", v)
		}
	}
	if len(got) != 1500 {
		t.Fatalf("output has %d records, want 1500", len(got))
	}
}
