package file

import (
	"fmt"
	"maps"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/weir-dev/weir/internal/config"
	"github.com/weir-dev/weir/internal/runtime"
)

// memStore is a state store in memory for one node: the state of the last
// committed checkpoint in a map, read in key order, and checkpoints whose
// writes apply all at once or not at all.
type memStore struct {
	state map[string]string
	last  uint64
}

func newMemStore() *memStore { return &memStore{state: map[string]string{}} }

// reader returns the state of the last committed checkpoint.
func (s *memStore) reader() memReader { return memReader(maps.Clone(s.state)) }

// commit applies tx atomically and returns the checkpoint's id.
func (s *memStore) commit(tx *memTxn) uint64 {
	for _, op := range tx.ops {
		op(s.state)
	}
	s.last++
	return s.last
}

type memReader map[string]string

var _ runtime.StateReader = memReader(nil)

func (r memReader) Get(key []byte) ([]byte, bool, error) {
	v, ok := r[string(key)]
	if !ok {
		return nil, false, nil
	}
	return []byte(v), true, nil
}

func (r memReader) Scan(start, end []byte, fn func(key, value []byte) error) error {
	for _, k := range slices.Sorted(maps.Keys(r)) {
		if k < string(start) || (end != nil && k >= string(end)) {
			continue
		}
		if err := fn([]byte(k), []byte(r[k])); err != nil {
			return err
		}
	}
	return nil
}

// memTxn collects one checkpoint's writes.
type memTxn struct {
	ops []func(map[string]string)
}

var _ runtime.StateWriter = (*memTxn)(nil)

func (tx *memTxn) Set(key, value []byte) error {
	k, v := string(key), string(value)
	tx.ops = append(tx.ops, func(m map[string]string) { m[k] = v })
	return nil
}

func (tx *memTxn) Delete(key []byte) error {
	k := string(key)
	tx.ops = append(tx.ops, func(m map[string]string) { delete(m, k) })
	return nil
}

func (tx *memTxn) DeleteRange(start, end []byte) error {
	s, e := string(start), string(end)
	tx.ops = append(tx.ops, func(m map[string]string) {
		maps.DeleteFunc(m, func(k, _ string) bool { return k >= s && k < e })
	})
	return nil
}

// newCheckpointOutput returns an output of a pipeline with checkpoints,
// restored from the last checkpoint of store.
func newCheckpointOutput(t *testing.T, cfg OutputConfig, instance int, clock *fakeClock, store *memStore) *Output {
	t.Helper()
	env := outputEnv(instance)
	env.Checkpointing = true
	o, err := newOutput(cfg, env, clock.now)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Restore(t.Context(), store.reader()); err != nil {
		t.Fatal(err)
	}
	return o
}

// snapshot runs Snapshot of every output into a new checkpoint.
func snapshot(t *testing.T, outs ...*Output) *memTxn {
	t.Helper()
	tx := &memTxn{}
	for _, o := range outs {
		if err := o.Snapshot(t.Context(), tx); err != nil {
			t.Fatal(err)
		}
	}
	return tx
}

