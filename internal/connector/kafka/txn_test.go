package kafka_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"github.com/twmb/franz-go/pkg/kversion"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/connector/kafka"
	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/processor"
	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/state"
	"github.com/weir-dev/weir/internal/testkit"
)

// eosFactory builds kafka → map → kafka pipelines.
type eosFactory struct {
	in  kafka.InputConfig
	out kafka.OutputConfig
}

func (f eosFactory) NewInput(_ *dag.Node, env runtime.Env) (runtime.Input, error) {
	return kafka.NewInput(f.in, env)
}
func (f eosFactory) NewProcessor(n *dag.Node, _ runtime.Env) (runtime.Processor, error) {
	var cfg processor.MapConfig
	if errs := n.Config.Decode(&cfg); len(errs) > 0 {
		return nil, errs
	}
	m, errs := processor.CompileMap(cfg, n.Name, func(string) config.Pos { return config.Pos{} })
	if len(errs) > 0 {
		return nil, errs
	}
	return m.New(), nil
}
func (f eosFactory) NewOutput(_ *dag.Node, env runtime.Env) (runtime.Output, error) {
	return kafka.NewOutput(f.out, env)
}

const eosYAML = `
name: eos
control: {address: ""}
inputs:
  in: {type: kafka, parallelism: 2}
processors:
  tag: {type: map, from: in, set: {mapped: "true"}}
outputs:
  out: {type: kafka, from: tag, parallelism: 2}
`

// readTopic reads topic from the start, with read_committed isolation or
// not, until it has want records and then for quiet more (so that
// duplicates show), or until 20 s have passed.
func readTopic(t *testing.T, brokers []string, topic string, committed bool, want int, quiet time.Duration) []string {
	t.Helper()
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumeTopics(topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []string
	deadline := time.Now().Add(20 * time.Second)
	var enough time.Time
	for time.Now().Before(deadline) {
		if len(out) >= want && enough.IsZero() {
			enough = time.Now()
		}
		if !enough.IsZero() && time.Since(enough) >= quiet {
			break
		}
		ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) { out = append(out, string(r.Value)) })
		cancel()
	}
	return out
}

// ids returns how many times each "id" occurs in the JSON values.
func ids(t *testing.T, vals []string) map[int]int {
	t.Helper()
	seen := map[int]int{}
	for _, v := range vals {
		var r struct{ ID int }
		if err := json.Unmarshal([]byte(v), &r); err != nil {
			t.Fatalf("record %q: %v", v, err)
		}
		seen[r.ID]++
	}
	return seen
}

// faultyStore fails the n-th checkpoint in which the output "out" records
// a transaction: before its write (the checkpoint is not durable) or after
// it (durable, but the components never hear of it: Committed is not
// called, as after a crash between the two).
type faultyStore struct {
	runtime.StateStore
	at     int  // 1-based; 0: never
	after  bool // fail after the durable write
	seen   int
	failed bool
}

func (s *faultyStore) Begin() runtime.StateTxn {
	return &faultyTxn{StateTxn: s.StateStore.Begin(), s: s}
}

type faultyTxn struct {
	runtime.StateTxn
	s      *faultyStore
	outTxn bool
}

func (t *faultyTxn) Writer(node string) runtime.StateWriter {
	w := t.StateTxn.Writer(node)
	if node != "out" {
		return w
	}
	return spyWriter{StateWriter: w, set: &t.outTxn}
}

func (t *faultyTxn) Commit(id uint64) error {
	if t.outTxn {
		t.s.seen++
	}
	fail := t.s.at > 0 && t.s.seen == t.s.at && t.outTxn && !t.s.failed
	if fail && !t.s.after {
		t.s.failed = true
		t.Abort()
		return errors.New("injected: crash before the checkpoint is durable")
	}
	if err := t.StateTxn.Commit(id); err != nil {
		return err
	}
	if fail {
		t.s.failed = true
		return errors.New("injected: crash after the checkpoint is durable")
	}
	return nil
}

type spyWriter struct {
	runtime.StateWriter
	set *bool
}

func (w spyWriter) Set(k, v []byte) error {
	*w.set = true
	return w.StateWriter.Set(k, v)
}

