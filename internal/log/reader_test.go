package log

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"sync"
	"testing"
)

// TestReaderFollowsWriter reads a partition with a Reader while writers
// append, segments roll and retention deletes what the reader committed:
// every record is seen once, in order, with its value, and the reader ends
// at the writer's high watermark.
func TestReaderFollowsWriter(t *testing.T) {
	dir := t.TempDir()
	p := mustOpen(t, dir, Options{SegmentBytes: 2000})
	defer p.Close()
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()

	const writers, per = 4, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range per {
				v := fmt.Appendf(nil, "w%d-%d", w, i)
				if _, err := p.Append(context.Background(), []Record{{Key: []byte{byte(w)}, Value: v}}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()

	seen := map[string]int64{}
	next := int64(0)
	read := func() {
		t.Helper()
		if err := r.Refresh(); err != nil {
			t.Fatal(err)
		}
		for {
			recs, n, err := r.ReadFrom(next, 1<<10)
			if err != nil {
				t.Fatalf("ReadFrom(%d): %v", next, err)
			}
			if len(recs) == 0 {
				return
			}
			for i, rec := range recs {
				if rec.Offset != next+int64(i) {
					t.Fatalf("offset %d, want %d", rec.Offset, next+int64(i))
				}
				if _, dup := seen[string(rec.Value)]; dup {
					t.Fatalf("value %q seen twice", rec.Value)
				}
				seen[string(rec.Value)] = rec.Offset
			}
			next = n
			// What the reader has read, retention may delete.
			if err := p.Commit("tail", min(next, p.HighWatermark())); err != nil {
				t.Fatal(err)
			}
		}
	}
	for running := true; running; {
		select {
		case <-done:
			running = false
		default:
			runtime.Gosched()
		}
		read()
	}
	read()
	if len(seen) != writers*per || next != p.HighWatermark() || r.HighWatermark() != p.HighWatermark() {
		t.Fatalf("saw %d records up to %d; writer hw %d, reader hw %d", len(seen), next, p.HighWatermark(), r.HighWatermark())
	}
	if p.Metrics().DeletedSegments == 0 || r.LogStartOffset() != p.LogStartOffset() {
		t.Fatalf("deleted %d segments; reader start %d, writer start %d", p.Metrics().DeletedSegments, r.LogStartOffset(), p.LogStartOffset())
	}
	if _, _, err := r.ReadFrom(r.LogStartOffset()-1, 10); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("ReadFrom below start: %v", err)
	}
	if err := r.Damage(); err != nil {
		t.Fatal(err)
	}
}

// TestReaderStopsAtIncompleteWrite: a write in progress at the end of the
// last segment is where reading stops, not damage; the reader changes
// nothing, and sees the records once the write is complete.
func TestReaderStopsAtIncompleteWrite(t *testing.T) {
	dir := t.TempDir()
	p := mustOpen(t, dir, Options{})
	for i := range 3 {
		mustAppend(t, p, Record{Timestamp: t0, Value: val(i)})
	}
	if err := p.Commit("slow", 1); err != nil {
		t.Fatal(err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	batch, _ := encodeBatch(nil, []Record{{Timestamp: t0, Value: val(3)}, {Timestamp: t0, Value: val(4)}}, 0)
	sealBatch(batch, 3, 3)
	path := segPath(dir, 0)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(batch[:len(batch)/2]); err != nil {
		t.Fatal(err)
	}
	before := snapshot(t, dir)

	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if hw, err := r.HighWatermark(), r.Damage(); hw != 3 || err != nil {
		t.Fatalf("HighWatermark %d, Damage %v; want 3 and none", hw, err)
	}
	segs := r.Segments()
	if len(segs) != 1 || segs[0].EndOffset != 3 || segs[0].FileBytes-segs[0].Bytes != int64(len(batch)/2) ||
		segs[0].Path != path || !segs[0].MaxTimestamp.Equal(t0) {
		t.Fatalf("Segments = %+v", segs)
	}
	if c, err := r.Committed(); err != nil || len(c) != 1 || c["slow"] != 1 {
		t.Fatalf("Committed = %v, %v", c, err)
	}
	if recs, next, err := r.ReadFrom(3, 100); len(recs) != 0 || next != 3 || err != nil {
		t.Fatalf("ReadFrom(hw) = %v, %d, %v", recs, next, err)
	}

	if _, err := f.Write(batch[len(batch)/2:]); err != nil {
		t.Fatal(err)
	}
	if err := r.Refresh(); err != nil {
		t.Fatal(err)
	}
	recs, next, err := r.ReadFrom(2, 100)
	if err != nil || len(recs) != 3 || next != 5 || string(recs[2].Value) != string(val(4)) {
		t.Fatalf("after the write completed: %d records, next %d, %v", len(recs), next, err)
	}
	// Nothing but the completed write changed: the reader wrote nothing.
	before[filepath.Base(path)] += string(batch[len(batch)/2:])
	if after := snapshot(t, dir); len(after) != len(before) || after[filepath.Base(path)] != before[filepath.Base(path)] {
		t.Fatal("the reader changed the partition directory")
	}
}

func TestFindPartitions(t *testing.T) {
	logDir := t.TempDir()
	l, err := OpenLog(logDir, 3, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	got, err := FindPartitions(logDir)
	if err != nil || len(got) != 3 || got[2] != (PartitionDir{2, filepath.Join(logDir, "2")}) {
		t.Fatalf("FindPartitions(log) = %v, %v", got, err)
	}
	got, err = FindPartitions(filepath.Join(logDir, "1"))
	if err != nil || len(got) != 1 || got[0] != (PartitionDir{1, filepath.Join(logDir, "1")}) {
		t.Fatalf("FindPartitions(partition) = %v, %v", got, err)
	}
	if _, err := FindPartitions(t.TempDir()); err == nil {
		t.Fatal("an empty directory is a log")
	}
	gap := t.TempDir()
	for _, d := range []string{"0", "2"} {
		if err := os.Mkdir(filepath.Join(gap, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := FindPartitions(gap); err == nil {
		t.Fatal("partitions 0 and 2 without 1 accepted")
	}
}

// A Reader in the middle of a segment the writer's retention deletes (the
// segment is renamed, then cut short in the background) gets
// ErrOffsetOutOfRange, not an I/O error.
func TestReaderOfShreddedSegment(t *testing.T) {
	dir := t.TempDir()
	p := mustOpen(t, dir, Options{SegmentBytes: 2000})
	defer p.Close()
	fill(t, p, 60)
	r, err := OpenReader(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// What a shred does to segment 0, under the open Reader.
	path := segPath(dir, 0)
	if err := os.Rename(path, path+trashSuffix); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path+trashSuffix, 100); err != nil {
		t.Fatal(err)
	}
	if _, _, err := r.ReadFrom(0, 1<<20); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("ReadFrom(0) of a shredded segment = %v, want ErrOffsetOutOfRange", err)
	}
	// Damage is still damage.
	f, err := os.OpenFile(segPath(dir, p.segments[1].base), os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte{0xff, 0xff, 0xff, 0xff}, 30); err != nil {
		t.Fatal(err)
	}
	f.Close()
	var ce *CorruptionError
	if _, _, err := r.ReadFrom(p.segments[1].base, 1<<20); !errors.As(err, &ce) {
		t.Fatalf("ReadFrom of a damaged segment = %v, want a *CorruptionError", err)
	}
}
