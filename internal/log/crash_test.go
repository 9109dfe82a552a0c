package log

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

func TestSecondOpenIsLocked(t *testing.T) {
	dir := t.TempDir()
	p := mustOpen(t, dir, Options{})
	mustAppend(t, p, Record{Value: val(0)})
	_, err := Open(dir, Options{})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) || !strings.Contains(err.Error(), "this process") {
		t.Fatalf("second Open: %v; want ErrLocked naming %s and the holder", err, dir)
	}
	// A reader needs no lock.
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	if hw := r.HighWatermark(); hw != 1 {
		t.Fatalf("reader HighWatermark = %d, want 1", hw)
	}
	_ = r.Close()
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	p = mustOpen(t, dir, Options{}) // released by Close
	_ = p.Close()
}

func TestOpenLogLocked(t *testing.T) {
	dir := t.TempDir()
	l, err := OpenLog(dir, 2, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	_, err = OpenLog(dir, 2, Options{})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), filepath.Join(dir, "0")) {
		t.Fatalf("second OpenLog: %v; want ErrLocked naming partition 0", err)
	}
}

// recordLines parses a sync record into its lines, in order.
func recordLines(t *testing.T, path string) [][2]string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var out [][2]string
	for line := range strings.Lines(string(b)) {
		p, n, ok := strings.Cut(strings.TrimSuffix(line, "\n"), "\t")
		if !ok || !filepath.IsAbs(p) {
			t.Fatalf("bad record line %q", line)
		}
		out = append(out, [2]string{p, n})
	}
	return out
}

func TestSyncRecordFromEnv(t *testing.T) {
	dir := t.TempDir()
	record := filepath.Join(t.TempDir(), "syncs")
	t.Setenv(SyncRecordEnv, record)
	p := mustOpen(t, dir, Options{SegmentBytes: 200})
	for i := range 6 {
		mustAppend(t, p, Record{Timestamp: t0, Value: val(i)})
	}
	if err := p.Commit("r", 0); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	last := map[string]string{}
	for _, l := range recordLines(t, record) {
		last[l[0]] = l[1]
	}
	bases, _ := listSegments(osFS{}, dir)
	if len(bases) < 2 {
		t.Fatalf("segments %v, want a roll", bases)
	}
	// Every segment, the sealed segments' indexes, meta and readers are
	// recorded at their full size; the LOCK file never is.
	want := []string{filepath.Join(dir, metaFile), filepath.Join(dir, readersFile), indexPath(dir, bases[0])}
	for _, b := range bases {
		want = append(want, segPath(dir, b))
	}
	for _, path := range want {
		st, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		if last[path] != strconv.FormatInt(st.Size(), 10) {
			t.Errorf("%s: recorded size %q, file has %d", path, last[path], st.Size())
		}
	}
	if _, ok := last[filepath.Join(dir, lockFile)]; ok {
		t.Error("LOCK recorded")
	}
}

func TestSyncRecorderModel(t *testing.T) {
	dir := t.TempDir()
	record := filepath.Join(dir, "record") // inside: CutToSynced must spare it
	r := newSyncRecorder(osFS{}, record)
	write := func(name, data string, sync bool) {
		t.Helper()
		f, err := r.OpenFile(filepath.Join(dir, name), os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt([]byte(data), 0); err != nil {
			t.Fatal(err)
		}
		if sync {
			if err := f.Sync(); err != nil {
				t.Fatal(err)
			}
		}
		_ = f.Close()
	}
	write("durable", "0123456789", true) // created, synced, directory synced below
	write("new", "abc", true)            // created and synced, directory not synced after
	if err := r.SyncDir(dir); err != nil {
		t.Fatal(err)
	}
	write("durable", "0123456789-more", false) // grown, not synced
	write("late", "xyz", true)                 // created after the directory fsync
	write("tmp", "replacement", true)
	if err := r.Rename(filepath.Join(dir, "tmp"), filepath.Join(dir, "new")); err != nil {
		t.Fatal(err) // replaces a durable file: counts at once
	}
	write("tmp2", "renamed", true)
	if err := r.Rename(filepath.Join(dir, "tmp2"), filepath.Join(dir, "fresh")); err != nil {
		t.Fatal(err) // a new name: needs a directory fsync, which never comes
	}
	// A torn last line (the writer died mid-write) does not count.
	f, _ := os.OpenFile(record, os.O_WRONLY|os.O_APPEND, 0)
	_, _ = f.WriteString(filepath.Join(dir, "late") + "\t3")
	_ = f.Close()
	if err := CutToSynced(record, dir); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if e.Name() != "record" {
			got[e.Name()] = string(mustRead(t, filepath.Join(dir, e.Name())))
		}
	}
	want := map[string]string{"durable": "0123456789", "new": "replacement"}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("after CutToSynced: %q, want %q", got, want)
	}
}

