package state

import (
	"fmt"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"

	"github.com/weir-dev/weir/internal/runtime"
)

// scan returns the node's view as "k=v" pairs in order.
func scan(t *testing.T, r runtime.StateReader) string {
	t.Helper()
	var out []string
	if err := r.Scan(nil, nil, func(k, v []byte) error {
		out = append(out, string(k)+"="+string(v))
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	return strings.Join(out, " ")
}

// TestScratch: scratch writes are read over the checkpointed state, a
// checkpoint moves them (its own writes win), and a start forgets what no
// checkpoint took.
func TestScratch(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx := s.Begin()
	for _, k := range []string{"a", "b", "c"} {
		if err := tx.Writer("w").Set([]byte(k), []byte("1")); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Commit(1); err != nil {
		t.Fatal(err)
	}
	sc := s.Reader("w").Scratch()
	other := s.Reader("w2").Scratch()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(sc.Set([]byte("b"), []byte("2")))
	must(sc.Delete([]byte("c")))
	must(sc.Set([]byte("d"), []byte("2")))
	must(sc.Delete([]byte("e"))) // never existed
	must(other.Set([]byte("x"), []byte("9")))
	if got, want := scan(t, sc), "a=1 b=2 d=2"; got != want {
		t.Fatalf("scratch view %q, want %q", got, want)
	}
	for k, want := range map[string]string{"a": "1", "b": "2", "c": "", "d": "2", "e": ""} {
		v, ok, err := sc.Get([]byte(k))
		must(err)
		if string(v) != want || ok != (want != "") {
			t.Fatalf("Get(%s) = %q %v, want %q", k, v, ok, want)
		}
	}
	if got, want := scan(t, s.Reader("w")), "a=1 b=1 c=1"; got != want {
		t.Fatalf("checkpointed state %q, want %q", got, want)
	}
	// A checkpoint of w takes its scratch; its own write of d wins.
	tx = s.Begin()
	must(tx.Writer("w").Set([]byte("d"), []byte("3")))
	must(tx.Commit(2))
	if got, want := scan(t, s.Reader("w")), "a=1 b=2 d=3"; got != want {
		t.Fatalf("after checkpoint %q, want %q", got, want)
	}
	if got, want := scan(t, sc), "a=1 b=2 d=3"; got != want {
		t.Fatalf("scratch view after checkpoint %q, want %q", got, want)
	}
	// Written after the checkpoint, lost at a restart.
	must(sc.Set([]byte("z"), []byte("lost")))
	must(sc.(*Scratch).flush())
	must(s.Close())
	s, err = Open(dir, nil)
	must(err)
	defer s.Close()
	if got, want := scan(t, s.Reader("w").Scratch()), "a=1 b=2 d=3"; got != want {
		t.Fatalf("after restart %q, want %q", got, want)
	}
	// A checkpoint commits the whole scratch generation, every node's.
	if got := scan(t, s.Reader("w2").Scratch()); got != "x=9" {
		t.Fatalf("w2 after restart %q, want x=9: checkpoint 2 committed its scratch", got)
	}
	c, _ := s.LastCheckpoint()
	if fmt.Sprint(c.Nodes) != "[{w 1 0 0 2}]" {
		t.Fatalf("checkpoint 2 recorded %v", c.Nodes)
	}
	// The start folded the committed generation into the nodes' state: no
	// scratch key is left.
	if n := rawKeys(t, s, scratchAll); n != 0 {
		t.Fatalf("%d scratch keys after a start, want 0", n)
	}
}

// rawKeys counts the store's keys under prefix.
func rawKeys(t *testing.T, s *Store, prefix []byte) int {
	t.Helper()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: prefixEnd(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for it.First(); it.Valid(); it.Next() {
		n++
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	return n
}

// TestScratchGenerations: over several checkpoints the scratch is committed
// without being copied into the checkpoint's batch, folded at the next
// checkpoint, and always read right; a checkpoint's own write of a key
// wins over the generation it commits; a crash (no checkpoint) forgets
// only what came after the last one.
func TestScratchGenerations(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	ckpt := func(id uint64, writes map[string]string) {
		t.Helper()
		tx := s.Begin()
		w := tx.Writer("w")
		for k, v := range writes {
			must(w.Set([]byte(k), []byte(v)))
		}
		must(tx.Commit(id))
	}
	ckpt(1, map[string]string{"a": "1"})
	sc := s.Reader("w").Scratch()
	big := strings.Repeat("x", 1000)
	for i := range 3000 { // several MB: more than one fold batch
		must(sc.Set(fmt.Appendf(nil, "big%05d", i), []byte(big)))
	}
	must(sc.Set([]byte("b"), []byte("2")))
	must(sc.Set([]byte("k"), []byte("old")))
	ckpt(2, map[string]string{"k": "new"})
	if n := rawKeys(t, s, scratchAll); n != 3001 {
		t.Fatalf("%d scratch keys after checkpoint 2, want 3001 (k's hidden by the checkpoint's own write): committed in place, not folded yet", n)
	}
	if v, _, _ := sc.Get([]byte("k")); string(v) != "new" {
		t.Fatalf("k = %q after checkpoint 2, want its write", v)
	}
	tx := s.Begin() // folds; then fails before its commit
	tx.Abort()
	if n := rawKeys(t, s, scratchAll); n != 0 {
		t.Fatalf("%d scratch keys after the next checkpoint began, want 0: folded", n)
	}
	if v, ok, _ := s.Reader("w").Get([]byte("big00042")); !ok || string(v) != big {
		t.Fatal("a folded key is not read back")
	}
	c, _ := s.LastCheckpoint()
	if c.Bytes > 10<<10 {
		t.Fatalf("checkpoint 2 wrote %d bytes: the scratch generation was copied into it", c.Bytes)
	}
	must(sc.Delete([]byte("b")))
	must(sc.Set([]byte("c"), []byte("3")))
	for i := range 3000 {
		must(sc.Delete(fmt.Appendf(nil, "big%05d", i)))
	}
	ckpt(3, nil)
	for _, r := range []runtime.StateReader{s.Reader("w"), sc} {
		if got, want := scan(t, r), "a=1 c=3 k=new"; got != want {
			t.Fatalf("after checkpoint 3: %q, want %q", got, want)
		}
	}
	must(sc.Set([]byte("z"), []byte("lost")))
	must(sc.Delete([]byte("a")))
	must(sc.(*Scratch).flush())
	must(s.Close()) // a crash: no checkpoint after these writes
	s, err = Open(dir, nil)
	must(err)
	defer s.Close()
	for k, want := range map[string]string{"a": "1", "b": "", "c": "3", "k": "new", "z": "", "big00007": ""} {
		v, ok, err := s.Reader("w").Get([]byte(k))
		must(err)
		if string(v) != want || ok != (want != "") {
			t.Fatalf("after restart Get(%s) = %q %v, want %q", k, v, ok, want)
		}
	}
	if n := rawKeys(t, s, scratchAll); n != 0 {
		t.Fatalf("%d scratch keys after a start, want 0", n)
	}
}
