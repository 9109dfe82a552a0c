package log

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

var errInjected = errors.New("injected I/O error")

// testFS is the real file system with counted and injectable syncs and
// writes on segment files.
type testFS struct {
	osFS
	syncs     atomic.Int64
	failSync  atomic.Bool
	failWrite atomic.Bool
	// onSync, when set, runs before every segment sync (in the committer).
	onSync func()

	mu sync.Mutex
	// synced is each segment's size at its last completed fsync: what a
	// power loss would leave.
	synced map[string]int64
}

func (t *testFS) syncedSize(path string) int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.synced[path]
}

func (t *testFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	f, err := t.osFS.OpenFile(name, flag, perm)
	if err != nil {
		return nil, err
	}
	if filepath.Ext(name) != segmentSuffix {
		return f, nil
	}
	return &testFile{file: f, fs: t, name: name}, nil
}

type testFile struct {
	file
	fs   *testFS
	name string
}

func (f *testFile) Sync() error {
	if f.fs.onSync != nil {
		f.fs.onSync()
	}
	if f.fs.failSync.Load() {
		return errInjected
	}
	f.fs.syncs.Add(1)
	st, err := f.Stat()
	if err == nil {
		err = f.file.Sync()
	}
	if err == nil {
		f.fs.mu.Lock()
		if f.fs.synced == nil {
			f.fs.synced = map[string]int64{}
		}
		f.fs.synced[f.name] = st.Size()
		f.fs.mu.Unlock()
	}
	return err
}

func (f *testFile) WriteAt(b []byte, off int64) (int, error) {
	if f.fs.failWrite.Load() {
		// A partial write, as a full disk would leave.
		n, _ := f.file.WriteAt(b[:len(b)/2], off)
		return n, errInjected
	}
	return f.file.WriteAt(b, off)
}

func mustOpen(t testing.TB, dir string, opts Options) *Partition {
	t.Helper()
	p, err := Open(dir, opts)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	return p
}

func mustAppend(t testing.TB, p *Partition, recs ...Record) int64 {
	t.Helper()
	base, err := p.Append(context.Background(), recs)
	if err != nil {
		t.Fatalf("Append: %v", err)
	}
	return base
}

func readAll(t testing.TB, p *Partition, from int64) []Record {
	t.Helper()
	var out []Record
	for {
		recs, next, err := p.ReadFrom(from, 1<<20)
		if err != nil {
			t.Fatalf("ReadFrom(%d): %v", from, err)
		}
		if len(recs) == 0 {
			return out
		}
		out = append(out, recs...)
		from = next
	}
}

// val makes a distinct value.
func val(i int) []byte { return fmt.Appendf(nil, "value-%06d", i) }

var t0 = time.UnixMilli(1_700_000_000_000)

func segPath(dir string, base int64) string {
	return filepath.Join(dir, segmentName(base)+segmentSuffix)
}

func msec(i int) time.Duration { return time.Duration(i) * time.Millisecond }

// asAfterCrash makes the partition in dir look as if its last run crashed
// instead of closing cleanly: the meta file forgets how much of the active
// segment was durable, so damage to the last write is a torn tail again.
func asAfterCrash(t *testing.T, dir string) {
	t.Helper()
	m, ok, err := loadMeta(osFS{}, dir)
	if err != nil || !ok {
		t.Fatalf("meta file: %v (found %v)", err, ok)
	}
	m.synced = 0
	if err := writeMeta(osFS{}, dir, m); err != nil {
		t.Fatal(err)
	}
}
