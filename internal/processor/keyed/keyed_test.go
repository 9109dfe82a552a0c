package keyed_test

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/dag"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/processor/keyed"
	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/testkit"
)

func init() {
	dag.Fusable = func(n *dag.Node) bool { return n.Kind == dag.Processor && n.Type != "keyed" }
}

// idleCount counts events per key and emits the count once the key has
// been quiet for gap of event time: a session built from state and a timer.
type idleCount struct{ gap int64 }

type countState struct {
	N     int64 `json:"n"`
	Last  int64 `json:"last"`
	Timer int64 `json:"timer"`
}

func (f idleCount) OnEvent(c *keyed.Context[countState], ev *event.Event) error {
	s := c.State()
	if s.Timer != 0 {
		c.DeleteTimer(keyed.Timer{At: s.Timer})
	}
	s.N++
	s.Last = ev.Time
	s.Timer = ev.Time + f.gap
	c.SetTimer(keyed.Timer{At: s.Timer})
	return nil
}

func (f idleCount) OnTimer(c *keyed.Context[countState], _ keyed.Timer) error {
	s := c.State()
	c.Emit(fmt.Appendf(nil, `{"key":%q,"n":%d,"last":%d}`, c.Key(), s.N, s.Last/1e6), s.Last)
	c.Clear()
	return nil
}

const pipelineYAML = `
name: t
control: {address: ""}
inputs:
  in: {type: script%s}
processors:
  k: {type: keyed, from: in, key_by: k, parallelism: 2}
outputs:
  out: {type: capture, from: k}
`

// TestEventTimersMatchReference: per-key state with event-time timers,
// over a random in-order stream cut into random batches, emits what a
// brute-force simulation of the same rules emits: timers fire after each
// batch, once the watermark (highest time − 1) reaches them.
func TestEventTimersMatchReference(t *testing.T) {
	for seed := range uint64(4) {
		rng := rand.New(rand.NewPCG(seed, 3))
		var script testkit.Script
		tm := int64(0)
		for range 300 {
			var b []testkit.Rec
			for range 1 + rng.IntN(10) {
				tm += rng.Int64N(6)
				k := fmt.Sprintf("k%d", rng.IntN(6))
				b = append(b, testkit.Rec{Key: k, T: tm, Value: fmt.Sprintf(`{"k":%q}`, k)})
			}
			script = append(script, b)
		}
		const gap = 15 // ms
		// Reference.
		type st struct{ n, last int64 }
		open := map[string]*st{}
		var want []string
		fireUpTo := func(wm int64) {
			for k, s := range open {
				if s.last+gap <= wm {
					want = append(want, fmt.Sprintf(`{"key":%q,"n":%d,"last":%d}`, k, s.n, s.last))
					delete(open, k)
				}
			}
		}
		maxT := int64(-1 << 62)
		for _, b := range script {
			for _, r := range b {
				s := open[r.Key]
				if s == nil {
					s = &st{}
					open[r.Key] = s
				}
				s.n++
				s.last = r.T
				maxT = max(maxT, r.T)
			}
			// Watermark in ns is maxT·1e6 − 1: a timer at (last+gap)·1e6
			// is due when last+gap ≤ maxT − 1 ms… in ms: last+gap < maxT.
			fireUpTo(maxT - 1)
		}
		fireUpTo(1 << 62)
		slices.Sort(want)

		r := &testkit.OperatorRun{Input: &testkit.ScriptInput{S: script}, OpType: "keyed",
			Operator: func(env runtime.Env) (runtime.Operator, error) {
				return keyed.New[countState](idleCount{gap: gap * 1e6}, env, true, keyed.Options{}), nil
			}}
		if err := r.RunFor(fmt.Sprintf(pipelineYAML, ""), runtime.Options{BatchSize: 16}); err != nil {
			t.Fatal(err)
		}
		got := r.Results()
		slices.Sort(got)
		if !slices.Equal(got, want) {
			t.Fatalf("seed %d: %d results, want %d\n got %v\nwant %v", seed, len(got), len(want), head(got), head(want))
		}
	}
}

func head(s []string) []string { return s[:min(len(s), 5)] }

// procTimer emits a key's count 30 ms of wall clock after its first event.
type procTimer struct{}

