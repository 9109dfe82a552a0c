package logio

import (
	"bytes"
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/log"
	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/testkit"
)

func appendN(t *testing.T, sh *Shared, from, n int) {
	t.Helper()
	for i := from; i < from+n; i++ {
		p := sh.Log.Partition(i % sh.Log.Partitions())
		rec := log.Record{Key: fmt.Appendf(nil, "k%d", i), Value: fmt.Appendf(nil, `{"id":%d}`, i),
			Headers: []log.Header{{Key: "tenant", Value: []byte("acme")}}}
		if _, err := p.Append(context.Background(), []log.Record{rec}); err != nil {
			t.Fatal(err)
		}
	}
}

func inputConfig(dir string) InputConfig {
	c := DefaultInputConfig()
	c.Dir = dir
	c.Partitions = 3
	c.Durability = "none"
	c.PollInterval = time.Millisecond
	c.CommitInterval = time.Millisecond
	return c
}

// runUntil runs in until out has n events, then stops it and closes it.
func runUntil(t *testing.T, in *Input, out *testkit.Outlet, n int) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, out) }()
	wctx, wcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer wcancel()
	if err := out.WaitEvents(wctx, n); err != nil {
		t.Fatalf("waiting for %d events: %v (got %d)", n, err, len(out.Events()))
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := in.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func ids(evs []event.Event) []string {
	var out []string
	for _, e := range evs {
		out = append(out, string(e.Value))
	}
	sort.Strings(out)
	return out
}

// Without checkpoints, an input resumes where its acknowledged progress was
// committed: a second run sees only new records.
func TestResumeFromCommitted(t *testing.T) {
	dir := t.TempDir()
	c := inputConfig(dir)
	env := runtime.Env{Pipeline: "p", Node: "in", Parallelism: 1}
	in, err := NewInput(c, env)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, in.sh, 0, 30)
	out := &testkit.Outlet{}
	runUntil(t, in, out, 30)
	evs := out.Events()
	if len(evs) != 30 {
		t.Fatalf("first run read %d events, want 30", len(evs))
	}
	if h, _ := evs[0].Header("tenant"); string(h) != "acme" {
		t.Fatalf("headers not carried: %v", evs[0].Headers)
	}

	in, err = NewInput(c, env)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, in.sh, 30, 6)
	out = &testkit.Outlet{}
	runUntil(t, in, out, 6)
	got := ids(out.Events())
	want := ids([]event.Event{})
	for i := 30; i < 36; i++ {
		want = append(want, fmt.Sprintf(`{"id":%d}`, i))
	}
	sort.Strings(want)
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("second run read %v, want only the new records %v", got, want)
	}
}

// Unacknowledged records are read again after a restart; acknowledged ones
// are not.
func TestUnackedAreReplayed(t *testing.T) {
	dir := t.TempDir()
	c := inputConfig(dir)
	c.Partitions = 1
	c.MaxBatchBytes = 40 // several batches
	env := runtime.Env{Pipeline: "p", Node: "in", Parallelism: 1}
	in, err := NewInput(c, env)
	if err != nil {
		t.Fatal(err)
	}
	appendN(t, in.sh, 0, 10)
	out := &testkit.Outlet{ManualAck: true}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, out) }()
	wctx, wcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer wcancel()
	if err := out.WaitEvents(wctx, 10); err != nil {
		t.Fatal(err)
	}
	// Acknowledge only the first batch; the rest stays in flight.
	nb := len(out.Batches())
	if !out.AckBatch(0) {
		t.Fatal("no batch to ack")
	}
	first := len(out.Batches()[0].Events)
	if first == 10 {
		t.Fatal("all events in one batch: the test needs several")
	}
	time.Sleep(5 * time.Millisecond) // let a commit interval pass (progress only; the assertion does not depend on it)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := in.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	in, err = NewInput(c, env)
	if err != nil {
		t.Fatal(err)
	}
	out2 := &testkit.Outlet{}
	runUntil(t, in, out2, 10-first)
	if got := len(out2.Events()); got != 10-first {
		t.Fatalf("replayed %d events after acking %d of 10 in %d batches, want %d", got, first, nb, 10-first)
	}
	if e := out2.Events()[0]; e.Offset != int64(first) {
		t.Fatalf("replay starts at offset %d, want %d", e.Offset, first)
	}
}

