package kafka_test

import (
	"context"
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/connector/kafka"
	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/processor/window"
	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/state"
	"github.com/weir-dev/weir/internal/testkit"
)

const windowYAML = `
name: kw
control: {address: ""}
inputs:
  in: {type: kafka}
processors:
  counts: {type: window, from: in, key_by: key()}
outputs:
  out: {type: kafka, from: counts}
`

// windowFactory builds kafka → window (10 s tumbling counts per key) →
// kafka; hidden hides the window's runtime.KeyedState, so that its state
// stays in the process (no changelog).
type windowFactory struct {
	factory
	w      *window.Window
	hidden bool
}

type operatorState interface {
	runtime.Operator
	runtime.Stateful
}

// plainOp is an operator without runtime.KeyedState.
type plainOp struct{ operatorState }

func (f windowFactory) IsOperator(n *dag.Node) bool { return n.Name == "counts" }

func (f windowFactory) NewOperator(_ *dag.Node, env runtime.Env) (runtime.Operator, error) {
	op, err := f.w.New(env, true)
	if err != nil || !f.hidden {
		return op, err
	}
	return plainOp{op}, nil
}

// BenchmarkKafkaStateChangelog: kafka → window → kafka with exactly_once,
// the window's state changelogged (it follows partitions between
// processes) and not, each on its own fresh broker, alternating, in one
// run. 500,000 records with 977 keys, 1 ms of event time apart; a
// checkpoint every second. A run lasts until Run returned after a graceful
// stop requested once every record was read. Reports events/s of each and
// the ratio, and events per CPU second (the broker included).
func BenchmarkKafkaStateChangelog(b *testing.B) {
	const n = 500_000
	prev := dag.Fusable
	dag.Fusable = func(n *dag.Node) bool { return n.Kind == dag.Processor && n.Type != "window" }
	defer func() { dag.Fusable = prev }()
	w, errs := window.Compile(window.Config{Window: "tumbling", Size: 10 * time.Second, Time: "event", KeyField: "key", CacheBytes: 64 << 20,
		Aggregates: config.Ordered[config.Expr]{{Key: "n", Value: config.Expr{Src: "count()"}}}}, "counts", func(string) config.Pos { return config.Pos{} })
	if len(errs) > 0 {
		b.Fatal(errs)
	}
	compare(b, n, "local", "changelog", func(with bool) (time.Duration, time.Duration) { return changelogRun(b, n, w, with) })
}

func changelogRun(b *testing.B, n int, w *window.Window, changelog bool) (wall, cpu time.Duration) {
	b.Helper()
	brokers := cluster(b, "in", "out")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("in"))
	if err != nil {
		b.Fatal(err)
	}
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	for i := 0; i < n; i += 10_000 {
		recs := make([]*kgo.Record, 0, 10_000)
		for j := i; j < i+10_000; j++ {
			recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "u_%d", j%977), Value: fmt.Appendf(nil, `{"id":%d}`, j), Timestamp: base.Add(time.Duration(j) * time.Millisecond)})
		}
		if err := cl.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			b.Fatal(err)
		}
	}
	cl.Close()
	in := kafka.DefaultInputConfig()
	in.Brokers, in.Topics, in.Group = brokers, []string{"in"}, "bench"
	out := kafka.DefaultOutputConfig()
	out.Brokers, out.Topic, out.Guarantee = brokers, "out", kafka.ExactlyOnce
	st, err := state.Open(filepath.Join(b.TempDir(), "state"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	opts := runtime.Options{Store: testkit.StateStore(st), CheckpointInterval: time.Second}
	pl, err := runtime.New(testkit.Graph(b, windowYAML), windowFactory{factory: factory{in: in, out: out}, w: w, hidden: !changelog}, opts)
	if err != nil {
		b.Fatal(err)
	}
	return runUntil(b, pl, "in", n)
}