func (procTimer) OnEvent(c *keyed.Context[int], _ *event.Event) error {
	if *c.State() == 0 {
		c.SetTimer(keyed.Timer{At: c.Now() + int64(30*time.Millisecond), Processing: true})
	}
	*c.State()++
	return nil
}

func (procTimer) OnTimer(c *keyed.Context[int], _ keyed.Timer) error {
	c.Emit(fmt.Appendf(nil, `{"key":%q,"n":%d}`, c.Key(), *c.State()), c.Now())
	c.Clear()
	return nil
}

// TestProcessingTimersAndTTL: processing-time timers fire by the wall
// clock while the source is still open; with a TTL, a key quiet for longer
// starts over from a zero state.
func TestProcessingTimersAndTTL(t *testing.T) {
	script := testkit.Script{{{Key: "a", T: 1, Value: `{"k":"a"}`}, {Key: "a", T: 2, Value: `{"k":"a"}`}, {Key: "b", T: 3, Value: `{"k":"b"}`}}}
	r := &testkit.OperatorRun{OpType: "keyed",
		Input: &testkit.ScriptInput{S: script, Then: func(ctx context.Context, _ runtime.Outlet) error { <-ctx.Done(); return nil }},
		Operator: func(env runtime.Env) (runtime.Operator, error) {
			return keyed.New[int](procTimer{}, env, true, keyed.Options{}), nil
		}}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		done <- r.Run(ctx, fmt.Sprintf(pipelineYAML, ""), runtime.Options{BatchSize: 16, Linger: 5 * time.Millisecond})
	}()
	deadline := time.Now().Add(10 * time.Second)
	for len(r.Results()) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	got := r.Results()
	slices.Sort(got)
	if want := []string{`{"key":"a","n":2}`, `{"key":"b","n":1}`}; !slices.Equal(got, want) {
		t.Fatalf("processing-time results %v, want %v", got, want)
	}

	// TTL: a running count per key, emitted on every event.
	ttlScript := testkit.Script{{{Key: "a", T: 1, Value: `{"k":"a"}`}}, {{Key: "a", T: 2, Value: `{"k":"a"}`}}}
	pause := make(chan struct{})
	r2 := &testkit.OperatorRun{OpType: "keyed",
		Input: &testkit.ScriptInput{S: ttlScript, Then: func(ctx context.Context, out runtime.Outlet) error {
			<-pause
			if err := testkit.EmitRecs(ctx, out, []testkit.Rec{{Key: "a", T: 3, Value: `{"k":"a"}`}}); err != nil {
				return err
			}
			<-ctx.Done()
			return nil
		}},
		Operator: func(env runtime.Env) (runtime.Operator, error) {
			return keyed.New[int](runningCount{}, env, true, keyed.Options{TTL: 40 * time.Millisecond}), nil
		}}
	ctx2, cancel2 := context.WithCancel(context.Background())
	go func() {
		done <- r2.Run(ctx2, fmt.Sprintf(pipelineYAML, ""), runtime.Options{BatchSize: 16, Linger: 5 * time.Millisecond})
	}()
	for len(r2.Results()) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	time.Sleep(150 * time.Millisecond) // past the TTL, with the operator ticking
	close(pause)
	for len(r2.Results()) < 3 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	cancel2()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var ns []int
	for _, v := range r2.Results() {
		var x struct{ N int }
		if err := json.Unmarshal([]byte(v), &x); err != nil {
			t.Fatal(err)
		}
		ns = append(ns, x.N)
	}
	if !slices.Equal(ns, []int{1, 2, 1}) {
		t.Fatalf("running counts %v, want [1 2 1]: the TTL must have reset the key", ns)
	}
}

type runningCount struct{}

func (runningCount) OnEvent(c *keyed.Context[int], ev *event.Event) error {
	*c.State()++
	c.Emit(fmt.Appendf(nil, `{"n":%d}`, *c.State()), ev.Time)
	return nil
}

func (runningCount) OnTimer(*keyed.Context[int], keyed.Timer) error { return nil }