// TestExactlyOnceKafkaToKafka: kafka → map → kafka with exactly_once and
// checkpoints every 10 ms, run many times while records keep arriving:
// stopped gracefully, failed by a checkpoint whose write did not happen,
// and failed by one whose write happened but whose transactions were never
// committed (a crash between the two). A read_committed consumer of the
// output sees every input record exactly once.
// eosLinkedYAML has one output instance: it commits the input's offsets in
// its transactions (the group's offsets are where partitions start).
const eosLinkedYAML = `
name: eos
control: {address: ""}
inputs:
  in: {type: kafka, parallelism: 2}
processors:
  tag: {type: map, from: in, set: {mapped: "true"}}
outputs:
  out: {type: kafka, from: tag, parallelism: 1}
`

// TestExactlyOnceKafkaToKafka runs with offsets in the checkpoint (two
// output instances) and in the output's transactions (one).
func TestExactlyOnceKafkaToKafka(t *testing.T) {
	t.Run("checkpoint-offsets", func(t *testing.T) { testExactlyOnceKafkaToKafka(t, eosYAML) })
	t.Run("transaction-offsets", func(t *testing.T) { testExactlyOnceKafkaToKafka(t, eosLinkedYAML) })
}

func testExactlyOnceKafkaToKafka(t *testing.T, yaml string) {
	brokers := cluster(t, "in", "out")
	root := t.TempDir()
	in := kafka.DefaultInputConfig()
	in.Brokers, in.Topics, in.Group = brokers, []string{"in"}, "eos"
	out := kafka.DefaultOutputConfig()
	out.Brokers, out.Topic, out.Guarantee = brokers, "out", kafka.ExactlyOnce
	out.TransactionTimeout = 10 * time.Second
	f := eosFactory{in: in, out: out}
	g := testkit.Graph(t, yaml)
	open := func(fs *faultyStore) (*runtime.Pipeline, *state.Store) {
		st, err := state.Open(filepath.Join(root, "state"), nil)
		if err != nil {
			t.Fatal(err)
		}
		fs.StateStore = testkit.StateStore(st)
		pl, err := runtime.New(g, f, runtime.Options{Store: fs, CheckpointInterval: 10 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		return pl, st
	}
	const rounds, per = 6, 400
	failures := 0
	src, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	for r := range rounds {
		// The round's records arrive in 8 bursts while the pipeline runs.
		produced := make(chan error, 1)
		go func() {
			for b := range 8 {
				var recs []*kgo.Record
				for i := r*per + b*per/8; i < r*per+(b+1)*per/8; i++ {
					recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%13), Value: fmt.Appendf(nil, `{"id":%d}`, i)})
				}
				if err := src.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
					produced <- err
					return
				}
				time.Sleep(25 * time.Millisecond)
			}
			produced <- nil
		}()
		fs := &faultyStore{}
		switch r % 3 {
		case 1:
			fs.at = 2
		case 2:
			fs.at, fs.after = 2, true
		}
		pl, st := open(fs)
		ctx, cancel := context.WithTimeout(context.Background(), time.Duration(400+r*30)*time.Millisecond)
		err := pl.Run(ctx)
		cancel()
		if perr := <-produced; perr != nil {
			t.Fatal(perr)
		}
		t.Logf("round %d: %d checkpoints with transactions, failed %v: %v", r, fs.seen, fs.failed, err)
		switch {
		case fs.failed && err == nil:
			t.Fatalf("round %d: the pipeline survived a failed checkpoint", r)
		case fs.failed:
			failures++
			if !strings.Contains(err.Error(), "injected") {
				t.Fatalf("round %d: %v", r, err)
			}
		case err != nil:
			t.Fatalf("round %d: %v", r, err)
		}
		if err := st.Close(); err != nil {
			t.Fatal(err)
		}
	}
	if failures < 4 {
		t.Fatalf("only %d of %d injected failures happened: the rounds are too short", failures, 2*rounds/3)
	}
	// A last run, long enough to read the rest.
	pl, st := open(&faultyStore{})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pl.Run(ctx) }()
	readTopic(t, brokers, "out", true, rounds*per, 0)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	got := readTopic(t, brokers, "out", true, rounds*per, 300*time.Millisecond)
	seen := ids(t, got)
	for i := range rounds * per {
		if seen[i] != 1 {
			t.Fatalf("record %d is in the committed output %d times, want once (%d records)", i, seen[i], len(got))
		}
	}
	if len(got) != rounds*per {
		t.Fatalf("the committed output has %d records, want %d", len(got), rounds*per)
	}
	if !strings.Contains(got[0], `"mapped":true`) {
		t.Fatalf("record %s did not pass the map", got[0])
	}
	all := readTopic(t, brokers, "out", false, len(got), 300*time.Millisecond)
	t.Logf("%d failed runs; the output topic holds %d records, %d of them in aborted transactions", failures, len(all), len(all)-len(got))
	// Either way the group's offsets end at the end of the input.
	if lag := groupLag(t, brokers, "eos", "in"); lag != 0 {
		t.Fatalf("the group's committed offsets are %d records behind the input", lag)
	}
}

