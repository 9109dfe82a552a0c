package reliability

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/weir-dev/weir/internal/app"
	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/processor/keyed"
	"github.com/weir-dev/weir/internal/runtime"
)

// counter emits, for each event, the running count of its key.
type counter struct{ by string }

func (c counter) OnEvent(ctx *keyed.Context[int], _ *event.Event) error {
	n := ctx.State()
	*n++
	ctx.Emit(fmt.Appendf(nil, `{"k":%q,"n":%d,"by":%q}`, ctx.Key(), *n, c.by), 0)
	return nil
}

func (counter) OnTimer(*keyed.Context[int], keyed.Timer) error { return nil }

// withCounter builds the node "count" as a keyed counter (declared as a
// window in the file, so that it is an operator with key_by).
type withCounter struct {
	runtime.Factory
}

func (f withCounter) IsOperator(n *dag.Node) bool {
	return n.Name == "count" || f.Factory.(runtime.OperatorFactory).IsOperator(n)
}

func (f withCounter) NewOperator(n *dag.Node, env runtime.Env) (runtime.Operator, error) {
	if n.Name == "count" {
		return keyed.New[int](counter{by: env.Pipeline}, env, true, keyed.Options{}), nil
	}
	return f.Factory.(runtime.OperatorFactory).NewOperator(n, env)
}

// TestKeyedStateFollowsPartitions: two pipelines of one consumer group in
// one process (each its own state directory, as two processes would have)
// count events per key with a keyed operator, exactly once into a topic.
// The second one joins mid-stream (half the partitions move to it), then
// the first one stops (the rest move). Every key's counts at the output
// must be exactly 1..n, each once: a count that restarted on the new owner
// (state left behind) repeats a number, one counted twice skips one.
func TestKeyedStateFollowsPartitions(t *testing.T) { testKeyedStateMoves(t, false) }

// TestRepartitionedStateFollowsPartitions is the same with the input
// partitioned by another key than the operator's: its key_by goes through
// a repartition topic (internal/app/repartition.go), whose partitions the
// state then follows.
func TestRepartitionedStateFollowsPartitions(t *testing.T) { testKeyedStateMoves(t, true) }

