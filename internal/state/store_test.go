package state

import (
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

func TestCheckpointRoundTrip(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := s.Last(); ok {
		t.Fatal("a new store has a checkpoint")
	}
	tx := s.Begin()
	w := tx.Writer("dedup")
	for i := range 10 {
		if err := w.Set(fmt.Appendf(nil, "k%02d", i), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
	}
	if err := tx.Writer("dedu").Set([]byte("p"), []byte("other node")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(1); err != nil {
		t.Fatal(err)
	}
	tx = s.Begin()
	w = tx.Writer("dedup")
	if err := w.DeleteRange([]byte("k00"), []byte("k05")); err != nil {
		t.Fatal(err)
	}
	if err := w.Delete([]byte("k09")); err != nil {
		t.Fatal(err)
	}
	if err := tx.Commit(2); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}

	s, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if id, ok := s.Last(); !ok || id != 2 {
		t.Fatalf("last = %d %v, want 2", id, ok)
	}
	var keys []string
	err = s.Reader("dedup").Scan(nil, nil, func(k, v []byte) error {
		keys = append(keys, fmt.Sprintf("%s=%d", k, v[0]))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := fmt.Sprint(keys), "[k05=5 k06=6 k07=7 k08=8]"; got != want {
		t.Fatalf("scan = %s, want %s (the node %q must not see node %q's keys)", got, want, "dedup", "dedu")
	}
	v, ok, err := s.Reader("dedu").Get([]byte("p"))
	if err != nil || !ok || string(v) != "other node" {
		t.Fatalf("get = %q %v %v", v, ok, err)
	}
	if _, ok, _ := s.Reader("dedup").Get([]byte("k09")); ok {
		t.Fatal("deleted key is still there")
	}
	list, err := s.List()
	if err != nil || len(list) != 2 || list[0].ID != 1 || list[1].ID != 2 {
		t.Fatalf("list = %+v %v", list, err)
	}
}

func TestHistoryIsBounded(t *testing.T) {
	s, err := Open(t.TempDir(), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	for id := uint64(1); id <= History+5; id++ {
		if err := s.Begin().Commit(id); err != nil {
			t.Fatal(err)
		}
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != History || list[0].ID != 6 {
		t.Fatalf("history holds %d checkpoints from %d, want %d from 6", len(list), list[0].ID, History)
	}
}

// TestCrashKeepsWholeCheckpoints cuts the file system back to what was
// synced at random points: the store then holds exactly the checkpoints
// whose Commit returned, each complete.
func TestCrashKeepsWholeCheckpoints(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 7))
	fs := vfs.NewCrashableMem()
	const dir = "/state"
	s, err := open(dir, nil, fs)
	if err != nil {
		t.Fatal(err)
	}
	committed := uint64(0)
	for round := range 20 {
		n := 1 + rng.IntN(200)
		id := committed + 1
		tx := s.Begin()
		for p := range 3 {
			w := tx.Writer(fmt.Sprintf("node%d", p))
			for i := range n {
				_ = w.Set(fmt.Appendf(nil, "%06d", i), fmt.Appendf(nil, "ckpt%d", id))
			}
			_ = w.DeleteRange(fmt.Appendf(nil, "%06d", n), nil)
		}
		if rng.IntN(3) == 0 {
			tx.Abort() // a checkpoint that failed before its commit
		} else {
			if err := tx.Commit(id); err != nil {
				t.Fatal(err)
			}
			committed = id
		}
		// Crash: keep only what was synced, reopen from that.
		crashed := fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: rng.IntN(100), RNG: rand.New(rand.NewPCG(uint64(round), 1))})
		_ = s.Close()
		fs = crashed
		s, err = open(dir, nil, fs)
		if err != nil {
			t.Fatalf("round %d: reopen: %v", round, err)
		}
		last, ok := s.Last()
		if committed > 0 && (!ok || last != committed) {
			t.Fatalf("round %d: last checkpoint %d, want %d", round, last, committed)
		}
		if committed == 0 {
			continue
		}
		want := fmt.Sprintf("ckpt%d", committed)
		for p := range 3 {
			count := 0
			err := s.Reader(fmt.Sprintf("node%d", p)).Scan(nil, nil, func(k, v []byte) error {
				if string(v) != want {
					return fmt.Errorf("key %s holds %s, want %s: a checkpoint was applied in part", k, v, want)
				}
				count++
				return nil
			})
			if err != nil {
				t.Fatalf("round %d: %v", round, err)
			}
			if count == 0 {
				t.Fatalf("round %d: node%d lost its state", round, p)
			}
		}
	}
	_ = s.Close()
}
