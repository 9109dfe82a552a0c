package opstate_test

import (
	"fmt"
	"testing"

	"github.com/weir-dev/weir/internal/processor/opstate"
	"github.com/weir-dev/weir/internal/runtime"
	"github.com/weir-dev/weir/internal/testkit"
)

// Three instances write their ranges; a restore by two instances hands
// every record to exactly one of them, with the least watermark; a full
// rewrite by instance 0 of 2 removes the range of the old instance 2.
func TestRangesRescale(t *testing.T) {
	st := testkit.NewMemState()
	w := st.Writer()
	for i := range 3 {
		r := opstate.New(runtime.Env{Instance: i, Parallelism: 3}, true)
		if err := r.SaveWatermark(w, int64(100+i)); err != nil {
			t.Fatal(err)
		}
		for k := range 30 {
			key := fmt.Appendf(nil, "u%d", k)
			if !r.Owns(key) {
				continue
			}
			if err := w.Set(append(r.Key(nil, 'k'), key...), key); err != nil {
				t.Fatal(err)
			}
		}
	}
	owners := map[string]int{}
	for i := range 2 {
		r := opstate.New(runtime.Env{Instance: i, Parallelism: 2}, true)
		wm, err := opstate.Restore(st.Reader(), "test", func(kind byte, key, v []byte) error {
			if kind != 'k' || string(key) != string(v) {
				t.Fatalf("record %q %q = %q", kind, key, v)
			}
			if r.Owns(key) {
				owners[string(key)]++
			}
			return nil
		})
		if err != nil || wm != 100 {
			t.Fatalf("restore: wm %d, %v; want 100", wm, err)
		}
	}
	if len(owners) != 30 {
		t.Fatalf("%d keys owned after the restore, want 30", len(owners))
	}
	for k, n := range owners {
		if n != 1 {
			t.Fatalf("key %s owned by %d instances", k, n)
		}
	}
	if err := opstate.New(runtime.Env{Instance: 0, Parallelism: 2}, true).Clear(w); err != nil {
		t.Fatal(err)
	}
	wm, err := opstate.Restore(st.Reader(), "test", func(byte, []byte, []byte) error { return nil })
	if err != nil || wm != 101 {
		t.Fatalf("after instance 0 of 2 cleared: wm %d, %v; want 101 (instance 1's only)", wm, err)
	}
	// Unkeyed: instance 0 owns all.
	if !opstate.New(runtime.Env{Instance: 0, Parallelism: 1}, false).Owns([]byte("x")) ||
		opstate.New(runtime.Env{Instance: 1, Parallelism: 2}, false).Owns([]byte("x")) {
		t.Fatal("unkeyed ownership")
	}
	if _, err := opstate.Restore(testkit.NewMemState().Reader(), "test", nil); err != nil {
		t.Fatal(err)
	}
}