// groupLag is how far the committed offsets of group are behind the ends
// of topic's partitions.
func groupLag(t *testing.T, brokers []string, group, topic string) int64 {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx := context.Background()
	ends := map[int32]int64{}
	lreq := kmsg.NewPtrListOffsetsRequest()
	lreq.ReplicaID, lreq.IsolationLevel = -1, 1
	lt := kmsg.NewListOffsetsRequestTopic()
	lt.Topic = topic
	for p := range int32(4) {
		lp := kmsg.NewListOffsetsRequestTopicPartition()
		lp.Partition, lp.Timestamp = p, -1
		lt.Partitions = append(lt.Partitions, lp)
	}
	lreq.Topics = append(lreq.Topics, lt)
	lresp, err := lreq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	for _, rt := range lresp.Topics {
		for _, rp := range rt.Partitions {
			ends[rp.Partition] = rp.Offset
		}
	}
	freq := kmsg.NewPtrOffsetFetchRequest()
	freq.Group = group
	ft := kmsg.NewOffsetFetchRequestTopic()
	ft.Topic, ft.Partitions = topic, []int32{0, 1, 2, 3}
	freq.Topics = append(freq.Topics, ft)
	fresp, err := freq.RequestWith(ctx, cl)
	if err != nil {
		t.Fatal(err)
	}
	var lag int64
	for _, rt := range fresp.Topics {
		for _, rp := range rt.Partitions {
			lag += ends[rp.Partition] - max(rp.Offset, 0)
		}
	}
	return lag
}

// eosOutput makes exactly-once outputs of one node over one state.
type eosOutput struct {
	t   *testing.T
	cfg kafka.OutputConfig
	env runtime.Env
	mem *testkit.MemState
}

func newEOS(t *testing.T, brokers []string) *eosOutput {
	cfg := kafka.DefaultOutputConfig()
	cfg.Brokers, cfg.Topic, cfg.Guarantee = brokers, "out", kafka.ExactlyOnce
	return &eosOutput{t: t, cfg: cfg, mem: testkit.NewMemState(),
		env: runtime.Env{Pipeline: "p", Node: "out", Parallelism: 1, Checkpointing: true}}
}

// start is a start: NewOutput and Restore.
func (e *eosOutput) start() *kafka.Output {
	e.t.Helper()
	o, err := kafka.NewOutput(e.cfg, e.env)
	if err != nil {
		e.t.Fatal(err)
	}
	if err := o.Restore(context.Background(), e.mem.Reader()); err != nil {
		e.t.Fatal(err)
	}
	return o
}

func write(t *testing.T, o *kafka.Output, from, n int) {
	t.Helper()
	var evs []event.Event
	for i := from; i < from+n; i++ {
		evs = append(evs, event.Event{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, `{"id":%d}`, i)})
	}
	ctx := context.Background()
	if err := o.Write(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := o.Flush(ctx); err != nil {
		t.Fatal(err)
	}
}

func (e *eosOutput) checkpoint(o *kafka.Output, id uint64, commit bool) {
	e.t.Helper()
	ctx := context.Background()
	if err := o.Snapshot(ctx, e.mem.Writer()); err != nil {
		e.t.Fatal(err)
	}
	if commit {
		if err := o.Committed(ctx, id); err != nil {
			e.t.Fatal(err)
		}
	}
}

