package kafka_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/connector/file"
	"github.com/weir-dev/weir/internal/connector/kafka"
	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/processor"
	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/state"
	"github.com/weir-dev/weir/internal/testkit"
)

// cluster starts an in-process Kafka-protocol broker (franz-go's kfake)
// with the given topics of 4 partitions each.
func cluster(t testing.TB, topics ...string) []string {
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
	g := testkit.Graph(t, pipelineYAML)
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

type fileFactory struct {
	in  kafka.InputConfig
	dir string
}

func (f fileFactory) NewInput(_ *dag.Node, env runtime.Env) (runtime.Input, error) {
	return kafka.NewInput(f.in, env)
}
func (f fileFactory) NewProcessor(n *dag.Node, _ runtime.Env) (runtime.Processor, error) {
	return nil, fmt.Errorf("no processor %q", n.Name)
}
func (f fileFactory) NewOutput(_ *dag.Node, env runtime.Env) (runtime.Output, error) {
	c := file.DefaultOutputConfig()
	c.Dir, c.RotateBytes = f.dir, 4<<10
	return file.NewOutput(c, env)
}

// TestCheckpointedOffsetsExactlyOnce: with a state store, the input's
// offsets are part of each checkpoint, the file output publishes with it,
// and a pipeline stopped and restarted many times while records keep
// arriving writes each record exactly once.
func TestCheckpointedOffsetsExactlyOnce(t *testing.T) {
	brokers := cluster(t, "in")
	root := t.TempDir()
	in := kafka.DefaultInputConfig()
	in.Brokers, in.Topics, in.Group = brokers, []string{"in"}, "weir-ckpt"
	f := fileFactory{in: in, dir: filepath.Join(root, "out")}
	g := testkit.Graph(t, `
name: k
control: {address: ""}
inputs:
  in: {type: kafka, parallelism: 2}
outputs:
  out: {type: file, from: in}
`)
	const rounds, per = 8, 500
	for r := range rounds {
		produce(t, brokers, "in", r*per, per)
		st, err := state.Open(filepath.Join(root, "state"), nil)
		if err != nil {
			t.Fatal(err)
		}
		pl, err := runtime.New(g, f, runtime.Options{Store: testkit.StateStore(st), CheckpointInterval: 5 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(100+r*40)*time.Millisecond)
		if err := pl.Run(ctx); err != nil {
			t.Fatal(err)
		}
		cancel()
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	// A last run long enough to read the rest.
	st, err := state.Open(filepath.Join(root, "state"), nil)
	if err != nil {
		t.Fatal(err)
	}
	pl, err := runtime.New(g, f, runtime.Options{Store: testkit.StateStore(st), CheckpointInterval: 5 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pl.Run(ctx) }()
	deadline := time.Now().Add(20 * time.Second)
	for countLines(t, f.dir) < rounds*per && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	seen := map[string]int{}
	for _, l := range publishedLines(t, f.dir) {
		seen[l]++
	}
	for i := range rounds * per {
		v := fmt.Sprintf(`{"id":%d,"even":%t}`, i, i%2 == 0)
		if seen[v] != 1 {
			t.Fatalf("record %d is in the output %d times, want once", i, seen[v])
		}
	}
	if len(seen) != rounds*per {
		t.Fatalf("%d distinct records in the output, want %d", len(seen), rounds*per)
	}
}

func publishedLines(t *testing.T, dir string) []string {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(dir, "*.ndjson"))
	var out []string
	for _, fn := range files {
		data, err := os.ReadFile(fn)
		if err != nil {
			t.Fatal(err)
		}
		for l := range strings.SplitSeq(strings.TrimSpace(string(data)), "\n") {
			if l != "" {
				out = append(out, l)
			}
		}
	}
	return out
}

func countLines(t *testing.T, dir string) int { return len(publishedLines(t, dir)) }

// TestOutputKeyAndPartitionExpressions: the key and partition of each
// record come from expressions over the event.
func TestOutputKeyAndPartitionExpressions(t *testing.T) {
	brokers := cluster(t, "out")
	cfg := kafka.DefaultOutputConfig()
	cfg.Brokers, cfg.Topic = brokers, "out"
	cfg.Key = &config.Expr{Src: `concat("user-", user)`}
	cfg.Partition = &config.Expr{Src: "user % 4"}
	sp, errs := kafka.CompileOutput(cfg, "outputs.out")
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	o, err := sp.New(runtime.Env{})
	if err != nil {
		t.Fatal(err)
	}
	var evs []event.Event
	for i := range 40 {
		evs = append(evs, event.Event{Value: fmt.Appendf(nil, `{"user":%d}`, i)})
	}
	ctx := context.Background()
	if err := o.Write(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics("out"), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	n := 0
	pctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for n < 40 && pctx.Err() == nil {
		cl.PollFetches(pctx).EachRecord(func(r *kgo.Record) {
			var v struct{ User int32 }
			if err := json.Unmarshal(r.Value, &v); err != nil {
				t.Fatal(err)
			}
			if string(r.Key) != fmt.Sprintf("user-%d", v.User) || r.Partition != v.User%4 {
				t.Fatalf("record %s: key %q partition %d", r.Value, r.Key, r.Partition)
			}
			n++
		})
	}
	if n != 40 {
		t.Fatalf("read %d records, want 40", n)
	}
	// A partition that is not a number fails the batch before producing.
	bad := []event.Event{{Value: []byte(`{"user":"x"}`)}}
	o2, _ := sp.New(runtime.Env{})
	defer o2.Close(ctx)
	if err := o2.Write(ctx, bad); err == nil {
		t.Fatal("Write of an event without a partition number succeeded")
	}
}

// TestStartAtTime: a new group with start: time begins at the first record
// at or after start_time.
func TestStartAtTime(t *testing.T) {
	brokers := cluster(t, "in", "out")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("in"), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	if err != nil {
		t.Fatal(err)
	}
	base := time.Date(2024, 5, 1, 0, 0, 0, 0, time.UTC)
	var recs []*kgo.Record
	for i := range 20 {
		recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, `{"id":%d,"even":true}`, i), Timestamp: base.Add(time.Duration(i) * time.Minute)})
	}
	if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
		t.Fatal(err)
	}
	cl.Close()
	in := kafka.DefaultInputConfig()
	in.Brokers, in.Topics, in.Group = brokers, []string{"in"}, "from-time"
	in.Start, in.StartTime = "time", base.Add(15*time.Minute).Format(time.RFC3339)
	out := kafka.DefaultOutputConfig()
	out.Brokers, out.Topic = brokers, "out"
	run(t, factory{in: in, out: out}, brokers, 5)
	// The output spreads keyless records over its partitions: compare
	// the records, not their order.
	got := consumeAll(t, brokers, "out", 5)
	slices.Sort(got)
	want := []string{`{"id":15,"even":true}`, `{"id":16,"even":true}`, `{"id":17,"even":true}`, `{"id":18,"even":true}`, `{"id":19,"even":true}`}
	if !slices.Equal(got, want) {
		t.Fatalf("got %v, want ids 15..19", got)
	}
	bad := in
	bad.StartTime = "yesterday"
	if bad.Validate() == nil {
		t.Fatal("a bad start_time passed Validate")
	}
}

// The input's lag is the partition end minus what is acknowledged: all of
// it while the pipeline holds the records, none once they are written.
func TestInputLag(t *testing.T) {
	brokers := cluster(t, "in")
	produce(t, brokers, "in", 0, 500)
	cfg := kafka.DefaultInputConfig()
	cfg.Brokers, cfg.Topics, cfg.Group = brokers, []string{"in"}, "lag"
	in, err := kafka.NewInput(cfg, runtime.Env{Pipeline: "p", Node: "in"})
	if err != nil {
		t.Fatal(err)
	}
	out := &testkit.Outlet{ManualAck: true}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, out) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
		_ = in.Close(context.Background())
	}()
	wctx, wcancel := context.WithTimeout(ctx, 20*time.Second)
	defer wcancel()
	if err := out.WaitEvents(wctx, 500); err != nil {
		t.Fatal(err)
	}
	if lag := in.Lag(); lag != 500 {
		t.Errorf("lag with every record read and none acknowledged = %d, want 500", lag)
	}
	out.Ack()
	deadline := time.Now().Add(10 * time.Second)
	for in.Lag() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("lag %d after every record was acknowledged, want 0", in.Lag())
		}
		time.Sleep(10 * time.Millisecond)
	}
}
