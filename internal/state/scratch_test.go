package state

import (
	"fmt"
	"strings"
	"testing"

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
	if got := scan(t, s.Reader("w2").Scratch()); got != "" {
		t.Fatalf("w2 after restart %q, want nothing: no checkpoint took its scratch", got)
	}
	c, _ := s.LastCheckpoint()
	if fmt.Sprint(c.Nodes) != "[{w 3 2 1 6}]" {
		t.Fatalf("checkpoint 2 recorded %v", c.Nodes)
	}
}