func committed(t *testing.T, id uint64, outs ...*Output) {
	t.Helper()
	for _, o := range outs {
		if err := o.Committed(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
}

// checkpoint takes a whole checkpoint: Snapshot, commit, Committed.
func checkpoint(t *testing.T, store *memStore, outs ...*Output) {
	t.Helper()
	committed(t, store.commit(snapshot(t, outs...)), outs...)
}

// crash abandons o the way a killed process does: buffered data is lost,
// what reached the operating system stays, nothing is finished.
func crash(o *Output) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.f != nil {
		_ = o.f.Close()
		o.f = nil
	}
}

// published returns the published files in dir, and fails on hidden ones
// when hidden is false.
func published(t *testing.T, dir string, hidden bool) []string {
	t.Helper()
	var names []string
	for _, n := range listDir(t, dir) {
		if strings.HasPrefix(n, ".") {
			if !hidden {
				t.Fatalf("%s is left in progress", n)
			}
			continue
		}
		names = append(names, n)
	}
	return names
}

func testLines(n int) []string {
	var vs []string
	for i := range n {
		vs = append(vs, fmt.Sprintf(`{"n":%03d,"pad":"%s"}`, i, strings.Repeat("x", 12))) // 30 bytes + \n
	}
	return vs
}

func joinLines(vs []string) string { return strings.Join(vs, "\n") + "\n" }

func TestOutputCheckpointPublishesOnCommit(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultOutputConfig()
	cfg.Dir = dir
	cfg.RotateBytes = 100 // three 31-byte lines per file
	clock := &fakeClock{t: t0}
	store := newMemStore()
	o := newCheckpointOutput(t, cfg, 0, clock, store)
	vs := testLines(16)

	mustWrite(t, o, vs[:10]...) // files 1-3 full, file 4 has one line
	mustFlush(t, o)
	if names := published(t, dir, true); len(names) != 0 {
		t.Fatalf("published before any checkpoint: %v", names)
	}
	tx := snapshot(t, o)
	if names := published(t, dir, true); len(names) != 0 {
		t.Fatalf("published by Snapshot: %v", names)
	}
	id := store.commit(tx)
	want := `{"v":1,"seq":4,"pending":[` +
		`{"file":".events-0-1.inprogress","final":"events-20240501T120000Z-0-000001.ndjson","size":93},` +
		`{"file":".events-0-2.inprogress","final":"events-20240501T120000Z-0-000002.ndjson","size":93},` +
		`{"file":".events-0-3.inprogress","final":"events-20240501T120000Z-0-000003.ndjson","size":93}],` +
		`"active":{"file":".events-0-4.inprogress","final":"events-20240501T120000Z-0-000004.ndjson","size":31}}`
	if got := store.state["files/0"]; got != want || len(store.state) != 1 {
		t.Fatalf("state %v,\nwant files/0 = %s", store.state, want)
	}

	// Between Snapshot and Committed, file 4 grows and is rotated: the
	// checkpoint covers only its first line, so it stays pending.
	mustWrite(t, o, vs[10:13]...)
	committed(t, id, o)
	names := published(t, dir, true)
	wantNames := []string{
		"events-20240501T120000Z-0-000001.ndjson",
		"events-20240501T120000Z-0-000002.ndjson",
		"events-20240501T120000Z-0-000003.ndjson",
	}
	if !slices.Equal(names, wantNames) {
		t.Fatalf("after Committed: %v, want %v", names, wantNames)
	}
	if got := readAllFiles(t, dir, names); got != joinLines(vs[:9]) {
		t.Fatalf("content %q", got)
	}
	mustWrite(t, o, vs[13:]...)
	checkpoint(t, store, o)
	checkpoint(t, store, o) // nothing new: publishes nothing twice
	if err := o.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	names = published(t, dir, false)
	if len(names) != 6 {
		t.Fatalf("files %v", names)
	}
	if got := readAllFiles(t, dir, names); got != joinLines(vs) {
		t.Fatalf("content %q", got)
	}
}

func TestOutputCheckpointTimeRotation(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultOutputConfig()
	cfg.Dir = dir
	cfg.RotateInterval = time.Minute
	clock := &fakeClock{t: t0}
	store := newMemStore()
	o := newCheckpointOutput(t, cfg, 0, clock, store)

	// Rotated between Snapshot and Committed without growing: the
	// checkpoint covers it whole, Committed publishes it.
	mustWrite(t, o, "1")
	tx := snapshot(t, o)
	clock.add(time.Minute)
	mustFlush(t, o)
	if names := published(t, dir, true); len(names) != 0 {
		t.Fatalf("published by rotation alone: %v", names)
	}
	committed(t, store.commit(tx), o)
	if names := published(t, dir, false); !slices.Equal(names, []string{"events-20240501T120000Z-0-000001.ndjson"}) {
		t.Fatalf("after Committed: %v", names)
	}

	// Rotated after a completed checkpoint covered it: published at once.
	mustWrite(t, o, "2")
	checkpoint(t, store, o)
	clock.add(time.Minute)
	mustFlush(t, o)
	if names := published(t, dir, false); len(names) != 2 {
		t.Fatalf("a covered file was not published by rotation: %v", names)
	}

	// Rotated after growing: waits for the next checkpoint.
	mustWrite(t, o, "3")
	checkpoint(t, store, o)
	mustWrite(t, o, "4")
	clock.add(time.Minute)
	mustFlush(t, o)
	if names := published(t, dir, true); len(names) != 2 {
		t.Fatalf("an uncovered file was published: %v", names)
	}
	checkpoint(t, store, o)
	if err := o.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	names := published(t, dir, false)
	if got := readAllFiles(t, dir, names); len(names) != 3 || got != "1\n2\n3\n4\n" {
		t.Fatalf("files %v, content %q", names, got)
	}
}

func TestOutputCheckpointCrashBeforeCommitted(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultOutputConfig()
	cfg.Dir = dir
	cfg.RotateBytes = 100
	clock := &fakeClock{t: t0}
	store := newMemStore()
	vs := testLines(20)
	o := newCheckpointOutput(t, cfg, 1, clock, store)
	mustWrite(t, o, vs[:5]...) // file 1 full, file 2 has two lines
	checkpoint(t, store, o)    // publishes file 1
	mustWrite(t, o, vs[5:8]...)
	store.commit(snapshot(t, o)) // file 2 pending, file 3 active (2 lines)
	// The crash comes before Committed, after more events: file 3 grows
	// and files 4 and 5 hold events after the checkpoint.
	mustWrite(t, o, vs[8:15]...)
	mustFlush(t, o)
	crash(o)
	if names := published(t, dir, true); len(names) != 1 {
		t.Fatalf("before restart: %v", names)
	}

	for range 2 { // a second crash right after Restore changes nothing
		o = newCheckpointOutput(t, cfg, 1, clock, store)
		names := published(t, dir, false) // no file left in progress
		if len(names) != 3 {
			t.Fatalf("after restore: %v", names)
		}
		if got := readAllFiles(t, dir, names); got != joinLines(vs[:8]) {
			t.Fatalf("after restore: content %q, want events up to the checkpoint", got)
		}
		crash(o)
	}
	o = newCheckpointOutput(t, cfg, 1, clock, store)
	mustWrite(t, o, vs[8:]...) // the replay
	checkpoint(t, store, o)
	if err := o.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	names := published(t, dir, false)
	if got := readAllFiles(t, dir, names); got != joinLines(vs) {
		t.Fatalf("content %q", got)
	}
	// Files 4 and 5, written after the checkpoint and deleted, were never
	// published: their numbers are used again.
	if last := names[len(names)-1]; len(names) != 7 || !strings.HasSuffix(last, "-1-000007.ndjson") {
		t.Fatalf("files %v: numbering does not continue after the published files", names)
	}
}

func TestOutputCheckpointCrashBeforeStateCommit(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultOutputConfig()
	cfg.Dir = dir
	cfg.RotateBytes = 100
	clock := &fakeClock{t: t0}
	store := newMemStore()
	vs := testLines(10)
	o := newCheckpointOutput(t, cfg, 0, clock, store)
	mustWrite(t, o, vs[:2]...)
	checkpoint(t, store, o)
	mustWrite(t, o, vs[2:7]...)
	snapshot(t, o) // this checkpoint never becomes durable
	crash(o)

	o = newCheckpointOutput(t, cfg, 0, clock, store)
	if names := published(t, dir, false); len(names) != 1 || readAllFiles(t, dir, names) != joinLines(vs[:2]) {
		t.Fatalf("after restore: %v", names)
	}
	// A checkpoint that fails without a crash: Snapshot, no Committed.
	mustWrite(t, o, vs[2:7]...)
	snapshot(t, o)
	mustWrite(t, o, vs[7:]...)
	checkpoint(t, store, o)
	if err := o.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := readAllFiles(t, dir, published(t, dir, false)); got != joinLines(vs) {
		t.Fatalf("content %q", got)
	}
}

func TestOutputCheckpointEmptyStateDeletesLeftovers(t *testing.T) {
	dir := t.TempDir()
	// Left by a run without checkpoints (or before the first checkpoint).
	writeFile(t, filepath.Join(dir, ".events-0-7.inprogress"), "a\nb\n")
	writeFile(t, filepath.Join(dir, "events-20240101T000000Z-0-000009.ndjson"), "old\n")
	writeFile(t, filepath.Join(dir, ".events-1-3.inprogress"), "other instance\n")
	writeFile(t, filepath.Join(dir, ".other-0-4.inprogress"), "other prefix\n")
	cfg := DefaultOutputConfig()
	cfg.Dir = dir
	o := newCheckpointOutput(t, cfg, 0, &fakeClock{t: t0}, newMemStore())
	want := []string{
		".events-1-3.inprogress",
		".other-0-4.inprogress",
		"events-20240101T000000Z-0-000009.ndjson",
	}
	if names := listDir(t, dir); !slices.Equal(names, want) {
		t.Fatalf("after restore: %v, want %v", names, want)
	}
	mustWrite(t, o, "new")
	if err := o.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	// No checkpoint covers "new": Close keeps it in progress.
	want = append(want, ".events-0-10.inprogress")
	slices.Sort(want)
	if names := listDir(t, dir); !slices.Equal(names, want) {
		t.Fatalf("after close: %v, want %v", names, want)
	}
}

func TestOutputCheckpointRestoreAfterClose(t *testing.T) {
	dir := t.TempDir()
	consumed := t.TempDir()
	cfg := DefaultOutputConfig()
	cfg.Dir = dir
	cfg.RotateBytes = 100
	clock := &fakeClock{t: t0}
	store := newMemStore()
	vs := testLines(12)
	o := newCheckpointOutput(t, cfg, 0, clock, store)
	mustWrite(t, o, vs[:4]...) // file 1 pending, file 2 active
	checkpoint(t, store, o)
	mustWrite(t, o, vs[4:8]...)
	checkpoint(t, store, o) // the final checkpoint of a graceful stop
	if err := o.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	names := published(t, dir, false)
	if got := readAllFiles(t, dir, names); got != joinLines(vs[:8]) {
		t.Fatalf("after close: %v %q", names, got)
	}
	// A reader takes the last file away; the state still names it.
	last := names[len(names)-1]
	if err := os.Rename(filepath.Join(dir, last), filepath.Join(consumed, last)); err != nil {
		t.Fatal(err)
	}

	o = newCheckpointOutput(t, cfg, 0, clock, store)
	if got := published(t, dir, false); !slices.Equal(got, names[:len(names)-1]) {
		t.Fatalf("restore after close changed files: %v", got)
	}
	mustWrite(t, o, vs[8:]...)
	checkpoint(t, store, o)
	if err := o.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	after := published(t, dir, false)
	if slices.Contains(after, last) {
		t.Fatalf("file name %s reused: %v", last, after)
	}
	all := readAllFiles(t, dir, names[:len(names)-1]) + readAllFiles(t, consumed, []string{last}) +
		readAllFiles(t, dir, after[len(names)-1:])
	if all != joinLines(vs) {
		t.Fatalf("content %q", all)
	}
}

func TestOutputCheckpointCloseKeepsUncoveredFiles(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultOutputConfig()
	cfg.Dir = dir
	cfg.RotateBytes = 100
	clock := &fakeClock{t: t0}
	store := newMemStore()
	vs := testLines(12)
	o := newCheckpointOutput(t, cfg, 0, clock, store)
	mustWrite(t, o, vs[:4]...)
	checkpoint(t, store, o)
	// The pipeline fails: Close without a final checkpoint.
	mustWrite(t, o, vs[4:8]...)
	if err := o.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := readAllFiles(t, dir, published(t, dir, true)); got != joinLines(vs[:3]) {
		t.Fatalf("after close: %q, want only what the checkpoint published", got)
	}
	o = newCheckpointOutput(t, cfg, 0, clock, store)
	if got := readAllFiles(t, dir, published(t, dir, false)); got != joinLines(vs[:4]) {
		t.Fatalf("after restore: %q, want what the checkpoint covered", got)
	}
	mustWrite(t, o, vs[4:]...)
	checkpoint(t, store, o)
	if err := o.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	if got := readAllFiles(t, dir, published(t, dir, false)); got != joinLines(vs) {
		t.Fatalf("content %q", got)
	}
}

func TestOutputCheckpointRestoreRejectsBadState(t *testing.T) {
	dir := t.TempDir()
	writeFile(t, filepath.Join(dir, ".events-0-1.inprogress"), "a\n")
	cfg := DefaultOutputConfig()
	cfg.Dir = dir
	env := outputEnv(0)
	env.Checkpointing = true
	for _, c := range []struct{ state, want string }{
		{`{"v":1,`, "decode state"},
		{`{"v":2}`, "version 2"},
		{`{"v":1,"active":{"file":"../.x.inprogress","final":"x","size":1}}`, "corrupt"},
		{`{"v":1,"pending":[{"file":".events-0-1.inprogress","final":"../x","size":1}]}`, "corrupt"},
		{`{"v":1,"active":{"file":".events-0-1.inprogress","final":"x","size":5}}`, "fewer than the 5"},
	} {
		o, err := newOutput(cfg, env, time.Now)
		if err != nil {
			t.Fatal(err)
		}
		err = o.Restore(t.Context(), memReader{"files/0": c.state})
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("state %s: Restore = %v, want an error with %q", c.state, err, c.want)
		}
	}
	if names := listDir(t, dir); !slices.Equal(names, []string{".events-0-1.inprogress"}) {
		t.Fatalf("a rejected state changed files: %v", names)
	}
}