// TestTransactionRecovery walks the protocol through its crash cases, on
// brokers with KIP-890 (a commit bumps the epoch) and without (Kafka 3.9:
// a retried EndTxn at the same epoch commits whatever is open):
//   - a checkpoint is durable but its transaction was never committed: the
//     next start commits it;
//   - its transaction was committed and the next one is open, unrecorded:
//     the next start finds the first committed (the retry does not commit
//     the open one) and aborts the second.
func TestTransactionRecovery(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts []kfake.Opt
	}{{"kip890", nil}, {"kafka3.9", []kfake.Opt{kfake.MaxVersions(kversion.V3_9_0())}}} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := kfake.NewCluster(append([]kfake.Opt{kfake.NumBrokers(1), kfake.SeedTopics(2, "out")}, tc.opts...)...)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			brokers := c.ListenAddrs()
			e := newEOS(t, brokers)
			ctx := context.Background()

			o := e.start()
			write(t, o, 0, 10) // committed at checkpoint 1
			e.checkpoint(o, 1, true)
			write(t, o, 10, 10) // checkpoint 2 is durable, the crash comes before the commit
			e.checkpoint(o, 2, false)
			o.Crash()

			o = e.start() // commits 10..19
			write(t, o, 20, 10)
			e.checkpoint(o, 3, true)
			write(t, o, 30, 10) // no checkpoint covers these
			o.Crash()

			o = e.start() // finds 20..29 committed, aborts 30..39
			write(t, o, 40, 10)
			e.checkpoint(o, 4, true)
			if err := o.Close(ctx); err != nil {
				t.Fatal(err)
			}
			got := readTopic(t, brokers, "out", true, 40, 300*time.Millisecond)
			seen := ids(t, got)
			for i := range 50 {
				want := 1
				if i >= 30 && i < 40 {
					want = 0
				}
				if seen[i] != want {
					t.Fatalf("record %d is in the committed output %d times, want %d; got %v", i, seen[i], want, got)
				}
			}
			if len(got) != 40 {
				t.Fatalf("%d committed records, want 40", len(got))
			}
		})
	}
}

// TestTransactionAbortedByBroker: a transaction the broker aborts
// (transaction_timeout passed) is an error, never a silent loss: at the
// commit after the checkpoint, and at the next start, which refuses to go
// on unless on_lost_transaction is proceed. A transaction about to time
// out fails its checkpoint instead, so that its records are replayed.
func TestTransactionAbortedByBroker(t *testing.T) {
	brokers := cluster(t, "out")
	e := newEOS(t, brokers)
	e.cfg.TransactionTimeout = time.Second
	ctx := context.Background()

	o := e.start()
	write(t, o, 0, 5)
	if err := o.Snapshot(ctx, e.mem.Writer()); err != nil {
		t.Fatal(err)
	}
	time.Sleep(1500 * time.Millisecond) // a stall: the broker aborts
	err := o.Committed(ctx, 7)
	if !errors.Is(err, kafka.ErrTransactionLost) || !strings.Contains(err.Error(), "checkpoint 7") {
		t.Fatalf("Committed after the broker aborted: %v", err)
	}
	t.Log(err)
	if err := o.Snapshot(ctx, e.mem.Writer()); err == nil {
		t.Fatal("a checkpoint completed after a lost transaction")
	}
	o.Crash()

	o2, err := kafka.NewOutput(e.cfg, e.env)
	if err != nil {
		t.Fatal(err)
	}
	err = o2.Restore(ctx, e.mem.Reader())
	if !errors.Is(err, kafka.ErrTransactionLost) || !strings.Contains(err.Error(), "on_lost_transaction") {
		t.Fatalf("Restore of a lost transaction: %v", err)
	}
	_ = o2.Close(ctx)
	e.cfg.OnLostTransaction = "proceed"
	o3 := e.start()
	// A transaction close to the timeout fails its checkpoint.
	write(t, o3, 5, 5)
	time.Sleep(950 * time.Millisecond)
	if err := o3.Snapshot(ctx, e.mem.Writer()); err == nil || !strings.Contains(err.Error(), "transaction_timeout") {
		t.Fatalf("Snapshot of a transaction about to time out: %v", err)
	}
	_ = o3.Close(ctx)
	if got := readTopic(t, brokers, "out", true, 0, 300*time.Millisecond); len(got) != 0 {
		t.Fatalf("read_committed sees %v", got)
	}
}