// TestStateSurvivesRestore: Snapshot then Restore (into 3 instances from
// 2) keeps every key's state and timers with the instance that owns it.
func TestStateSurvivesRestore(t *testing.T) {
	store := testkit.NewMemState()
	var ops []*keyed.Op[countState]
	for i := range 2 {
		ops = append(ops, keyed.New[countState](idleCount{gap: 10}, runtime.Env{Instance: i, Parallelism: 2}, true, keyed.Options{}))
	}
	// Drive them directly: 40 keys, each to the instance that owns it.
	col := testkit.NewCollector()
	for k := range 40 {
		key := fmt.Sprintf("u%d", k)
		op := ops[runtime.KeyHash([]byte(key))%2]
		evs := []event.Event{{Key: []byte(key), Time: int64(100 + k), Value: []byte(`{}`)}}
		if err := op.Process(context.Background(), evs, col.Collector()); err != nil {
			t.Fatal(err)
		}
	}
	for _, op := range ops {
		if err := op.Snapshot(context.Background(), store.Writer()); err != nil {
			t.Fatal(err)
		}
	}
	seen := 0
	for i := range 3 {
		op := keyed.New[countState](idleCount{gap: 10}, runtime.Env{Instance: i, Parallelism: 3}, true, keyed.Options{})
		if err := op.Restore(context.Background(), store.Reader()); err != nil {
			t.Fatal(err)
		}
		c := testkit.NewCollector()
		if err := op.Advance(context.Background(), event.EndOfTime, 0, c.Collector()); err != nil {
			t.Fatal(err)
		}
		for _, v := range c.Values() {
			var x struct {
				Key string
				N   int64
			}
			if err := json.Unmarshal([]byte(v), &x); err != nil || x.N != 1 {
				t.Fatalf("restored result %s", v)
			}
			if runtime.KeyHash([]byte(x.Key))%3 != uint64(i) {
				t.Fatalf("key %s restored by instance %d", x.Key, i)
			}
			seen++
		}
	}
	if seen != 40 {
		t.Fatalf("%d keys fired after restore, want 40", seen)
	}
}

// writes counts a snapshot's writes of key records ('k' after the 2-byte
// instance prefix) and range deletions.
type writes struct{ sets, dels, ranges int }

func (w *writes) Set(k, _ []byte) error {
	if len(k) > 2 && k[2] == 'k' {
		w.sets++
	}
	return nil
}
func (w *writes) Delete([]byte) error           { w.dels++; return nil }
func (w *writes) DeleteRange(_, _ []byte) error { w.ranges++; return nil }

// TestSnapshotWritesWhatChanged: after the first checkpoint (a full
// rewrite of the instance's range), a checkpoint writes the keys whose
// state changed and deletes those that were cleared, and nothing else.
func TestSnapshotWritesWhatChanged(t *testing.T) {
	op := keyed.New[countState](idleCount{gap: 10}, runtime.Env{Node: "k", Parallelism: 1, Checkpointing: true}, true, keyed.Options{})
	ctx := context.Background()
	if err := op.Restore(ctx, testkit.NewMemState().Reader()); err != nil {
		t.Fatal(err)
	}
	in := func(key string, at int64) {
		if err := op.Process(ctx, []event.Event{{Key: []byte(key), Value: []byte(`{}`), Time: at}}, runtime.NewCollector()); err != nil {
			t.Fatal(err)
		}
	}
	snap := func() writes {
		var w writes
		if err := op.Snapshot(ctx, &w); err != nil {
			t.Fatal(err)
		}
		return w
	}
	for i := range 100 {
		in(fmt.Sprint("k", i), 1)
	}
	if w := snap(); w.sets != 100 || w.ranges == 0 {
		t.Fatalf("first checkpoint: %+v, want all 100 keys after a range deletion", w)
	}
	in("k1", 2)
	in("k2", 2)
	if w := snap(); w.sets != 2 || w.ranges != 0 || w.dels != 0 {
		t.Fatalf("second checkpoint: %+v, want the 2 keys that changed", w)
	}
	// Every key's timer fires and clears it.
	if err := op.Advance(ctx, 15, 0, runtime.NewCollector()); err != nil {
		t.Fatal(err)
	}
	if w := snap(); w.dels != 100 || w.sets != 0 {
		t.Fatalf("third checkpoint: %+v, want the 100 keys their timers cleared deleted", w)
	}
	if w := snap(); w.dels != 0 || w.sets != 0 {
		t.Fatalf("fourth checkpoint: %+v, want nothing", w)
	}
}