func testKeyedStateMoves(t *testing.T, repartitioned bool) {
	keyBy, recordKey := "key()", func(k string, _ int) string { return k }
	if repartitioned {
		keyBy, recordKey = "k", func(_ string, i int) string { return fmt.Sprintf("e%d", i) }
	}
	c, brokers, dir := groupCluster(t)

	start := func(name string) *running {
		return startPipeline(t, name, groupPipeline(name, dir, brokers, "counts", "count", fmt.Sprintf(`
  count:
    type: window
    from: in
    key_by: %s
    window: tumbling
    size: 1h
    aggregates: {n: count()}`, keyBy)), func(f runtime.Factory) runtime.Factory { return withCounter{f} })
	}

	src, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	const keys = 40
	produced := 0
	feed := func(n int) {
		recs := make([]*kgo.Record, 0, n)
		for range n {
			k := fmt.Sprintf("k%d", produced%keys)
			recs = append(recs, &kgo.Record{Key: []byte(recordKey(k, produced)), Value: fmt.Appendf(nil, `{"k":%q,"i":%d}`, k, produced)})
			produced++
		}
		if err := src.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	out, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("out"), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	type result struct {
		K  string `json:"k"`
		N  int    `json:"n"`
		By string `json:"by"`
	}
	var results []result
	await := func(what string) {
		deadline := time.Now().Add(90 * time.Second)
		for len(results) < produced {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d results of %d events", what, len(results), produced)
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			fs := out.PollFetches(ctx)
			cancel()
			fs.EachRecord(func(r *kgo.Record) {
				var res result
				if err := json.Unmarshal(r.Value, &res); err != nil {
					t.Fatalf("result %q: %v", r.Value, err)
				}
				results = append(results, res)
			})
		}
	}

	a := start("counts-a")
	feed(400)
	await("a alone")
	b := start("counts-b")
	for range 10 {
		feed(100)
		time.Sleep(200 * time.Millisecond)
	}
	await("a and b")
	stopPipeline(t, a)
	feed(600)
	await("b alone")
	stopPipeline(t, b)
	// Nothing more than one result per event: poll a little longer.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	out.PollFetches(ctx).EachRecord(func(r *kgo.Record) { t.Errorf("extra result %s", r.Value) })
	cancel()

	seen := map[string]map[int]int{}
	by := map[string]map[string]bool{}
	for _, r := range results {
		if seen[r.K] == nil {
			seen[r.K], by[r.K] = map[int]int{}, map[string]bool{}
		}
		seen[r.K][r.N]++
		by[r.K][r.By] = true
	}
	moved := 0
	for k, ns := range seen {
		total := produced / keys
		for n := 1; n <= total; n++ {
			if ns[n] != 1 {
				t.Errorf("key %s: count %d seen %d times (want once; counts 1..%d)", k, n, ns[n], total)
			}
		}
		if len(ns) != total {
			t.Errorf("key %s: %d distinct counts, want %d", k, len(ns), total)
		}
		if len(by[k]) == 2 {
			moved++
		}
	}
	if len(seen) != keys {
		t.Errorf("%d keys at the output, want %d", len(seen), keys)
	}
	if moved == 0 {
		t.Error("no key was counted by both pipelines: no partition moved")
	}
	restores := a.restores() + b.restores()
	t.Logf("events=%d results=%d keys=%d keys_moved=%d partition_restores=%d", produced, len(results), len(seen), moved, restores)
	if restores == 0 {
		t.Error("no partition state was restored")
	}
}

// running is a pipeline started by startPipeline.
type running struct {
	cancel context.CancelFunc
	done   chan error
	reg    *prometheus.Registry
}

// restores is how many partitions' state the pipeline restored.
func (r *running) restores() int {
	mfs, _ := r.reg.Gather()
	for _, mf := range mfs {
		if mf.GetName() == "weir_state_restored_partitions_total" {
			return int(mf.GetMetric()[0].GetCounter().GetValue())
		}
	}
	return 0
}

// startPipeline runs the pipeline of yaml in this process, its factory
// wrapped by wrap (nil: as is).
func startPipeline(t *testing.T, name, yaml string, wrap func(runtime.Factory) runtime.Factory) *running {
	t.Helper()
	l, err := app.LoadBytes(name+".yaml", []byte(yaml))
	if err != nil {
		t.Fatal(err)
	}
	store, closeStore, err := l.OpenState(slog.Default())
	if err != nil {
		t.Fatal(err)
	}
	opts := l.RuntimeOptions()
	opts.Store = store
	opts.Logger = slog.New(slog.NewTextHandler(testWriter{t}, &slog.HandlerOptions{Level: slog.LevelInfo}))
	reg := prometheus.NewRegistry()
	opts.Registerer = reg
	f := l.Factory()
	if wrap != nil {
		f = wrap(f)
	}
	p, err := runtime.New(l.Graph, f, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{cancel: cancel, done: make(chan error, 1), reg: reg}
	go func() {
		err := p.Run(ctx)
		if cerr := closeStore(); err == nil {
			err = cerr
		}
		r.done <- err
	}()
	return r
}

// stopPipeline stops r as a signal would, and fails on its error.
func stopPipeline(t *testing.T, r *running) {
	t.Helper()
	r.cancel()
	select {
	case err := <-r.done:
		if err != nil {
			t.Fatalf("pipeline: %v", err)
		}
	case <-time.After(60 * time.Second):
		t.Fatal("pipeline did not stop")
	}
}

// waitUntil polls cond for up to d.
func waitUntil(t *testing.T, what string, d time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("%s: not within %s", what, d)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// TestDedupStateFollowsPartitions: two pipelines of one consumer group drop
// duplicate ids (a dedup processor) exactly once into a topic. Copies of
// ids the first one saw arrive after their partitions moved to the second,
// which must know those ids from the changelog: every id reaches the
// output exactly once.
func TestDedupStateFollowsPartitions(t *testing.T) {
	c, brokers, dir := groupCluster(t)
	start := func(name string) *running {
		return startPipeline(t, name, groupPipeline(name, dir, brokers, "dedup", "unique", `
  unique:
    type: dedup
    from: in
    key: id
    tenant: '"t"'`), nil)
	}
	src, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// ids from..to-1, each as a record keyed by its id.
	feed := func(from, to int) {
		var recs []*kgo.Record
		for i := from; i < to; i++ {
			id := fmt.Sprintf("x%d", i)
			recs = append(recs, &kgo.Record{Key: []byte(id), Value: fmt.Appendf(nil, `{"id":%q}`, id)})
		}
		if err := src.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	out, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics("out"), kgo.FetchIsolationLevel(kgo.ReadCommitted()))
	if err != nil {
		t.Fatal(err)
	}
	defer out.Close()
	seen := map[string]int{}
	total := 0
	await := func(want int) {
		deadline := time.Now().Add(60 * time.Second)
		for {
			ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
			fs := out.PollFetches(ctx)
			cancel()
			n := 0
			fs.EachRecord(func(r *kgo.Record) {
				var v struct{ ID string }
				if err := json.Unmarshal(r.Value, &v); err != nil {
					t.Fatalf("result %q: %v", r.Value, err)
				}
				seen[v.ID]++
				n++
			})
			total += n
			if total >= want && n == 0 {
				return // and half a second without more
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d results of %d", total, want)
			}
		}
	}

	a := start("dedup-a")
	feed(0, 600)
	await(600)
	b := start("dedup-b")
	waitUntil(t, "partitions moved to b", 30*time.Second, func() bool { return b.restores() > 0 })
	feed(0, 1200) // copies of 0..599, new 600..1199
	await(1200)
	stopPipeline(t, a)
	waitUntil(t, "every partition at b", 30*time.Second, func() bool { return b.restores() >= 6 })
	feed(0, 1800) // copies of 0..1199, new 1200..1799
	await(1800)
	stopPipeline(t, b)

	dups := 0
	for i := range 1800 {
		if n := seen[fmt.Sprintf("x%d", i)]; n != 1 {
			dups += max(n-1, 0)
			if n == 0 {
				t.Errorf("id x%d: not at the output", i)
			}
		}
	}
	t.Logf("ids=1800 results=%d dups_passed=%d restores_a=%d restores_b=%d", total, dups, a.restores(), b.restores())
	if dups != 0 || total != 1800 {
		t.Fatalf("%d results for 1800 ids: %d duplicates passed", total, dups)
	}
}

// groupCluster starts a broker with 6-partition topics in and out, and
// returns it, its address list for YAML and a directory for state.
func groupCluster(t *testing.T) (*kfake.Cluster, string, string) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(6, "in", "out"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c, strings.Join(c.ListenAddrs(), ", "), t.TempDir()
}

// groupPipeline is the YAML of a pipeline of consumer group group: kafka
// topic in → the processors (node last feeds the output) → topic out,
// exactly once, checkpoints every 100 ms.
func groupPipeline(name, dir, brokers, group, last, processors string) string {
	return fmt.Sprintf(`
name: %[1]s
control: {address: ""}
status: off
state:
  dir: %[2]s/%[1]s
  checkpoint_interval: 100ms
inputs:
  in:
    type: kafka
    brokers: [%[3]s]
    topics: [in]
    group: %[4]s
    session_timeout: 6s
    heartbeat_interval: 500ms
    rebalance_timeout: 10s
processors:%[6]s
outputs:
  out:
    type: kafka
    from: %[5]s
    brokers: [%[3]s]
    topic: out
    guarantee: exactly_once
`, name, dir, brokers, group, last, processors)
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}