func TestOutputCheckpointNoSnapshotAfterWriteError(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultOutputConfig()
	cfg.Dir = dir
	store := newMemStore()
	o := newCheckpointOutput(t, cfg, 0, &fakeClock{t: t0}, store)
	mustWrite(t, o, "1")
	_ = o.f.Close() // the buffered line cannot reach the file
	if err := o.Flush(t.Context()); err == nil {
		t.Fatal("Flush to a closed file succeeded")
	}
	if err := o.Snapshot(t.Context(), &memTxn{}); err == nil || !strings.Contains(err.Error(), "no checkpoint can complete") {
		t.Fatalf("Snapshot after a lost write = %v", err)
	}
	if err := o.Write(t.Context(), events("2")); err == nil {
		t.Fatal("Write after a lost write succeeded")
	}
	_ = o.Close(t.Context())
}

// TestOutputCheckpointConcurrent takes checkpoints on another goroutine
// while events are written, as the runtime does.
func TestOutputCheckpointConcurrent(t *testing.T) {
	dir := t.TempDir()
	cfg := DefaultOutputConfig()
	cfg.Dir = dir
	cfg.RotateBytes = 500
	cfg.RotateInterval = time.Millisecond
	store := newMemStore()
	env := outputEnv(0)
	env.Checkpointing = true
	o, err := newOutput(cfg, env, time.Now)
	if err != nil {
		t.Fatal(err)
	}
	if err := o.Restore(t.Context(), store.reader()); err != nil {
		t.Fatal(err)
	}
	const n = 3000
	var wg sync.WaitGroup
	done := make(chan struct{})
	wg.Go(func() {
		defer close(done)
		for i := range n {
			if err := o.Write(t.Context(), events(strconv.Itoa(i))); err != nil {
				t.Error(err)
				return
			}
			if i%7 == 0 {
				if err := o.Flush(t.Context()); err != nil {
					t.Error(err)
					return
				}
			}
		}
	})
	var mu sync.Mutex // guards store
	wg.Go(func() {
		for {
			select {
			case <-done:
				return
			default:
			}
			tx := &memTxn{}
			if err := o.Snapshot(t.Context(), tx); err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			id := store.commit(tx)
			mu.Unlock()
			if err := o.Committed(t.Context(), id); err != nil {
				t.Error(err)
				return
			}
		}
	})
	wg.Wait()
	checkpoint(t, store, o)
	if err := o.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	got := strings.Split(strings.TrimSuffix(readAllFiles(t, dir, sortBySeq(t, published(t, dir, false))), "\n"), "\n")
	if len(got) != n {
		t.Fatalf("%d lines, want %d", len(got), n)
	}
	for i, l := range got {
		if l != strconv.Itoa(i) {
			t.Fatalf("line %d is %q", i, l)
		}
	}
}