// TestReadCommittedSkipsAborted: the input reads with read_committed by
// default and never emits records of aborted transactions; with
// read_uncommitted it does.
func TestReadCommittedSkipsAborted(t *testing.T) {
	brokers := cluster(t, "in", "out", "out2")
	cl, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("in"), kgo.TransactionalID("source"))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for i, commit := range []kgo.TransactionEndTry{kgo.TryCommit, kgo.TryAbort, kgo.TryCommit} {
		if err := cl.BeginTransaction(); err != nil {
			t.Fatal(err)
		}
		var recs []*kgo.Record
		for j := range 10 {
			recs = append(recs, &kgo.Record{Value: fmt.Appendf(nil, `{"id":%d,"even":true}`, i*100+j)})
		}
		if err := cl.ProduceSync(ctx, recs...).FirstErr(); err != nil {
			t.Fatal(err)
		}
		if err := cl.EndTransaction(ctx, commit); err != nil {
			t.Fatal(err)
		}
	}
	cl.Close()
	in := kafka.DefaultInputConfig()
	in.Brokers, in.Topics, in.Group = brokers, []string{"in"}, "committed"
	out := kafka.DefaultOutputConfig()
	out.Brokers, out.Topic = brokers, "out"
	run(t, factory{in: in, out: out}, brokers, 20)
	for id, n := range ids(t, readTopic(t, brokers, "out", false, 20, 200*time.Millisecond)) {
		if id >= 100 && id < 200 || n != 1 {
			t.Fatalf("record %d read %d times with read_committed", id, n)
		}
	}
	in.Isolation, in.Group, out.Topic = "read_uncommitted", "uncommitted", "out2"
	run(t, factory{in: in, out: out}, brokers, 30)
	if got := readTopic(t, brokers, "out2", false, 30, 200*time.Millisecond); len(got) != 30 {
		t.Fatalf("read_uncommitted read %d records, want 30 (aborted ones included)", len(got))
	}
}

// TestExactlyOnceNeedsCheckpoints: exactly_once without a state store is
// an error naming the field and the fix.
func TestExactlyOnceNeedsCheckpoints(t *testing.T) {
	cfg := kafka.DefaultOutputConfig()
	cfg.Brokers, cfg.Topic, cfg.Guarantee = []string{"localhost:1"}, "out", kafka.ExactlyOnce
	_, err := kafka.NewOutput(cfg, runtime.Env{})
	var fe *config.FieldError
	if !errors.As(err, &fe) || fe.Field != "guarantee" || !strings.Contains(fe.Msg, "state.dir") {
		t.Fatalf("exactly_once without checkpoints: %v", err)
	}
	cfg.Guarantee, cfg.TransactionalID, cfg.TransactionTimeout = "twice", "x", 0
	err = cfg.Validate()
	for _, f := range []string{"guarantee", "transaction_timeout"} {
		if err == nil || !strings.Contains(err.Error(), f) {
			t.Fatalf("Validate does not report %s: %v", f, err)
		}
	}
}

