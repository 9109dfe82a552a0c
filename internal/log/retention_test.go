package log

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// fill appends n 100-byte records one per call and returns the segments.
func fill(t *testing.T, p *Partition, n int) {
	t.Helper()
	for i := range n {
		mustAppend(t, p, Record{Timestamp: t0, Value: append(val(i), make([]byte, 88)...)})
	}
}

func TestRetentionFollowsSlowestReader(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 1000}
	p := mustOpen(t, dir, opts)
	fill(t, p, 40)
	segs := p.Metrics().Segments
	if segs < 4 {
		t.Fatalf("%d segments, want >= 4", segs)
	}
	if err := p.Commit("slow", 0); err != nil { // registers before fast runs ahead
		t.Fatal(err)
	}
	if err := p.Commit("fast", 40); err != nil {
		t.Fatal(err)
	}
	if m := p.Metrics(); m.Segments != segs || p.LogStartOffset() != 0 {
		t.Fatalf("segments %d start %d: deleted data the slow reader needs", m.Segments, p.LogStartOffset())
	}
	if err := p.Commit("slow", 25); err != nil {
		t.Fatal(err)
	}
	start := p.LogStartOffset()
	if start == 0 || start > 25 {
		t.Fatalf("LogStartOffset = %d, want in (0, 25]", start)
	}
	if _, _, err := p.ReadFrom(start-1, 100); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("ReadFrom below start: %v", err)
	}
	if got := len(readAll(t, p, start)); got != 40-int(start) {
		t.Fatalf("read %d records from %d", got, start)
	}
	if err := p.Commit("slow", 41); !errors.Is(err, ErrOffsetOutOfRange) {
		t.Fatalf("Commit past the high watermark: %v", err)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(segPath(dir, 0)); !os.IsNotExist(err) {
		t.Fatalf("segment 0 still there: %v", err)
	}

	// Commits and the new start survive a reopen.
	p = mustOpen(t, dir, opts)
	defer p.Close()
	if c := p.Committed(); c["fast"] != 40 || c["slow"] != 25 || len(c) != 2 {
		t.Fatalf("Committed = %v", c)
	}
	if s := p.LogStartOffset(); s != start {
		t.Fatalf("LogStartOffset after reopen = %d, want %d", s, start)
	}
	if _, err := os.Stat(filepath.Join(dir, readersFile+".tmp")); !os.IsNotExist(err) {
		t.Fatalf("temporary readers file left behind: %v", err)
	}
}

func TestRetainTimeAndBytes(t *testing.T) {
	now := t0
	opts := Options{SegmentBytes: 1000, RetainTime: time.Hour, Now: func() time.Time { return now }}
	p := mustOpen(t, t.TempDir(), opts)
	defer p.Close()
	fill(t, p, 40)
	if err := p.Commit("r", 40); err != nil {
		t.Fatal(err)
	}
	if s := p.LogStartOffset(); s != 0 {
		t.Fatalf("deleted segments younger than RetainTime: start %d", s)
	}
	now = t0.Add(2 * time.Hour)
	if err := p.Commit("r", 40); err != nil {
		t.Fatal(err)
	}
	if m := p.Metrics(); m.Segments != 1 {
		t.Fatalf("%d segments left, want only the active one", m.Segments)
	}

	q := mustOpen(t, t.TempDir(), Options{SegmentBytes: 1000, RetainBytes: 2500})
	defer q.Close()
	fill(t, q, 60)
	if err := q.Commit("r", 60); err != nil {
		t.Fatal(err)
	}
	q.mu.RLock()
	total := q.totalBytesLocked()
	q.mu.RUnlock()
	if total < 2500 || q.LogStartOffset() == 0 {
		t.Fatalf("total %d start %d: want some segments deleted and >= 2500 bytes kept", total, q.LogStartOffset())
	}
}

