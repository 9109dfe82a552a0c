package join

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/event"
	"github.com/weir-dev/weir/internal/runtime"
)

// memState is a sorted in-memory key space: a StateWriter and StateReader.
type memState struct{ m map[string][]byte }

func (s *memState) Set(k, v []byte) error { s.m[string(k)] = bytes.Clone(v); return nil }
func (s *memState) Delete(k []byte) error { delete(s.m, string(k)); return nil }
func (s *memState) DeleteRange(a, b []byte) error {
	for k := range s.m {
		if k >= string(a) && k < string(b) {
			delete(s.m, k)
		}
	}
	return nil
}
func (s *memState) Get(k []byte) ([]byte, bool, error) { v, ok := s.m[string(k)]; return v, ok, nil }
func (s *memState) Scan(a, b []byte, fn func(k, v []byte) error) error {
	keys := make([]string, 0, len(s.m))
	for k := range s.m {
		if k >= string(a) && (b == nil || k < string(b)) {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if err := fn([]byte(k), s.m[k]); err != nil {
			return err
		}
	}
	return nil
}

// TestReleaseAndAcquireMoveKeys: the events a join holds for the keys it
// releases reach another instance through Release and Acquire (as a
// changelog carries them between processes), and pair there as if they
// had never moved; the keys it keeps stay.
func TestReleaseAndAcquireMoveKeys(t *testing.T) {
	j, errs := Compile(Config{Left: config.Expr{Src: `s == "L"`}, Join: "tumbling", Size: 10 * time.Second, KeyField: "key"}, "j", func(string) config.Pos { return config.Pos{} })
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	env := runtime.Env{Node: "j", Parallelism: 1, Checkpointing: true}
	a, err := j.New(env, true)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	in := func(o *Op, key, side string, sec int64) {
		col := runtime.NewCollector()
		evs := []event.Event{{Key: []byte(key), Value: []byte(`{"s":"` + side + `","k":"` + key + `"}`), Time: sec * 1e9}}
		if err := o.Process(ctx, evs, col); err != nil {
			t.Fatal(err)
		}
	}
	in(a, "moves", "L", 1)
	in(a, "stays", "L", 2)
	moved := &memState{m: map[string][]byte{}}
	if err := a.Release(func(k []byte) bool { return string(k) == "moves" }, moved); err != nil {
		t.Fatal(err)
	}
	if len(moved.m) != 1 {
		t.Fatalf("released %d records, want the one event of the key that moves", len(moved.m))
	}
	for k := range moved.m {
		if key, ok := a.EventKey([]byte(k)); !ok || string(key) != "moves" {
			t.Fatalf("record %x: event key %q %v", k, key, ok)
		}
	}
	b, err := j.New(env, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Acquire(func(k []byte) bool { return string(k) == "moves" }, moved); err != nil {
		t.Fatal(err)
	}
	in(b, "moves", "R", 3)
	in(a, "stays", "R", 4)
	in(a, "moves", "R", 5) // a no longer has the left event: no pair
	pairs := func(o *Op) []string {
		col := runtime.NewCollector()
		if err := o.Advance(ctx, 20e9, 0, col); err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, e := range col.Take() {
			out = append(out, string(e.Value))
		}
		return out
	}
	gotB, gotA := pairs(b), pairs(a)
	if len(gotB) != 1 || !strings.Contains(gotB[0], `"left":{"s":"L","k":"moves"}`) {
		t.Fatalf("the instance that acquired the key paired %q, want its left event with the right one", gotB)
	}
	if len(gotA) != 1 || !strings.Contains(gotA[0], `"key":"stays"`) {
		t.Fatalf("the instance that released the key paired %q, want only the key it kept", gotA)
	}
}

// TestIncrementalSnapshotKeepsLiveEvents: after the first checkpoint (a
// full rewrite), checkpoints write the events taken in and delete those
// that expired, so the store holds exactly the live events: a restore from
// it pairs as the original would have.
func TestIncrementalSnapshotKeepsLiveEvents(t *testing.T) {
	j, errs := Compile(Config{Left: config.Expr{Src: `s == "L"`}, Join: "interval", Lower: 0, Upper: 5 * time.Second, KeyField: "key"}, "j", func(string) config.Pos { return config.Pos{} })
	if len(errs) > 0 {
		t.Fatal(errs)
	}
	env := runtime.Env{Node: "j", Parallelism: 1, Checkpointing: true}
	st := &memState{m: map[string][]byte{}}
	ctx := context.Background()
	a, err := j.New(env, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Restore(ctx, st); err != nil {
		t.Fatal(err)
	}
	in := func(o *Op, key, side string, sec int64) []event.Event {
		col := runtime.NewCollector()
		evs := []event.Event{{Key: []byte(key), Value: []byte(`{"s":"` + side + `","t":` + fmt.Sprint(sec) + `}`), Time: sec * 1e9}}
		if err := o.Process(ctx, evs, col); err != nil {
			t.Fatal(err)
		}
		return col.Take()
	}
	events := func() int {
		n := 0
		for k := range st.m {
			if k[2] == 'E' {
				n++
			}
		}
		return n
	}
	in(a, "k", "L", 1)
	in(a, "k", "L", 2)
	if err := a.Snapshot(ctx, st); err != nil {
		t.Fatal(err)
	}
	if n := events(); n != 2 {
		t.Fatalf("after the first checkpoint the store holds %d events, want 2", n)
	}
	// The left event at 1 s can pair up to 6 s: the watermark at 6.5 s
	// drops it; the one at 2 s stays until 7 s.
	if err := a.Advance(ctx, 6_500_000_000, 0, runtime.NewCollector()); err != nil {
		t.Fatal(err)
	}
	in(a, "k", "L", 7)
	if err := a.Snapshot(ctx, st); err != nil {
		t.Fatal(err)
	}
	if n := events(); n != 2 {
		t.Fatalf("after the second checkpoint the store holds %d events, want the 2 live ones", n)
	}
	b, err := j.New(env, true)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Restore(ctx, st); err != nil {
		t.Fatal(err)
	}
	got := in(b, "k", "R", 7)
	if len(got) != 2 {
		var vs []string
		for _, e := range got {
			vs = append(vs, string(e.Value))
		}
		t.Fatalf("the restored join paired a right event at 7 s with %q, want the left events at 2 s and 7 s", vs)
	}
}