// TestExactlyOnceCrashes kills a kafka → map → kafka pipeline with
// exactly_once (this test binary, re-run as a child process) with SIGKILL
// at the crash points of the checkpoint and of the output's transaction
// protocol (internal/faults) and at random times, while records keep
// arriving, and restarts it each time. A read_committed consumer of the
// output then sees every input record exactly once.
func TestExactlyOnceCrashes(t *testing.T) {
	if testing.Short() {
		t.Skip("starts child processes")
	}
	brokers := cluster(t, "in", "out")
	stateDir := filepath.Join(t.TempDir(), "state")
	src, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.DefaultProduceTopic("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	points := []string{
		"checkpoint.before-commit",  // the checkpoint is not durable
		"checkpoint.after-commit",   // durable; no transaction committed
		"checkpoint.committed-step", // between the components' commits
		"kafka.end-txn",             // durable; this output's commit not sent
		"kafka.settled",             // a restart committed the last checkpoint's transaction
		"",                          // a kill at a random time
	}
	rng := rand.New(rand.NewPCG(1, 2))
	const per = 240
	cycles := 0
	for range 2 {
		for _, point := range points {
			// Records arrive in 8 bursts while the child runs (it takes
			// some 250 ms to start and join the group).
			from := cycles * per
			produced := make(chan error, 1)
			go func() {
				time.Sleep(250 * time.Millisecond)
				for b := range 8 {
					var recs []*kgo.Record
					for i := from + b*per/8; i < from+(b+1)*per/8; i++ {
						recs = append(recs, &kgo.Record{Key: fmt.Appendf(nil, "k%d", i%13), Value: fmt.Appendf(nil, `{"id":%d}`, i)})
					}
					if err := src.ProduceSync(context.Background(), recs...).FirstErr(); err != nil {
						produced <- err
						return
					}
					time.Sleep(40 * time.Millisecond)
				}
				produced <- nil
			}()
			cmd := exec.Command(os.Args[0], "-test.run=^TestExactlyOnceCrashChild$")
			cmd.Env = append(os.Environ(), "WEIR_EOS_CHILD=1", "WEIR_EOS_BROKERS="+strings.Join(brokers, ","), "WEIR_EOS_STATE="+stateDir, fmt.Sprintf("WEIR_EOS_GROUP=eos-%d", cycles))
			// Checkpoints come every 10 ms from the start, records after
			// 250 ms: the checkpoint's points are armed for a call among
			// the 25th to the 60th, the output's among its first 5.
			n := 1
			switch point {
			case "kafka.end-txn":
				n = 1 + rng.IntN(5)
			case "", "kafka.settled":
			default:
				n = 25 + rng.IntN(35)
			}
			if point != "" {
				cmd.Env = append(cmd.Env, fmt.Sprintf("WEIR_CRASH_AT=%s:%d", point, n))
			}
			var outBuf strings.Builder
			cmd.Stdout, cmd.Stderr = &outBuf, &outBuf
			t0 := time.Now()
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			if point == "" {
				time.AfterFunc(time.Duration(250+rng.IntN(400))*time.Millisecond, func() { _ = cmd.Process.Kill() })
			}
			err := cmd.Wait()
			killed := false
			var ee *exec.ExitError
			if errors.As(err, &ee) {
				if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
					killed, err = true, nil
				}
			}
			if err != nil {
				t.Fatalf("child with crash point %q: %v\n%s", point, err, outBuf.String())
			}
			if perr := <-produced; perr != nil {
				t.Fatal(perr)
			}
			t.Logf("crash point %q:%d: killed %v after %s", point, n, killed, time.Since(t0).Round(time.Millisecond))
			cycles++
		}
	}
	// A last run, in this process, long enough to read the rest.
	st, err := state.Open(stateDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	pl := eosPipeline(t, brokers, "eos-last", st)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- pl.Run(ctx) }()
	total := cycles * per
	readTopic(t, brokers, "out", true, total, 0)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	_ = st.Close()
	got := readTopic(t, brokers, "out", true, total, 300*time.Millisecond)
	seen := ids(t, got)
	for i := range total {
		if seen[i] != 1 {
			t.Fatalf("record %d is in the committed output %d times, want once (%d records)", i, seen[i], len(got))
		}
	}
	if len(got) != total {
		t.Fatalf("the committed output has %d records, want %d", len(got), total)
	}
	all := readTopic(t, brokers, "out", false, len(got), 300*time.Millisecond)
	t.Logf("%d crashes; the output topic holds %d records, %d of them in aborted transactions", cycles, len(all), len(all)-len(got))
}

