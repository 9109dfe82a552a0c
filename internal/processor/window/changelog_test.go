package window_test

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/processor/window"
	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/state"
)

// records collects what Release hands over.
type records struct{ keys, values [][]byte }

func (r *records) Set(k, v []byte) error {
	r.keys, r.values = append(r.keys, bytes.Clone(k)), append(r.values, bytes.Clone(v))
	return nil
}
func (r *records) Delete(k []byte) error {
	r.keys, r.values = append(r.keys, bytes.Clone(k)), append(r.values, nil)
	return nil
}
func (r *records) DeleteRange(_, _ []byte) error { return nil }

// TestSessionMovesBetweenProcesses: a session window's state released by
// one process (its own store) and acquired by another (as a changelog
// carries it, written into that one's store) goes on there: a later event
// within the gap extends the same session, and the session emits once,
// with every event counted. The key the first process keeps stays there.
func TestSessionMovesBetweenProcesses(t *testing.T) {
	w := compile(t, window.Config{Window: "session", Gap: 10 * time.Second, Time: "event", KeyField: "key", Aggregates: aggs("n", "count()")})
	ctx := context.Background()
	open := func() (*window.Op, *state.Store) {
		st, err := state.Open(t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		op, err := w.New(runtime.Env{Node: "w", Parallelism: 1, Checkpointing: true}, true)
		if err != nil {
			t.Fatal(err)
		}
		if err := op.Restore(ctx, st.Reader("w")); err != nil {
			t.Fatal(err)
		}
		return op, st
	}
	in := func(op *window.Op, key string, sec int64) {
		col := runtime.NewCollector()
		if err := op.Process(ctx, []event.Event{{Key: []byte(key), Value: []byte(`{}`), Time: sec * 1e9}}, col); err != nil {
			t.Fatal(err)
		}
	}
	fire := func(op *window.Op) []string {
		col := runtime.NewCollector()
		if err := op.Advance(ctx, 1000e9, 0, col); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range col.Take() {
			out = append(out, string(e.Value))
		}
		return out
	}

	a, _ := open()
	in(a, "moves", 1)
	in(a, "moves", 5)
	in(a, "stays", 2)
	var handed records
	if err := a.Release(func(k []byte) bool { return string(k) == "moves" }, &handed); err != nil {
		t.Fatal(err)
	}
	if len(handed.keys) == 0 {
		t.Fatal("nothing handed over for the key that moves")
	}
	for _, k := range handed.keys {
		if key, ok := a.EventKey(k); !ok || string(key) != "moves" {
			t.Fatalf("handed over %x: event key %q %v", k, key, ok)
		}
	}

	b, stB := open()
	sc := stB.Reader("w").Scratch()
	for i, k := range handed.keys {
		if handed.values[i] == nil {
			if err := sc.Delete(k); err != nil {
				t.Fatal(err)
			}
		} else if err := sc.Set(k, handed.values[i]); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Acquire(func(k []byte) bool { return string(k) == "moves" }, sc); err != nil {
		t.Fatal(err)
	}
	in(b, "moves", 12) // within 10 s of the last event: the same session

	gotB, gotA := fire(b), fire(a)
	if len(gotB) != 1 || !strings.Contains(gotB[0], `"key":"moves"`) || !strings.Contains(gotB[0], `"n":3`) || !strings.Contains(gotB[0], `"window_start":1000`) {
		t.Fatalf("the process that acquired the key emitted %q, want one session of 3 events from 1 s", gotB)
	}
	if len(gotA) != 1 || !strings.Contains(gotA[0], `"key":"stays"`) {
		t.Fatalf("the process that released the key emitted %q, want only the key it kept", gotA)
	}
}