var errPowerCut = errors.New("power cut")

// crashFS is the real file system until the power is cut: from then on
// every change (write, truncate, sync, create, rename, remove) fails, as if
// the machine had stopped, and the files stay as they were at that moment.
// The cut happens before the cutAt-th sync (file or directory) counted from
// arm.
type crashFS struct {
	osFS
	syncs, cutAt atomic.Int64

	// mu is held shared by every change and exclusively to cut, so the cut
	// falls between changes.
	mu  sync.RWMutex
	cut bool
}

func (c *crashFS) arm(n int64) { c.syncs.Store(0); c.cutAt.Store(n) }

func (c *crashFS) powerCut() {
	c.mu.Lock()
	c.cut = true
	c.mu.Unlock()
}

func (c *crashFS) change(isSync bool, op func() error) error {
	if isSync {
		if at := c.cutAt.Load(); at > 0 && c.syncs.Add(1) == at {
			c.powerCut()
		}
	}
	c.mu.RLock()
	defer c.mu.RUnlock()
	if c.cut {
		return errPowerCut
	}
	return op()
}

func (c *crashFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	var f file
	open := func() (err error) {
		f, err = c.osFS.OpenFile(name, flag, perm)
		return err
	}
	var err error
	if flag&(os.O_CREATE|os.O_TRUNC) != 0 {
		err = c.change(false, open)
	} else {
		err = open()
	}
	if err != nil {
		return nil, err
	}
	return &crashFile{file: f, c: c}, nil
}

func (c *crashFS) MkdirAll(name string, perm os.FileMode) error {
	return c.change(false, func() error { return c.osFS.MkdirAll(name, perm) })
}
func (c *crashFS) Remove(name string) error {
	return c.change(false, func() error { return c.osFS.Remove(name) })
}
func (c *crashFS) Rename(o, n string) error {
	return c.change(false, func() error { return c.osFS.Rename(o, n) })
}
func (c *crashFS) SyncDir(name string) error {
	return c.change(true, func() error { return c.osFS.SyncDir(name) })
}

type crashFile struct {
	file
	c *crashFS
}

func (f *crashFile) WriteAt(b []byte, off int64) (n int, err error) {
	err = f.c.change(false, func() error { n, err = f.file.WriteAt(b, off); return err })
	return n, err
}
func (f *crashFile) Truncate(size int64) error {
	return f.c.change(false, func() error { return f.file.Truncate(size) })
}
func (f *crashFile) Sync() error { return f.c.change(true, f.file.Sync) }

// crashRecord is record j of append i of writer w in a round: its content
// follows from those numbers alone.
func crashRecord(rng *rand.Rand, round, w, i, j int) Record {
	r := Record{Timestamp: t0.Add(msec(i)), Value: fmt.Appendf(nil, "r%d-w%d-i%d-j%d:", round, w, i, j)}
	r.Value = append(r.Value, strings.Repeat("x", rng.IntN(300))...)
	if rng.IntN(4) > 0 {
		r.Key = fmt.Appendf(nil, "k%d", rng.IntN(10))
	}
	if rng.IntN(3) == 0 {
		r.Headers = []Header{{Key: "trace", Value: fmt.Appendf(nil, "%x", rng.Uint64())}}
	}
	return r
}