// sortBySeq sorts published names by their seq (the last dash-separated
// part).
func sortBySeq(t *testing.T, names []string) []string {
	t.Helper()
	seq := func(name string) int {
		base := strings.TrimSuffix(name, filepath.Ext(name))
		n, err := strconv.Atoi(base[strings.LastIndexByte(base, '-')+1:])
		if err != nil {
			t.Fatalf("file name %s", name)
		}
		return n
	}
	slices.SortFunc(names, func(a, b string) int { return seq(a) - seq(b) })
	return names
}

// TestOutputCheckpointExactlyOnceAcrossCrashes runs two instances that
// write their own streams of events with checkpoints, crashes at random
// points (between any writes, before a checkpoint's state is durable,
// between that and Committed, with torn lines, or closing without a final
// checkpoint as a failing pipeline does), restarts from the last checkpoint
// and replays the events after the position it recorded, while a reader
// takes published files away. Every event must be published exactly once,
// in order.
func TestOutputCheckpointExactlyOnceAcrossCrashes(t *testing.T) {
	for seed := range uint64(60) {
		t.Run(strconv.FormatUint(seed, 10), func(t *testing.T) {
			t.Parallel()
			crashLoop(t, seed)
		})
	}
}

func crashLoop(t *testing.T, seed uint64) {
	const (
		instances = 2
		total     = 300
	)
	rng := rand.New(rand.NewPCG(seed, 0xf17e))
	dir := filepath.Join(t.TempDir(), "out")
	consumed := t.TempDir()
	cfg := DefaultOutputConfig()
	cfg.Dir = dir
	cfg.RotateBytes = 0
	if rng.IntN(4) > 0 {
		cfg.RotateBytes = config.ByteSize(20 + rng.IntN(200))
	}
	if rng.IntN(2) == 0 {
		cfg.RotateInterval = time.Duration(1+rng.IntN(10)) * time.Second
	}
	clock := &fakeClock{t: t0}
	store := newMemStore()
	value := func(inst, n int) string { return fmt.Sprintf(`{"i":%d,"n":%d}`, inst, n) }
	// position is what the input of inst committed with the last checkpoint.
	position := func(inst int) int {
		n, _ := strconv.Atoi(store.state["input/"+strconv.Itoa(inst)])
		return n
	}
	crashes := 0
	for {
		outs := make([]*Output, instances)
		next := make([]int, instances) // the last event each input has read
		for i := range outs {
			outs[i] = newCheckpointOutput(t, cfg, i, clock, store)
			next[i] = position(i) // the replay starts here
		}
		canCrash := crashes < 40
		crashed := false
		for !crashed {
			if canCrash && rng.IntN(20) == 0 {
				crashed = true
				break
			}
			finished := true
			for i, o := range outs {
				k := min(1+rng.IntN(6), total-next[i])
				var vs []string
				for range k {
					next[i]++
					vs = append(vs, value(i, next[i]))
				}
				mustWrite(t, o, vs...)
				if rng.IntN(2) == 0 {
					mustFlush(t, o)
				}
				finished = finished && next[i] == total
			}
			clock.add(time.Duration(rng.IntN(1500)) * time.Millisecond)
			if rng.IntN(8) == 0 {
				moveAway(t, dir, consumed)
			}
			if finished {
				break
			}
			if rng.IntN(4) != 0 {
				continue
			}
			// A checkpoint: the runtime waits until everything read is
			// written and acknowledged, so after a Flush.
			for _, o := range outs {
				mustFlush(t, o)
			}
			tx := snapshot(t, outs...)
			for i := range outs {
				_ = tx.Set([]byte("input/"+strconv.Itoa(i)), []byte(strconv.Itoa(next[i])))
			}
			if rng.IntN(3) == 0 {
				// Before Committed, time rotation still runs, and events of
				// inputs that were not drained arrive (after the position
				// the checkpoint records).
				clock.add(time.Duration(rng.IntN(3000)) * time.Millisecond)
				for i, o := range outs {
					if k := min(rng.IntN(3), total-next[i]); k > 0 {
						var vs []string
						for range k {
							next[i]++
							vs = append(vs, value(i, next[i]))
						}
						mustWrite(t, o, vs...)
					}
					mustFlush(t, o)
				}
			}
			switch r := rng.IntN(10); {
			case r == 0 && canCrash: // before the state is durable
				crashed = true
			case r == 1: // the checkpoint fails; the pipeline goes on
			default:
				id := store.commit(tx)
				if canCrash && rng.IntN(6) == 0 { // before Committed
					crashed = true
					break
				}
				committed(t, id, outs...)
			}
		}
		if !crashed {
			checkpoint(t, store, outs...) // the final checkpoint
			for _, o := range outs {
				if err := o.Close(t.Context()); err != nil {
					t.Fatal(err)
				}
			}
			break
		}
		crashes++
		for _, o := range outs {
			switch rng.IntN(4) {
			case 0: // a failing pipeline closes its outputs
				if err := o.Close(t.Context()); err != nil {
					t.Fatal(err)
				}
			case 1: // a torn line reached the file
				tmp := ""
				if o.f != nil {
					tmp = o.tmpPath
				}
				crash(o)
				if tmp != "" {
					appendFile(t, tmp, `{"i":9,"n":`)
				}
			default:
				crash(o)
			}
		}
	}
	moveAway(t, dir, consumed)
	if names := listDir(t, dir); len(names) != 0 {
		t.Fatalf("left in the directory: %v", names)
	}
	for i := range instances {
		var names []string
		for _, n := range listDir(t, consumed) {
			if strings.Contains(n, fmt.Sprintf("Z-%d-", i)) {
				names = append(names, n)
			}
		}
		got := readAllFiles(t, consumed, sortBySeq(t, names))
		var want strings.Builder
		for n := 1; n <= total; n++ {
			want.WriteString(value(i, n) + "\n")
		}
		if got != want.String() {
			t.Fatalf("instance %d after %d crashes (rotate_bytes %d, rotate_interval %v): published events differ\ngot:\n%s",
				i, crashes, cfg.RotateBytes, cfg.RotateInterval, got)
		}
	}
}

// moveAway moves the published files of dir to consumed, as a reader of the
// directory would.
func moveAway(t *testing.T, dir, consumed string) {
	t.Helper()
	for _, n := range published(t, dir, true) {
		if _, err := os.Stat(filepath.Join(consumed, n)); err == nil {
			t.Fatalf("file name %s published twice", n)
		}
		if err := os.Rename(filepath.Join(dir, n), filepath.Join(consumed, n)); err != nil {
			t.Fatal(err)
		}
	}
}