// Instances split the partitions: together they read everything once.
func TestPartitionsSplitOverInstances(t *testing.T) {
	dir := t.TempDir()
	c := inputConfig(dir)
	c.Partitions = 5
	var outs []*testkit.Outlet
	var ins []*Input
	for i := range 2 {
		in, err := NewInput(c, runtime.Env{Pipeline: "p", Node: "in", Instance: i, Parallelism: 2})
		if err != nil {
			t.Fatal(err)
		}
		ins = append(ins, in)
		outs = append(outs, &testkit.Outlet{})
	}
	if ins[0].sh != ins[1].sh {
		t.Fatal("instances opened the log twice")
	}
	appendN(t, ins[0].sh, 0, 50)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 2)
	for i := range ins {
		go func() { done <- ins[i].Run(ctx, outs[i]) }()
	}
	wctx, wcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer wcancel()
	// Instance 0 has partitions 0, 2 and 4; instance 1 has 1 and 3.
	if err := outs[0].WaitEvents(wctx, 30); err != nil {
		t.Fatal(err)
	}
	if err := outs[1].WaitEvents(wctx, 20); err != nil {
		t.Fatal(err)
	}
	cancel()
	for range ins {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	all := append(outs[0].Events(), outs[1].Events()...)
	if got := ids(all); len(got) != 50 || len(ids(outs[0].Events())) != 30 {
		t.Fatalf("instances read %d and %d events, want 30 (partitions 0,2,4) and 20", len(outs[0].Events()), len(outs[1].Events()))
	}
	for _, in := range ins {
		if err := in.Close(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
}

// memState is an in-memory checkpoint store for one node.
type memState map[string][]byte

func (m memState) Get(k []byte) ([]byte, bool, error) { v, ok := m[string(k)]; return v, ok, nil }
func (m memState) Scan(start, end []byte, fn func(k, v []byte) error) error {
	var keys []string
	for k := range m {
		if k >= string(start) && (end == nil || k < string(end)) {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := fn([]byte(k), m[k]); err != nil {
			return err
		}
	}
	return nil
}
func (m memState) Set(k, v []byte) error { m[string(k)] = bytes.Clone(v); return nil }
func (m memState) Delete(k []byte) error { delete(m, string(k)); return nil }
func (m memState) DeleteRange(start, end []byte) error {
	for k := range m {
		if k >= string(start) && (end == nil || k < string(end)) {
			delete(m, k)
		}
	}
	return nil
}

// With checkpoints, positions come from the checkpoint, not from what was
// acknowledged after it; the log commit follows the checkpoint.
func TestCheckpointedPositions(t *testing.T) {
	dir := t.TempDir()
	c := inputConfig(dir)
	c.Partitions = 2
	env := runtime.Env{Pipeline: "p", Node: "in", Parallelism: 1, Checkpointing: true}
	in, err := NewInput(c, env)
	if err != nil {
		t.Fatal(err)
	}
	st := memState{}
	if err := in.Restore(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	appendN(t, in.sh, 0, 20)
	out := &testkit.Outlet{}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	go func() { done <- in.Run(ctx, out) }()
	wctx, wcancel := context.WithTimeout(t.Context(), 10*time.Second)
	defer wcancel()
	if err := out.WaitEvents(wctx, 20); err != nil {
		t.Fatal(err)
	}
	for in.InFlight() > 0 {
		time.Sleep(time.Millisecond) // the outlet acknowledges right after recording
	}
	if err := in.Snapshot(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	if err := in.Committed(t.Context(), 1); err != nil {
		t.Fatal(err)
	}
	if got := in.sh.Log.Partition(0).Committed()["p.in"]; got != 10 {
		t.Fatalf("log commit after checkpoint = %d, want 10", got)
	}
	// Read 8 more, acknowledged, but the process dies before the next
	// checkpoint.
	appendN(t, in.sh, 20, 8)
	if err := out.WaitEvents(wctx, 28); err != nil {
		t.Fatal(err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if err := in.Close(context.Background()); err != nil {
		t.Fatal(err)
	}
	in, err = NewInput(c, env)
	if err != nil {
		t.Fatal(err)
	}
	if err := in.Restore(t.Context(), st); err != nil {
		t.Fatal(err)
	}
	out = &testkit.Outlet{}
	runUntil(t, in, out, 8)
	if got := len(out.Events()); got != 8 {
		t.Fatalf("after restore read %d events, want the 8 after the checkpoint", got)
	}
}

func TestOutputAppendsDurably(t *testing.T) {
	dir := t.TempDir()
	c := DefaultOutputConfig()
	c.Dir = dir
	c.Partitions = 2
	o, err := NewOutput(c, runtime.Env{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	var evs []event.Event
	for i := range 10 {
		evs = append(evs, event.Event{Key: fmt.Appendf(nil, "k%d", i%3), Value: fmt.Appendf(nil, "%d", i),
			Headers: []event.Header{{Key: "h", Value: []byte("v")}}})
	}
	if err := o.Write(ctx, evs); err != nil {
		t.Fatal(err)
	}
	if err := o.Flush(ctx); err != nil {
		t.Fatal(err)
	}
	total := int64(0)
	for p := range 2 {
		total += o.sh.Log.Partition(p).HighWatermark()
	}
	if total != 10 {
		t.Fatalf("log holds %d records, want 10", total)
	}
	if err := o.Close(ctx); err != nil {
		t.Fatal(err)
	}
	// Same key, same partition.
	l, err := log.OpenLog(dir, 2, log.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	where := map[string]int{}
	for p := range 2 {
		recs, _, err := l.Partition(p).ReadFrom(0, 1<<20)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range recs {
			if q, ok := where[string(r.Key)]; ok && q != p {
				t.Fatalf("key %s in partitions %d and %d", r.Key, q, p)
			}
			where[string(r.Key)] = p
		}
	}
}