// TestExactlyOnceCrashChild is the child process of TestExactlyOnceCrashes.
func TestExactlyOnceCrashChild(t *testing.T) {
	if os.Getenv("WEIR_EOS_CHILD") != "1" {
		t.Skip("run by TestExactlyOnceCrashes")
	}
	st, err := state.Open(os.Getenv("WEIR_EOS_STATE"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	pl := eosPipeline(t, strings.Split(os.Getenv("WEIR_EOS_BROKERS"), ","), os.Getenv("WEIR_EOS_GROUP"), st)
	ctx, cancel := context.WithTimeout(context.Background(), 900*time.Millisecond)
	defer cancel()
	if err := pl.Run(ctx); err != nil {
		t.Fatal(err)
	}
}

// eosPipeline is kafka → map → kafka with exactly_once over st. A member
// killed with SIGKILL stays in its consumer group until its session times
// out (45 s), which would hold up the next run's assignment: each run gets
// a group of its own, and positions come from the checkpoint anyway.
func eosPipeline(t *testing.T, brokers []string, group string, st *state.Store) *runtime.Pipeline {
	t.Helper()
	in := kafka.DefaultInputConfig()
	in.Brokers, in.Topics, in.Group = brokers, []string{"in"}, group
	out := kafka.DefaultOutputConfig()
	out.Brokers, out.Topic, out.Guarantee = brokers, "out", kafka.ExactlyOnce
	out.TransactionTimeout = 10 * time.Second
	pl, err := runtime.New(testkit.Graph(t, eosYAML), eosFactory{in: in, out: out},
		runtime.Options{Store: testkit.StateStore(st), CheckpointInterval: 10 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	return pl
}

// TestTransactionOfRemovedInstance: when parallelism shrinks, the instance
// a removed one maps to commits the transaction the last checkpoint
// recorded for it, and the next checkpoint forgets the record (and the
// removed instance's process id).
func TestTransactionOfRemovedInstance(t *testing.T) {
	brokers := cluster(t, "out")
	e := newEOS(t, brokers)
	ctx := context.Background()
	e.env.Instance, e.env.Parallelism = 1, 2
	o := e.start()
	write(t, o, 0, 10)
	e.checkpoint(o, 1, false) // durable, never committed
	o.Crash()

	e.env.Instance, e.env.Parallelism = 0, 1
	o = e.start()
	if err := o.Snapshot(ctx, e.mem.Writer()); err != nil {
		t.Fatal(err)
	}
	if err := o.Committed(ctx, 2); err != nil {
		t.Fatal(err)
	}
	// Only the process id of instance 0 is left.
	if _, ok, _ := e.mem.Reader().Get([]byte("ident/0")); !ok || e.mem.Len() != 1 {
		t.Fatalf("%d keys left in the state (ident/0 among them: %v), want only ident/0", e.mem.Len(), ok)
	}
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if got := readTopic(t, brokers, "out", true, 10, 200*time.Millisecond); len(got) != 10 {
		t.Fatalf("read_committed sees %d records, want 10", len(got))
	}
}

// TestTxnOffsetCommitStaleGeneration: offsets committed in a transaction
// as a group member at a generation that is not the group's are refused
// (the member lost its partitions): the transaction must not commit them.
// At the current generation they are accepted, and become the group's
// when the transaction commits.
func TestTxnOffsetCommitStaleGeneration(t *testing.T) {
	brokers := cluster(t, "in", "out")
	ctx := context.Background()
	member, err := kgo.NewClient(kgo.SeedBrokers(brokers...), kgo.ConsumerGroup("stale"), kgo.ConsumeTopics("in"))
	if err != nil {
		t.Fatal(err)
	}
	defer member.Close()
	produce(t, brokers, "in", 0, 10)
	deadline := time.Now().Add(10 * time.Second)
	id, gen := member.GroupMetadata()
	for gen < 1 && time.Now().Before(deadline) {
		pctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
		member.PollFetches(pctx)
		cancel()
		id, gen = member.GroupMetadata()
	}
	if gen < 1 {
		t.Fatal("the member did not join its group")
	}
	e := newEOS(t, brokers)
	o := e.start()
	write(t, o, 0, 5)
	err = o.CommitOffsetsAs(ctx, "stale", id, gen+1, "in", 0, 3)
	if !errors.Is(err, kerr.IllegalGeneration) {
		t.Fatalf("commit at a stale generation: %v, want ILLEGAL_GENERATION", err)
	}
	if err := o.CommitOffsetsAs(ctx, "stale", id, gen, "in", 0, 3); err != nil {
		t.Fatalf("commit at the current generation: %v", err)
	}
	e.checkpoint(o, 1, true)
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
	if lag := groupLag(t, brokers, "stale", "in"); lag == 0 {
		t.Fatal("no offsets are behind the input: expected partition 0 at 3 and the others uncommitted")
	}
	freq := kmsg.NewPtrOffsetFetchRequest()
	freq.Group = "stale"
	ft := kmsg.NewOffsetFetchRequestTopic()
	ft.Topic, ft.Partitions = "in", []int32{0}
	freq.Topics = append(freq.Topics, ft)
	fresp, err := freq.RequestWith(ctx, member)
	if err != nil {
		t.Fatal(err)
	}
	if got := fresp.Topics[0].Partitions[0].Offset; got != 3 {
		t.Fatalf("the group's offset of in/0 is %d after the commit, want 3", got)
	}
}