func TestMaxBytesRefusesInsteadOfDropping(t *testing.T) {
	opts := Options{SegmentBytes: 1000, MaxBytes: 3000}
	p := mustOpen(t, t.TempDir(), opts)
	defer p.Close()
	var err error
	n := 0
	for ; n < 100; n++ {
		if _, err = p.Append(context.Background(), []Record{{Value: make([]byte, 100)}}); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrFull) || errors.Is(err, ErrFailed) {
		t.Fatalf("after %d appends: err = %v, want ErrFull (not ErrFailed)", n, err)
	}
	hw := p.HighWatermark()
	if hw != int64(n) || p.LogStartOffset() != 0 {
		t.Fatalf("hw %d start %d after %d acknowledged: something was dropped", hw, p.LogStartOffset(), n)
	}
	// A reader that has not committed far enough keeps it full.
	if err := p.Commit("r", 1); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(context.Background(), []Record{{Value: make([]byte, 100)}}); !errors.Is(err, ErrFull) {
		t.Fatalf("err = %v, want ErrFull", err)
	}
	if err := p.Commit("r", hw); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Append(context.Background(), []Record{{Value: make([]byte, 100)}}); err != nil {
		t.Fatalf("Append after the reader caught up: %v", err)
	}
	if m := p.Metrics(); m.FullRejections != 2 || m.DeletedSegments == 0 {
		t.Fatalf("metrics %+v", m)
	}
}

func TestNoReadersNoDeletion(t *testing.T) {
	p := mustOpen(t, t.TempDir(), Options{SegmentBytes: 1000, MaxBytes: 2000})
	defer p.Close()
	var err error
	for range 100 {
		if _, err = p.Append(context.Background(), []Record{{Value: make([]byte, 100)}}); err != nil {
			break
		}
	}
	if !errors.Is(err, ErrFull) || p.LogStartOffset() != 0 {
		t.Fatalf("err %v start %d: want ErrFull and nothing deleted", err, p.LogStartOffset())
	}
	if err := p.Commit("bad name", 0); err == nil {
		t.Fatal("reader name with a space accepted")
	}
	if err := p.Unregister("nobody"); err != nil {
		t.Fatal(err)
	}
}

// A deleted segment leaves the log at once (renamed to .deleting) and its
// file is freed in the background; Close waits for that, and Open removes
// what a crash in the middle of it left, partly cut, without calling it
// damage.
func TestDeletedSegmentsAreShredded(t *testing.T) {
	dir := t.TempDir()
	// Segments of several shred chunks, so the shred takes a few steps.
	opts := Options{SegmentBytes: 3 * shredChunk, MaxWriteBytes: 1 << 20}
	p := mustOpen(t, dir, opts)
	big := make([]byte, 512<<10)
	const n = 60
	for range n {
		mustAppend(t, p, Record{Timestamp: t0, Value: big})
	}
	if err := p.Commit("r", 50); err != nil {
		t.Fatal(err)
	}
	start := p.LogStartOffset()
	if start == 0 {
		t.Fatal("nothing was deleted")
	}
	// Gone from the log at once, whatever the shred's progress.
	if _, err := os.Stat(segPath(dir, 0)); !os.IsNotExist(err) {
		t.Fatalf("segment 0 is still a segment: %v", err)
	}
	if got := len(readAll(t, p, start)); got != n-int(start) {
		t.Fatalf("read %d records from %d", got, start)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "*"+trashSuffix)); len(m) != 0 {
		t.Fatalf("Close left %v", m)
	}

	// A crash in the middle of a shred: a cut .deleting file.
	trash := segPath(dir, 0) + trashSuffix
	if err := os.WriteFile(trash, []byte("cut short"), 0o644); err != nil {
		t.Fatal(err)
	}
	p = mustOpen(t, dir, opts)
	defer p.Close()
	if _, err := os.Stat(trash); !os.IsNotExist(err) {
		t.Fatalf("Open left %s: %v", trash, err)
	}
	if p.LogStartOffset() != start || p.HighWatermark() != n {
		t.Fatalf("after reopen: [%d, %d), want [%d, %d)", p.LogStartOffset(), p.HighWatermark(), start, n)
	}
}
