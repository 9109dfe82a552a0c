package log

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
)

// batchLayout appends n single-call batches of two records each and returns
// the byte position of every batch plus the final file size. The partition
// is left as after a crash (the meta file does not record the durable
// size), so damage to its last write is a torn tail.
func batchLayout(t *testing.T, dir string, opts Options, n int) []int64 {
	t.Helper()
	p := mustOpen(t, dir, opts)
	var pos []int64
	for i := range n {
		pos = append(pos, int64(p.Metrics().Bytes))
		mustAppend(t, p, Record{Timestamp: t0, Key: []byte("k"), Value: val(2 * i),
			Headers: []Header{{Key: "h", Value: []byte("v")}}}, Record{Timestamp: t0, Value: val(2*i + 1)})
	}
	pos = append(pos, int64(p.Metrics().Bytes))
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	asAfterCrash(t, dir)
	return pos
}

func TestCorruptLastBatchIsTornTail(t *testing.T) {
	dir := t.TempDir()
	pos := batchLayout(t, dir, Options{}, 3)
	flipByte(t, segPath(dir, 0), pos[3]-1)
	p := mustOpen(t, dir, Options{})
	defer p.Close()
	if r := p.Metrics().Recovery; r.TornTails != 1 || r.TruncatedAt != pos[2] {
		t.Fatalf("recovery = %+v, want the last batch truncated at %d", r, pos[2])
	}
	if hw := p.HighWatermark(); hw != 4 {
		t.Fatalf("HighWatermark = %d, want 4", hw)
	}
}

func flipByte(t *testing.T, path string, at int64) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	b[at] ^= 0x40
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
}

func wantCorruption(t *testing.T, err error, path string, first, end, pos, endPos int64) {
	t.Helper()
	ce, ok := errors.AsType[*CorruptionError](err)
	if !ok {
		t.Fatalf("err = %v, want *CorruptionError", err)
	}
	if ce.Segment != path || ce.FirstOffset != first || ce.EndOffset != end || ce.Pos != pos || ce.EndPos != endPos {
		t.Fatalf("got %v\nwant segment %s offsets [%d, %d) bytes [%d, %d)", ce, path, first, end, pos, endPos)
	}
}

func TestFlippedByteInMiddleBatch(t *testing.T) {
	// Batch 1 (offsets 2-3) is damaged; batches 0 and 2-4 are intact.
	for name, at := range map[string]func(pos []int64) int64{
		"payload": func(pos []int64) int64 { return pos[1] + headerSize + 3 },
		"magic":   func(pos []int64) int64 { return pos[1] },
		"length":  func(pos []int64) int64 { return pos[1] + offPayloadLen + 3 },
		"offset":  func(pos []int64) int64 { return pos[1] + offBase + 7 },
	} {
		t.Run(name, func(t *testing.T) {
			dir := t.TempDir()
			pos := batchLayout(t, dir, Options{}, 5)
			path := segPath(dir, 0)
			flipByte(t, path, at(pos))
			before, _ := os.ReadFile(path)
			_, err := Open(dir, Options{})
			wantCorruption(t, err, path, 2, 4, pos[1], pos[2])
			after, _ := os.ReadFile(path)
			if len(after) != len(before) {
				t.Fatalf("segment changed size %d -> %d: corruption was truncated", len(before), len(after))
			}
		})
	}
}

func TestCorruptionInSealedSegment(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 200, IndexIntervalBytes: 1}
	pos := batchLayout(t, dir, opts, 12)
	_ = pos
	bases, err := listSegments(osFS{}, dir)
	if err != nil || len(bases) < 3 {
		t.Fatalf("segments %v, %v; want >= 3", bases, err)
	}
	// Payload damage in a sealed segment is found by the read that checks
	// the CRC; recovery walks headers only.
	first := segPath(dir, bases[0])
	st, _ := os.Stat(first)
	p := mustOpen(t, dir, opts)
	h, err := readHeaderAt(p.segments[0].f, 0, st.Size())
	if err != nil {
		t.Fatal(err)
	}
	second := h.size()
	flipByte(t, first, second+headerSize+2)
	_, _, err = p.ReadFrom(0, 1) // one record: stops before the damage
	if err != nil {
		t.Fatalf("first batch is intact: %v", err)
	}
	_, _, err = p.ReadFrom(h.next(), 1<<20)
	h2, _ := readHeaderAt(p.segments[0].f, second, st.Size())
	wantCorruption(t, err, first, h.next(), h2.next(), second, second+h2.size())
	_ = p.Close()

	// Header damage in a sealed segment fails Open.
	flipByte(t, first, second+headerSize+2) // repair
	flipByte(t, first, second+offCount+3)
	_, err = Open(dir, opts)
	wantCorruption(t, err, first, h.next(), h2.next(), second, second+h2.size())
}

