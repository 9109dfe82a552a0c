package state

import (
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
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

func TestCheckpointRecordsNodesWritten(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	tx := s.Begin()
	// Two instances of one node share its key space and its counts.
	_ = tx.Writer("dedup").Set([]byte("a"), []byte("12345"))
	_ = tx.Writer("dedup").Set([]byte("bb"), []byte("6"))
	_ = tx.Writer("dedup").DeleteRange([]byte("x"), nil)
	_ = tx.Writer("files").Delete([]byte("old"))
	tx.Writer("idle") // a Stateful component with nothing to write
	if err := tx.Commit(1); err != nil {
		t.Fatal(err)
	}
	want := []NodeWrite{{Node: "dedup", Sets: 2, RangeDeletes: 1, Bytes: 9}, {Node: "files", Deletes: 1}}
	if c, _ := s.LastCheckpoint(); !slices.Equal(c.Nodes, want) || c.Bytes == 0 || c.Duration <= 0 {
		t.Fatalf("record %+v, want nodes %+v", c, want)
	}
	// A record written before the nodes were recorded still reads.
	old := `{"id":2,"time":"2024-05-01T12:00:00Z","bytes":10,"duration_ns":1500000}`
	b := s.db.NewBatch()
	_ = b.Set(lastKey, []byte(old), nil)
	_ = b.Set(append(slices.Clone(histPrefix), 0, 0, 0, 0, 0, 0, 0, 2), []byte(old), nil)
	if err := b.Commit(pebble.Sync); err != nil {
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
	list, err := s.List()
	if err != nil || len(list) != 2 {
		t.Fatalf("list %+v %v", list, err)
	}
	if c := list[1]; c.ID != 2 || c.Nodes != nil || c.Duration != 1500*time.Microsecond || c.Bytes != 10 {
		t.Fatalf("old record %+v", c)
	}
	if len(list[0].Nodes) != 2 {
		t.Fatalf("new record %+v", list[0])
	}
}

// dirState lists a directory's files with their sizes and modification
// times, to show that something left it alone. The LOCK file is left out:
// taking the lock recreates it, empty as it was.
func dirState(t *testing.T, dir string) string {
	t.Helper()
	es, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, e := range es {
		if e.Name() == "LOCK" {
			continue
		}
		fi, err := e.Info()
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %d %v\n", e.Name(), fi.Size(), fi.ModTime().UnixNano())
	}
	return b.String()
}

func TestOpenReadOnly(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	for id := uint64(1); id <= 3; id++ {
		tx := s.Begin()
		_ = tx.Writer("files").Set([]byte("pos"), fmt.Appendf(nil, "%d", id*100))
		_ = tx.Writer("dedup").Set([]byte{1, byte(id)}, []byte("v"))
		if err := tx.Commit(id); err != nil {
			t.Fatal(err)
		}
	}

	// While the store is open (a running pipeline) it cannot be read.
	if _, err := OpenReadOnly(dir); !errors.Is(err, ErrLocked) {
		t.Fatalf("open while in use: %v, want ErrLocked", err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	before := dirState(t, dir)
	r, err := OpenReadOnly(dir)
	if err != nil {
		t.Fatal(err)
	}
	if id, ok := r.Last(); !ok || id != 3 {
		t.Fatalf("last %d %v", id, ok)
	}
	list, err := r.List()
	if err != nil || len(list) != 3 {
		t.Fatalf("list %+v %v", list, err)
	}
	nodes, err := r.Nodes()
	want := []NodeState{{Node: "dedup", Keys: 3, KeyBytes: 6, ValueBytes: 3}, {Node: "files", Keys: 1, KeyBytes: 3, ValueBytes: 3}}
	if err != nil || !slices.Equal(nodes, want) {
		t.Fatalf("nodes %+v %v, want %+v", nodes, err, want)
	}
	if err := r.Begin().Commit(4); err == nil {
		t.Fatal("a read-only store committed a checkpoint")
	}
	if _, err := Open(dir, nil); err == nil {
		t.Fatal("a store open for reading could be opened for writing")
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if after := dirState(t, dir); after != before {
		t.Fatalf("reading changed the directory:\n%s\nwas:\n%s", after, before)
	}
	// Released: the pipeline can open it again.
	s, err = Open(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = s.Close()
}

func TestOpenReadOnlyNoStore(t *testing.T) {
	empty := t.TempDir()
	file := filepath.Join(empty, "file")
	if err := os.WriteFile(file, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	foreign := t.TempDir()
	db, err := pebble.Open(foreign, &pebble.Options{Logger: pebbleLogger{slog.New(slog.DiscardHandler)}})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Set([]byte("user-key"), []byte("v"), pebble.Sync); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ dir, want string }{
		{filepath.Join(empty, "missing"), "does not exist"},
		{file, "not a directory"},
		{empty, "holds no Pebble database"},
		{foreign, "weir did not write"},
	} {
		before := dirState(t, empty)
		_, err := OpenReadOnly(c.dir)
		if !errors.Is(err, ErrNoStore) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want ErrNoStore (%s)", c.dir, err, c.want)
		}
		if after := dirState(t, empty); after != before {
			t.Errorf("%s: the directory changed:\n%s", c.dir, after)
		}
	}
	if _, err := os.Stat(filepath.Join(empty, "LOCK")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a LOCK file was left in a directory that is not a store: %v", err)
	}
}