// TestPowerLossAtRandomPoints appends with concurrent writers while a
// reader commits, cuts the power at a random sync (the sync recorder wraps
// the file system that fails after the cut), applies CutToSynced, reopens,
// and checks that every acknowledged append and commit survived
// byte-identical. Some rounds cut during recovery itself; the later rounds
// let retention delete segments.
func TestPowerLossAtRandomPoints(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	dir := t.TempDir()
	record := filepath.Join(t.TempDir(), "syncs")
	opts := Options{SegmentBytes: 4 << 10, IndexIntervalBytes: 512}

	acked := map[int64]Record{}
	var ackedMu sync.Mutex
	committed := int64(0) // of reader "r", acknowledged
	verify := func(p *Partition, round int) {
		t.Helper()
		start, hw := p.LogStartOffset(), p.HighWatermark()
		c := p.Committed()
		if c["r"] < committed || c["r"] > hw || start > c["r"] {
			t.Fatalf("round %d: reader r committed %d (acknowledged %d), log [%d, %d)", round, c["r"], committed, start, hw)
		}
		got := map[int64]Record{}
		for from := start; from < hw; {
			recs, next, err := p.ReadFrom(from, 64<<10)
			if err != nil {
				t.Fatalf("round %d: ReadFrom(%d): %v", round, from, err)
			}
			for _, r := range recs {
				got[r.Offset] = r
			}
			from = next
		}
		for off, w := range acked {
			if off < start {
				continue // deleted by retention after every reader passed it
			}
			g, ok := got[off]
			if !ok {
				t.Fatalf("round %d: acknowledged offset %d lost (hw %d)", round, off, hw)
			}
			if !g.Timestamp.Equal(w.Timestamp) || !sameBytes(g.Key, w.Key) || !sameBytes(g.Value, w.Value) || !reflect.DeepEqual(g.Headers, w.Headers) {
				t.Fatalf("round %d: offset %d = %+v, want %+v", round, off, g, w)
			}
		}
	}

	const rounds = 12
	for round := range rounds {
		cfs := &crashFS{}
		if round%3 == 2 {
			cfs.arm(1 + rng.Int64N(3)) // the power goes out during recovery
		}
		p, err := open(dir, opts, newSyncRecorder(cfs, record))
		if errors.Is(err, errPowerCut) {
			if err := CutToSynced(record, dir); err != nil {
				t.Fatal(err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("round %d: open after power loss: %v", round, err)
		}
		verify(p, round)
		switch round {
		case 0:
			if err := p.Commit("hold", 0); err != nil { // holds every segment
				t.Fatal(err)
			}
		case rounds / 2:
			if err := p.Unregister("hold"); err != nil { // from now on retention deletes
				t.Fatal(err)
			}
		}
		cfs.arm(1 + rng.Int64N(150))

		progress := make(chan struct{}, 1)
		var writers sync.WaitGroup
		for w := range 4 {
			wrng := rand.New(rand.NewPCG(uint64(round), uint64(w)))
			writers.Go(func() {
				for i := range 300 {
					recs := make([]Record, 1+wrng.IntN(3))
					for j := range recs {
						recs[j] = crashRecord(wrng, round, w, i, j)
					}
					base, err := p.Append(context.Background(), recs)
					if err != nil {
						return
					}
					ackedMu.Lock()
					for j, r := range recs {
						acked[base+int64(j)] = r
					}
					ackedMu.Unlock()
					select {
					case progress <- struct{}{}:
					default:
					}
				}
			})
		}
		committerDone := make(chan struct{})
		go func() {
			defer close(committerDone)
			for range progress {
				hw := p.HighWatermark()
				if p.Commit("r", hw) != nil {
					continue // the power is out; drain until the writers stop
				}
				ackedMu.Lock()
				committed = max(committed, hw)
				ackedMu.Unlock()
			}
		}()
		writers.Wait()
		close(progress)
		<-committerDone
		cfs.powerCut() // if the writers finished first
		_ = p.Close()
		if err := CutToSynced(record, dir); err != nil {
			t.Fatal(err)
		}
	}
	p, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("final open: %v", err)
	}
	defer p.Close()
	verify(p, rounds)
	if p.LogStartOffset() == 0 {
		t.Error("retention never deleted a segment: the later rounds do not test it")
	}
	t.Logf("%d acknowledged records, log [%d, %d), committed %d", len(acked), p.LogStartOffset(), p.HighWatermark(), committed)
}

const crashChildEnv = "WEIR_LOG_TEST_CRASH_CHILD"

// TestKillAndPowerLoss runs a writer process (this test binary again, with
// the sync recorder on through its environment variable), checks that its
// partition is locked, kills it with SIGKILL while it appends, applies
// CutToSynced as a power loss would, and checks every append it
// acknowledged.
func TestKillAndPowerLoss(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	record := filepath.Join(t.TempDir(), "syncs")
	cmd := exec.Command(os.Args[0], "-test.run=^TestKillAndPowerLoss$")
	cmd.Env = append(os.Environ(), crashChildEnv+"="+dir, SyncRecordEnv+"="+record)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	acked := map[int64]Record{}
	sc := bufio.NewScanner(out)
	parse := func() bool {
		for sc.Scan() {
			var base, w, i, n int64
			if _, err := fmt.Sscanf(sc.Text(), "ack %d %d %d %d", &base, &w, &i, &n); err != nil {
				continue
			}
			for j := range n {
				acked[base+j] = crashChildRecord(int(w), int(i), int(j))
			}
			return true
		}
		return false
	}
	for len(acked) < 400 && parse() {
	}
	if len(acked) < 400 {
		_ = cmd.Process.Kill()
		t.Fatalf("child stopped after %d acknowledged records", len(acked))
	}
	_, err = Open(dir, Options{})
	if !errors.Is(err, ErrLocked) || !strings.Contains(err.Error(), dir) {
		t.Errorf("Open while the child writes: %v; want ErrLocked naming %s", err, dir)
	}
	if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	for parse() { // acknowledgements already in the pipe
	}
	_ = cmd.Wait()
	if err := CutToSynced(record, dir); err != nil {
		t.Fatal(err)
	}
	p, err := Open(dir, Options{}) // the kernel released the lock
	if err != nil {
		t.Fatalf("open after kill: %v", err)
	}
	defer p.Close()
	for off, w := range acked {
		recs, _, err := p.ReadFrom(off, 1)
		if err != nil || len(recs) == 0 {
			t.Fatalf("acknowledged offset %d: %v (hw %d)", off, err, p.HighWatermark())
		}
		if g := recs[0]; !sameBytes(g.Value, w.Value) || !sameBytes(g.Key, w.Key) || !g.Timestamp.Equal(w.Timestamp) {
			t.Fatalf("offset %d = %+v, want %+v", off, g, w)
		}
	}
	t.Logf("%d acknowledged records survived; recovery %+v", len(acked), p.Metrics().Recovery)
}

func crashChildRecord(w, i, j int) Record {
	return Record{Timestamp: t0.Add(msec(i)), Key: fmt.Appendf(nil, "w%d", w),
		Value: fmt.Appendf(nil, "w%d-i%d-j%d-%s", w, i, j, strings.Repeat("y", (i*7+j*13)%200))}
}

// crashChild appends from four goroutines and prints each acknowledged
// append until it is killed (or, if the parent is gone, for a while).
func crashChild(dir string) {
	p, err := Open(dir, Options{SegmentBytes: 8 << 10})
	if err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		os.Exit(3)
	}
	var mu sync.Mutex
	deadline := time.Now().Add(time.Minute)
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; time.Now().Before(deadline); i++ {
				recs := make([]Record, 1+(i+w)%3)
				for j := range recs {
					recs[j] = crashChildRecord(w, i, j)
				}
				base, err := p.Append(context.Background(), recs)
				if err != nil {
					fmt.Fprintln(os.Stderr, "child:", err)
					os.Exit(3)
				}
				mu.Lock()
				fmt.Fprintf(os.Stdout, "ack %d %d %d %d\n", base, w, i, len(recs))
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	os.Exit(0)
}

// TestPowerLossAtEverySync runs one sequential scenario — create the
// partition, append with segment rolls, register a reader and commit —
// once per sync it makes, cutting the power just before that sync. After
// each cut, what CutToSynced leaves must open and hold every acknowledged
// append and commit. Deterministic: no concurrency, every cut point.
func TestPowerLossAtEverySync(t *testing.T) {
	opts := Options{SegmentBytes: 700, IndexIntervalBytes: 256}
	for k := int64(1); ; k++ {
		dir := filepath.Join(t.TempDir(), "p") // created by Open: its parent's fsync counts too
		record := filepath.Join(t.TempDir(), "syncs")
		cfs := &crashFS{}
		cfs.arm(k)
		acked := map[int64]Record{}
		committed := int64(-1)
		if p, err := open(dir, opts, newSyncRecorder(cfs, record)); err == nil {
			for i := range 12 {
				r := Record{Timestamp: t0.Add(msec(i)), Key: fmt.Appendf(nil, "k%d", i), Value: []byte(strings.Repeat("v", 100+i))}
				base, err := p.Append(context.Background(), []Record{r})
				if err != nil {
					break
				}
				acked[base] = r
				if i%4 == 1 {
					if err := p.Commit("r", base); err != nil {
						break
					}
					committed = base
				}
			}
			_ = p.Close()
		}
		cfs.mu.RLock()
		cut := cfs.cut
		cfs.mu.RUnlock()
		if err := CutToSynced(record, filepath.Dir(dir)); err != nil {
			t.Fatal(err)
		}
		p, err := Open(dir, opts)
		if err != nil {
			t.Fatalf("cut before sync %d: open: %v", k, err)
		}
		if c, ok := p.Committed()["r"]; committed >= 0 && (!ok || c < committed) {
			t.Fatalf("cut before sync %d: reader committed %d (present %v), acknowledged %d", k, c, ok, committed)
		}
		if start := p.LogStartOffset(); committed >= 0 && start > p.Committed()["r"] {
			t.Fatalf("cut before sync %d: log starts at %d, past the reader's commit", k, start)
		}
		for off, w := range acked {
			if off < p.LogStartOffset() {
				continue // deleted by retention once the reader passed it
			}
			recs, _, err := p.ReadFrom(off, 1)
			if err != nil || len(recs) == 0 || !sameBytes(recs[0].Value, w.Value) || !sameBytes(recs[0].Key, w.Key) {
				t.Fatalf("cut before sync %d: acknowledged offset %d: %v %v (hw %d)", k, off, recs, err, p.HighWatermark())
			}
		}
		_ = p.Close()
		if !cut {
			if k < 20 {
				t.Fatalf("only %d syncs in the scenario", k)
			}
			t.Logf("%d cut points", k-1)
			return
		}
	}
}