func TestMissingSegment(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 200}
	batchLayout(t, dir, opts, 12)
	bases, _ := listSegments(osFS{}, dir)
	if len(bases) < 3 {
		t.Fatalf("segments %v, want >= 3", bases)
	}
	if err := os.Remove(segPath(dir, bases[1])); err != nil {
		t.Fatal(err)
	}
	_, err := Open(dir, opts)
	wantCorruption(t, err, segPath(dir, bases[1]), bases[1], bases[2], 0, 0)
}

func TestIndexRebuiltWhenMissingOrDamaged(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 200, IndexIntervalBytes: 1}
	batchLayout(t, dir, opts, 12)
	bases, _ := listSegments(osFS{}, dir)
	if err := os.Remove(filepath.Join(dir, segmentName(bases[0])+indexSuffix)); err != nil {
		t.Fatal(err)
	}
	idx1 := filepath.Join(dir, segmentName(bases[1])+indexSuffix)
	if err := os.WriteFile(idx1, []byte("garbage"), 0o644); err != nil {
		t.Fatal(err)
	}
	p := mustOpen(t, dir, opts)
	defer p.Close()
	if r := p.Metrics().Recovery; r.IndexesRebuilt != 3 {
		t.Fatalf("IndexesRebuilt = %d, want 3 (two damaged, the last)", r.IndexesRebuilt)
	}
	if n := len(readAll(t, p, 5)); n != 19 {
		t.Fatalf("read %d records, want 19", n)
	}
}

func TestZeroedRangeBeforeValidData(t *testing.T) {
	dir := t.TempDir()
	pos := batchLayout(t, dir, Options{}, 5)
	path := segPath(dir, 0)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Zero from the middle of batch 1 to the middle of batch 2: batches 1
	// and 2 (offsets 2-5) are lost, batch 3 is intact after them.
	clear(b[pos[1]+10 : pos[2]+10])
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	_, err = Open(dir, Options{})
	wantCorruption(t, err, path, 2, 6, pos[1], pos[3])

}

func TestZeroedTailIsTorn(t *testing.T) {
	dir := t.TempDir()
	pos := batchLayout(t, dir, Options{}, 5)
	path := segPath(dir, 0)
	b := mustRead(t, path)
	clear(b[pos[4]+5:]) // a page of zeros where the last write was
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	p := mustOpen(t, dir, Options{})
	defer p.Close()
	if r := p.Metrics().Recovery; r.TornTails != 1 || r.TruncatedAt != pos[4] || p.HighWatermark() != 8 {
		t.Fatalf("recovery %+v hw %d; want the last batch truncated, hw 8", r, p.HighWatermark())
	}
}

func mustRead(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// craft appends hand-made batches (base, write offset) to the segment and
// returns their positions; zero, if >= 0, zeroes that batch.
func craft(t *testing.T, path string, zero int, batches ...[2]int64) []int64 {
	t.Helper()
	b := mustRead(t, path)
	var pos []int64
	for i, bw := range batches {
		batch, _ := encodeBatch(nil, []Record{{Timestamp: t0, Value: val(int(bw[0]))}}, 0)
		sealBatch(batch, bw[0], bw[1])
		if i == zero {
			clear(batch)
		}
		pos = append(pos, int64(len(b)))
		b = append(b, batch...)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return pos
}

// TestPowerLossReorderWithinLastWrite: a power loss may persist the pages
// of the last (unacknowledged) write in any order. Damage followed by valid
// batches of that same write is a torn tail; damage followed by a later
// write is corruption.
func TestPowerLossReorderWithinLastWrite(t *testing.T) {
	t.Run("same write", func(t *testing.T) {
		dir := t.TempDir()
		batchLayout(t, dir, Options{}, 2) // offsets 0-3
		pos := craft(t, segPath(dir, 0), 0, [2]int64{4, 4}, [2]int64{5, 4}, [2]int64{6, 4})
		p := mustOpen(t, dir, Options{})
		defer p.Close()
		if r := p.Metrics().Recovery; r.TornTails != 1 || r.TruncatedAt != pos[0] || p.HighWatermark() != 4 {
			t.Fatalf("recovery %+v hw %d; want torn at %d, hw 4", r, p.HighWatermark(), pos[0])
		}
	})
	t.Run("later write", func(t *testing.T) {
		dir := t.TempDir()
		batchLayout(t, dir, Options{}, 2)
		path := segPath(dir, 0)
		pos := craft(t, path, 0, [2]int64{4, 4}, [2]int64{5, 4}, [2]int64{6, 6})
		_, err := Open(dir, Options{})
		wantCorruption(t, err, path, 4, 5, pos[0], pos[1])
	})
	t.Run("write started after the damage", func(t *testing.T) {
		dir := t.TempDir()
		batchLayout(t, dir, Options{}, 2)
		path := segPath(dir, 0)
		pos := craft(t, path, 0, [2]int64{4, 4}, [2]int64{5, 5})
		_, err := Open(dir, Options{})
		wantCorruption(t, err, path, 4, 5, pos[0], pos[1])
	})
}

// TestDamagedIndexIsNotCorruption: an index entry pointing at the wrong
// place (structurally valid) must not read as a damaged segment.
func TestDamagedIndexIsNotCorruption(t *testing.T) {
	dir := t.TempDir()
	opts := Options{SegmentBytes: 2000, IndexIntervalBytes: 1}
	batchLayout(t, dir, opts, 30)
	bases, _ := listSegments(osFS{}, dir)
	idx := filepath.Join(dir, segmentName(bases[0])+indexSuffix)
	b := mustRead(t, idx)
	// Shift the second entry's position by one byte.
	b[indexHeaderSize+indexEntrySize+7]++
	if err := os.WriteFile(idx, b, 0o644); err != nil {
		t.Fatal(err)
	}
	p := mustOpen(t, dir, opts)
	defer p.Close()
	if n := len(readAll(t, p, 2)); n != 58 {
		t.Fatalf("read %d records, want 58", n)
	}
}

// TestPowerLossKeepsAcknowledged simulates a power loss in the middle of a
// group commit: the committer stops inside an fsync, the segment is cut back
// to its size at the last completed fsync (plus half of the write in
// flight, as garbage pages would be), and every append acknowledged before
// that must be read back after recovery.
func TestPowerLossKeepsAcknowledged(t *testing.T) {
	fsys := &testFS{}
	dir := t.TempDir()
	var syncN atomic.Int64
	stuck, release := make(chan struct{}), make(chan struct{})
	fsys.onSync = func() {
		if syncN.Add(1) == 40 {
			close(stuck)
			<-release
		}
	}
	p, err := open(dir, Options{}, fsys)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	acked := map[string]bool{}
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for i := 0; ; i++ {
				v := fmt.Sprintf("w%d-%d", w, i)
				if _, err := p.Append(context.Background(), []Record{{Value: []byte(v)}}); err != nil {
					return
				}
				mu.Lock()
				acked[v] = true
				mu.Unlock()
			}
		})
	}
	<-stuck
	// The power goes out now: copy what the disk would hold.
	mu.Lock()
	want := maps.Clone(acked)
	mu.Unlock()
	path := segPath(dir, 0)
	b := mustRead(t, path)
	cut := fsys.syncedSize(path)
	lost := t.TempDir()
	if err := os.WriteFile(segPath(lost, 0), b[:cut+(int64(len(b))-cut)/2], 0o644); err != nil {
		t.Fatal(err)
	}
	fsys.failSync.Store(true) // the stuck fsync fails: appenders stop
	close(release)
	wg.Wait()
	_ = p.Close()

	q := mustOpen(t, lost, Options{})
	defer q.Close()
	got := map[string]bool{}
	for _, r := range readAll(t, q, 0) {
		got[string(r.Value)] = true
	}
	for v := range want {
		if !got[v] {
			t.Fatalf("acknowledged %q lost (%d acknowledged, %d recovered)", v, len(want), len(got))
		}
	}
	t.Logf("acknowledged %d, recovered %d, recovery %+v", len(want), len(got), q.Metrics().Recovery)
}
